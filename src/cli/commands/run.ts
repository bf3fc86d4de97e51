import { join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { InvalidArgumentError, RmmscaleError } from '../../core/errors.js';
import { EXIT, type ExitCode } from '../../core/exit-codes.js';
import { ledgerProblem } from '../../run/ledger.js';
import { checkTarget } from '../../core/loopback.js';
import type { GateReport } from '../../gate/gate.js';
import { gateText, summaryLine } from '../../gate/gate-text.js';
import { parseThreshold, ThresholdError } from '../../gate/grammar.js';
import { headlineWindow } from '../../report/format.js';
import type { RunResult } from '../../run/result-types.js';
import type { CoordinationOptions } from '../../run/run.js';
import { DEFAULT_COORDINATOR_HOST, DEFAULT_COORDINATOR_PORT } from '../../run/shard-coordinator.js';
import { describeShard, type Shard } from '../../swarm/shard.js';
import { METRICS_PORT_FLAG, parseMetricsPort, PRINT_SCRAPE_CONFIG_FLAG, printScrapeConfig, startLiveView } from '../live-view.js';
import type { ProgressPrinter } from '../progress.js';

/**
 * `rmmscale run SCENARIO [--out DIR] [--junit FILE] [--md FILE]`: the main job. Exits 0 ok, 3 the run
 * did not complete or a stage breached the SLO, 4 untrustworthy, 5 a scenario threshold failed,
 * 130 interrupted (runOutcome below has the order). The run itself, the scenario loader and the
 * reports load when the command runs, so that `--help` stays fast.
 */
export const runCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'run <scenario>',
  describe: 'run a scenario: start its stack, drive the swarm through its stages or ceiling search, record every node, write result.json and the report',
  builder: (y: Argv) =>
    y
      .positional('scenario', { type: 'string', describe: 'a scenario file (scenarios/*.yaml)' })
      .option('out', { type: 'string', describe: 'output folder [default reports/<scenario>-<timestamp>/]', requiresArg: true })
      .option('shard', { type: 'string', requiresArg: true, describe: "run shard i of n of the fleet (overrides the scenario's shard:), e.g. 0/3; merge the results with rmmscale merge" })
      .option('start-at', { type: 'string', requiresArg: true, describe: "the first window's t = 0 on the wall clock (ISO 8601 with a zone, or epoch ms), so shards start together" })
      .option('coordinator', { type: 'boolean', describe: 'be the coordinator of a sharded run: decide every window (the ceiling search), start the shards together, merge and judge them; needs --shard' })
      .option('coordinator-url', { type: 'string', requiresArg: true, describe: "follow the coordinator at URL (another shard's --coordinator): its windows, its start times; needs --shard" })
      .option('coordinator-port', { type: 'number', requiresArg: true, describe: `the coordinator's control port [default ${DEFAULT_COORDINATOR_PORT}]` })
      .option('coordinator-host', { type: 'string', requiresArg: true, describe: `the coordinator's bind address [default ${DEFAULT_COORDINATOR_HOST}; 0.0.0.0 in a pod, behind its Service]` })
      .option('var', { type: 'string', array: true, requiresArg: true, describe: "a protocol variable NAME=VALUE, repeatable; overrides the scenario's agentVars (e.g. --var enroll_secret=…)" })
      .option('allow-remote', { type: 'boolean', describe: 'allow a scenario target that is not loopback' })
      .option('report', { type: 'boolean', default: true, describe: 'write report.html and summary.md beside result.json (--no-report to skip)' })
      .option('junit', { type: 'string', describe: "write the scenario thresholds' verdicts as JUnit XML to FILE (as rmmscale gate --junit)" })
      .option('md', { type: 'string', describe: "write the scenario thresholds' verdicts as Markdown to FILE (as rmmscale gate --md)" })
      .option('metrics-port', METRICS_PORT_FLAG)
      .option('print-scrape-config', PRINT_SCRAPE_CONFIG_FLAG) as Argv<Record<string, unknown>>,
  handler: async (argv) => {
    // As in `rmmscale gate`: no `requiresArg` (yargs reports a missing value as a crash); an empty value is refused here.
    for (const flag of ['junit', 'md'] as const) {
      if (argv[flag] !== undefined && (typeof argv[flag] !== 'string' || argv[flag] === '')) throw new InvalidArgumentError(`--${flag}`, argv[flag], 'a file path');
    }
    process.exitCode = await runRunCli({
      scenario: String(argv.scenario),
      out: argv.out as string | undefined,
      allowRemote: argv.allowRemote === true,
      report: argv.report !== false,
      junit: argv.junit as string | undefined,
      md: argv.md as string | undefined,
      metricsPort: parseMetricsPort(argv['metrics-port']),
      printScrapeConfig: argv['print-scrape-config'] === true,
      shard: argv.shard as string | undefined,
      startAt: argv.startAt as string | undefined,
      var: Array.isArray(argv.var) ? argv.var.map(String) : undefined,
      coordinator: argv.coordinator === true,
      coordinatorUrl: argv['coordinator-url'] as string | undefined,
      coordinatorPort: argv['coordinator-port'] as number | undefined,
      coordinatorHost: argv['coordinator-host'] as string | undefined,
    });
  },
};

