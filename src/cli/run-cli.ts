import { join, resolve } from 'node:path';
import { EXIT, type ExitCode } from '../core/exit-codes.js';
import { checkTarget } from '../core/loopback.js';
import type { RunResult } from '../run/result-types.js';
import { runScenario } from '../run/run.js';
import { loadScenario } from '../scenario/load.js';
import { ProgressPrinter } from './progress.js';

export interface RunCliInput {
  scenario: string;
  out?: string;
  allowRemote?: boolean;
  report?: boolean;
}

/** reports/<scenario>-<timestamp>/ unless --out says otherwise. */
export function defaultOutDir(root: string, scenario: string, at: Date): string {
  const stamp = at.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[:]/g, '-');
  return join(root, 'reports', `${scenario}-${stamp}`);
}

/** The exit code a finished run deserves. */
export function runExitCode(r: RunResult): ExitCode {
  if (r.interrupted) return EXIT.interrupted;
  if (r.error !== null) return EXIT.sutFailed;
  if (!r.summary.trustworthy) return EXIT.untrustworthy;
  return EXIT.ok;
}

export async function runRunCli(input: RunCliInput): Promise<ExitCode> {
  const scenario = loadScenario(input.scenario);
  // Loopback only, unless the user says otherwise: checked before anything starts.
  // (a ws fleet may name several relays, comma-separated: each is checked)
  for (const t of scenario.stack.target?.split(',') ?? []) checkTarget('stack.target', t.trim(), ['http:', 'https:', 'ws:', 'wss:'], input.allowRemote === true);
  const outDir = resolve(input.out ?? defaultOutDir(process.cwd(), scenario.name, new Date()));
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (): void => {
    signals++;
    if (signals === 1) process.stderr.write('\nstopping: finishing the window, stopping the stack and writing what was measured (Ctrl-C again does not cut this short)…\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let printer: ProgressPrinter | null = null;
  let current = '';
  const log = (line: string): void => {
    printer?.end();
    process.stderr.write(`${line}\n`);
  };
  try {
    process.stderr.write(`rmmscale run ${scenario.name}${scenario.description ? `: ${scenario.description}` : ''}\n`);
    const { result, resultFile } = await runScenario({
      scenario,
      outDir,
      allowRemote: input.allowRemote === true,
      signal: controller.signal,
      log,
      onProgress: (p) => {
        if (p.window !== current || !printer) {
          printer?.end();
          printer = new ProgressPrinter(process.stderr);
          current = p.window;
        }
        printer.update(p);
      },
    });
    (printer as ProgressPrinter | null)?.end();
    if (input.report !== false) {
      const { writeReports, terminalSummary } = await import('../report/index.js');
      const html = join(outDir, 'report.html');
      const md = join(outDir, 'summary.md');
      await writeReports(result, { htmlFile: html, mdFile: md });
      process.stdout.write(terminalSummary(result));
      process.stdout.write(`\nresult: ${resultFile}\nreport: ${html}\nsummary: ${md}\n`);
      if (result.summary.ceilingAgents !== null) process.stdout.write(`size a fleet from these ceilings: rmmscale plan --from ${resultFile} --agents 20000 40000 50000\n`);
    } else process.stdout.write(`result: ${resultFile}\n`);
    if (result.error) process.stderr.write(`run incomplete: ${result.error}\n`);
    return runExitCode(result);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