export interface RunCliInput {
  scenario: string;
  out?: string;
  allowRemote?: boolean;
  report?: boolean;
  /** Write the threshold verdicts as JUnit XML here (as `rmmscale gate --junit`). */
  junit?: string;
  /** Write them as Markdown here (as `rmmscale gate --md`). */
  md?: string;
  /** Serve the generator's live metrics on this loopback port (0: a free one). */
  metricsPort?: number | null;
  /** Print a Prometheus scrape config for the stack's nodes and the generator once they are up. */
  printScrapeConfig?: boolean;
  /** `--shard i/n`: overrides the scenario's `shard:`. */
  shard?: string;
  /** `--start-at`: ISO time or epoch ms. */
  startAt?: string;
  /** `--var NAME=VALUE` each: the scenario protocol's variables, over its `agentVars`. */
  var?: string[];
  /** `--coordinator`: this shard coordinates the others. */
  coordinator?: boolean;
  /** `--coordinator-url`: follow the coordinator there. */
  coordinatorUrl?: string;
  /** `--coordinator-port` (default 7470). */
  coordinatorPort?: number;
  /** `--coordinator-host` (default 127.0.0.1). */
  coordinatorHost?: string;
}

/**
 * `--coordinator`, `--coordinator-url`, `--coordinator-port` and `--coordinator-host` against the
 * shard: one role or none, each flag with the role it belongs to, a ceiling search across shards only
 * with one. Every refusal is one line naming the flag.
 */
export function coordinationOf(input: RunCliInput, shard: Shard, ceiling: boolean): CoordinationOptions | null {
  const sharded = shard.count > 1;
  const port = input.coordinatorPort;
  const host = input.coordinatorHost;
  if (input.coordinator && input.coordinatorUrl !== undefined) throw new InvalidArgumentError('--coordinator-url', input.coordinatorUrl, 'nothing on the coordinator itself (--coordinator): the other shards follow it with --coordinator-url');
  if (input.coordinator && !sharded) throw new InvalidArgumentError('--coordinator', true, 'a sharded run (--shard i/n with n > 1, or the scenario\'s shard:)');
  if (input.coordinatorUrl !== undefined && !sharded) throw new InvalidArgumentError('--coordinator-url', input.coordinatorUrl, 'a sharded run (--shard i/n with n > 1, or the scenario\'s shard:)');
  if (!input.coordinator && port !== undefined) throw new InvalidArgumentError('--coordinator-port', port, 'a port for --coordinator (a follower takes the port in --coordinator-url)');
  if (!input.coordinator && host !== undefined) throw new InvalidArgumentError('--coordinator-host', host, 'an address for --coordinator (a follower takes it in --coordinator-url)');
  if (sharded && ceiling && !input.coordinator && input.coordinatorUrl === undefined) {
    throw new InvalidArgumentError('--shard', describeShard(shard), 'a staged scenario, or a ceiling search with a coordinator: --coordinator on one shard, --coordinator-url URL on the others');
  }
  if ((input.coordinator || input.coordinatorUrl !== undefined) && input.startAt !== undefined) {
    throw new InvalidArgumentError('--start-at', input.startAt, 'nothing with a coordinator: its barrier starts every window on every shard together');
  }
  if (input.coordinator) {
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new InvalidArgumentError('--coordinator-port', port, 'a TCP port, 0–65535 (0: a free one)');
    if (host !== undefined && (host.trim() === '' || /[\s/]/.test(host))) throw new InvalidArgumentError('--coordinator-host', host, 'an address to listen on, like 127.0.0.1 or 0.0.0.0');
    return { role: 'coordinator', host: host ?? DEFAULT_COORDINATOR_HOST, port: port ?? DEFAULT_COORDINATOR_PORT };
  }
  if (input.coordinatorUrl !== undefined) {
    const url = checkTarget('--coordinator-url', input.coordinatorUrl, ['http:'], input.allowRemote === true);
    return { role: 'follower', url: url.toString().replace(/\/$/, '') };
  }
  return null;
}

/** reports/<scenario>-<timestamp>/ unless --out says otherwise. */
export function defaultOutDir(root: string, scenario: string, at: Date): string {
  const stamp = at.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[:]/g, '-');
  return join(root, 'reports', `${scenario}-${stamp}`);
}

export interface RunOutcome {
  exitCode: ExitCode;
  /** One line: why this exit code. */
  reason: string;
}

/**
 * What a finished run exits with, and why: the first row that matches wins.
 *
 *   | when                                                         | exit | EXIT.*        |
 *   | ------------------------------------------------------------ | ---- | ------------- |
 *   | interrupted (Ctrl-C, SIGTERM)                                | 130  | interrupted   |
 *   | did not complete (result.error: the stack failed, time limit) | 3    | sutFailed     |
 *   | the ledger lost an acknowledged write or a created command   | 3    | sutFailed     |
 *   | not trustworthy (summary.trustworthy false): never judged     | 4    | untrustworthy |
 *   | a scenario threshold cannot apply to this run (gate error)   | 2    | badInput      |
 *   | a scenario threshold failed (the gate's outcome "fail")      | 5    | gateFailed    |
 *   | a threshold metric has no value (the gate's outcome "invalid") | 4  | untrustworthy |
 *   | a staged run: a stage window breached the SLO                | 3    | sutFailed     |
 *   | otherwise                                                    | 0    | ok            |
 *
 * `gate` is what `rmmscale gate result.json` made of the run (null: the scenario has no thresholds;
 * an RmmscaleError: the gate refused a threshold). A ceiling search is not failed by its breaching
 * windows: breaking the SLO is how it finds the ceiling. Pure: the table test is test/cli/run-exit-code.test.ts.
 */
export function runOutcome(r: RunResult, gate: GateReport | RmmscaleError | null): RunOutcome {
  if (r.interrupted) return { exitCode: EXIT.interrupted, reason: `interrupted: the partial result was written${r.error ? ` (${r.error})` : ''}` };
  if (r.error !== null || !r.complete) return { exitCode: EXIT.sutFailed, reason: `the run did not complete: ${r.error ?? 'incomplete'}` };
  const lost = r.ledger ? ledgerProblem(r.ledger) : null;
  if (lost) return { exitCode: EXIT.sutFailed, reason: lost };
  if (!r.summary.trustworthy) {
    const why = r.summary.warnings.slice(0, 2).join('; ');
    return { exitCode: EXIT.untrustworthy, reason: `the measurement is not trustworthy, so it is not judged${why ? ` (${why})` : ''}` };
  }
  if (gate instanceof RmmscaleError) return { exitCode: gate.exitCode, reason: gate.message };
  if (gate && gate.outcome === 'fail') return { exitCode: EXIT.gateFailed, reason: `thresholds failed: ${summaryLine(gate)}` };
  if (gate && gate.outcome === 'invalid') {
    const c = gate.checks.find((x) => x.verdict === 'invalid');
    return { exitCode: EXIT.untrustworthy, reason: `a threshold could not be judged: ${c ? `${c.threshold.text}: ${c.message}` : gate.invalid.join('; ')}` };
  }
  // A staged run is judged as its report judges it: by the headline window (the last stage; a
  // ramp before it is how the load got there, not the load being judged).
  if (r.search === null) {
    const w = headlineWindow(r);
    if (w && !w.verdict.ok) return { exitCode: EXIT.sutFailed, reason: `the system under test breached the SLO in ${w.label}: ${w.verdict.breaches.join('; ') || 'breached'}` };
  }
  return { exitCode: EXIT.ok, reason: gate ? `passed: ${summaryLine(gate)}` : 'passed' };
}

/** The exit code a finished run deserves (see runOutcome). */
export function runExitCode(r: RunResult, gate: GateReport | RmmscaleError | null): ExitCode {
  return runOutcome(r, gate).exitCode;
}

/**
 * The scenario's thresholds, judged as `rmmscale gate RESULT` judges them: the result file read back
 * through the gate's own loader, the gate's defaults. Null when there are none; a known error (a
 * threshold that cannot apply to this run) is returned, not thrown, so the run's own outcome can
 * still take precedence.
 */
export async function gateRunResult(resultFile: string): Promise<GateReport | RmmscaleError | null> {
  const { DEFAULT_GATE, loadRun, runGate } = await import('../../gate/gate.js');
  try {
    const run = loadRun(resultFile);
    if (run.result.thresholds.length === 0) return null;
    return runGate({ current: [run], baseline: [], thresholds: [], ...DEFAULT_GATE });
  } catch (err) {
    if (err instanceof RmmscaleError) return err;
    throw err;
  }
}

/**
 * Checked before anything starts, so a typo does not cost a run: every threshold parses, and none
 * is baseline-relative (`run` has no baseline; `rmmscale gate --baseline` checks those).
 */
export function checkScenarioThresholds(thresholds: readonly string[], file: string, reports: { junit?: string; md?: string }): void {
  thresholds.forEach((text, i) => {
    const source = `${file}: thresholds[${i}]`;
    const t = parseThreshold(text, source);
    if (t.value.kind === 'relative') {
      throw new ThresholdError(source, text, `a baseline-relative value (${t.value.text}) cannot be checked by rmmscale run, which has no baseline; check it with rmmscale gate RESULT --baseline BASE.json --threshold ${JSON.stringify(text)}`);
    }
  });
  for (const flag of ['junit', 'md'] as const) {
    const v = reports[flag];
    if (v === undefined) continue;
    if (v === '') throw new InvalidArgumentError(`--${flag}`, v, 'a file path');
    if (thresholds.length === 0) throw new InvalidArgumentError(`--${flag}`, v, `a scenario with thresholds: to report on (${file} has none)`);
  }
}

export async function runRunCli(input: RunCliInput): Promise<ExitCode> {
  const { loadScenario } = await import('../../scenario/load.js');
  const { runScenario } = await import('../../run/run.js');
  const { readResultFile } = await import('../../run/result-file.js');
  const { ProgressPrinter } = await import('../progress.js');
  const { formatRunEvent, printWorkerErrors } = await import('../run-events.js');
  const { parseShard, parseStartAt } = await import('../../swarm/shard.js');
  const { parseVarArgs } = await import('../../swarm/protocol/load-protocol.js');
  const vars = parseVarArgs(input.var ?? []);
  let scenario = loadScenario(input.scenario, vars);
  if (vars.size > 0 && !scenario.agent) {
    throw new InvalidArgumentError('--var', input.var![0], `a scenario with agent: (a protocol whose variables it sets); ${input.scenario} has none`);
  }
  if (input.shard !== undefined) {
    const shard = parseShard('--shard', input.shard);
    if (shard.count > 1 && !scenario.stack.target) throw new InvalidArgumentError('--shard', input.shard, 'a scenario with stack.target (the shards drive one shared stack)');
    scenario = { ...scenario, shard };
  }
  const coordination = coordinationOf(input, scenario.shard, scenario.ceiling !== null);
  const startAtEpochMs = input.startAt === undefined ? null : parseStartAt('--start-at', input.startAt);
  checkScenarioThresholds(scenario.thresholds, input.scenario, { junit: input.junit, md: input.md });
  // Loopback only, unless the user says otherwise: checked before anything starts.
  // (a ws fleet may name several relays, comma-separated: each is checked)
  for (const t of scenario.stack.target?.split(',') ?? []) checkTarget('stack.target', t.trim(), ['http:', 'https:', 'ws:', 'wss:'], input.allowRemote === true);
  // …and so is every node it scrapes (stack.nodes[].metrics).
  scenario.stack.nodes.forEach((n, i) => checkTarget(`stack.nodes[${i}].metrics`, n.metricsUrl, ['http:', 'https:'], input.allowRemote === true));
  const outDir = resolve(input.out ?? defaultOutDir(process.cwd(), scenario.name, new Date()));
  const view = await startLiveView(input.metricsPort ?? null);
  const generatorTargets = view ? [{ job: 'rmmscale-generator', url: view.server.url }] : [];
  // An external target has no nodes of ours to scrape: the generator alone, now.
  if (input.printScrapeConfig && scenario.stack.target) await printScrapeConfig(generatorTargets);
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
    const { resultFile } = await runScenario({
      scenario,
      outDir,
      allowRemote: input.allowRemote === true,
      startAtEpochMs,
      coordination,
      signal: controller.signal,
      // A worker's error is written beside the progress line, as the swarm always wrote it;
      // every other event ends the progress line first.
      live: view?.live,
      onEvent: (e) => {
        if (e.type === 'worker-error') printWorkerErrors(e);
        else log(formatRunEvent(e));
        if (e.type === 'stack-healthy' && input.printScrapeConfig) void printScrapeConfig([...e.nodes.map((n) => ({ job: 'rmmscale-stack', url: n.metricsUrl })), ...generatorTargets]);
      },
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
    // Everything after the run reads result.json as written, as `rmmscale report` and `gate` will:
    // a value that does not survive JSON (Infinity in a plan) must not make the first report differ.
    const result = readResultFile(resultFile);
    // The scenario's thresholds, judged from result.json as written (exactly as `rmmscale gate` would).
    const gate = await gateRunResult(resultFile);
    const outcome = runOutcome(result, gate);
    const files = [`result: ${resultFile}`];
    if (input.report !== false) {
      const { writeReports, terminalSummary } = await import('../../report/index.js');
      const html = join(outDir, 'report.html');
      const md = join(outDir, 'summary.md');
      await writeReports(result, { htmlFile: html, mdFile: md });
      process.stdout.write(terminalSummary(result));
      files.push(`report: ${html}`, `summary: ${md}`);
    }
    if (gate instanceof RmmscaleError) {
      // The outcome's reason when it decides the exit code (2); said here when the run's own outcome wins.
      if (outcome.exitCode !== gate.exitCode) process.stderr.write(`thresholds not checked: ${gate.message}\n`);
    } else if (gate) {
      process.stdout.write(`\n${gateText(gate, 'thresholds')}`);
      if (input.junit) {
        const { gateJunit } = await import('../../gate/junit.js');
        writeFileAtomic(input.junit, gateJunit(gate));
        files.push(`junit: ${input.junit}`);
      }
      if (input.md) {
        const { gateMarkdown } = await import('../../gate/markdown.js');
        writeFileAtomic(input.md, gateMarkdown(gate));
        files.push(`markdown: ${input.md}`);
      }
    }
    process.stdout.write(`${input.report !== false ? '\n' : ''}${files.join('\n')}\n`);
    if (input.report !== false && result.summary.ceilingAgents !== null) process.stdout.write(`size a fleet from these ceilings: rmmscale plan --from ${resultFile} --agents 20000 40000 50000\n`);
    process.stderr.write(`rmmscale run: ${outcome.exitCode === EXIT.ok ? 'ok' : `exit ${outcome.exitCode}`}: ${outcome.reason}\n`);
    return outcome.exitCode;
  } finally {
    await view?.server.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
