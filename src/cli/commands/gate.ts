import type { Argv, CommandModule } from 'yargs';
import { InvalidArgumentError } from '../../core/errors.js';

/**
 * `rmmscale gate CURRENT.json… [--baseline BASE.json…] [--threshold EXPR…] [--junit FILE] [--md FILE]`:
 * thresholds and baseline comparisons on result.json files (docs/gate.md). Exit 0 passed, 5 a
 * threshold failed, 4 the measurement is invalid, 2 bad input.
 */

const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

/** `5%` or a fraction `0.05` → 0.05. */
export function parseNoise(v: unknown): number {
  const s = typeof v === 'string' ? v.trim() : '';
  const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(s);
  const x = m ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
  if (!m || !(x >= 0 && x <= 1)) throw new InvalidArgumentError('--noise', v, 'a run-to-run variation like "5%" (0% to 100%)');
  return x;
}

export const gateCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'gate <current..>',
  describe: 'judge result.json files against thresholds and a baseline (exit 0 passed, 5 failed, 4 invalid measurement)',
  builder: (y: Argv) =>
    y
      .positional('current', { type: 'string', array: true, describe: 'result.json of the run(s) to judge, or directories of runs' })
      .option('baseline', { type: 'string', describe: 'baseline result.json or directory of runs; repeatable' })
      .option('threshold', { type: 'string', describe: 'METRIC OP VALUE, e.g. "checkin.p99 < 500ms", "checkin.p99 <= +10%"; repeatable; replaces a scenario threshold on the same metric and kind' })
      .option('scenario-thresholds', { type: 'boolean', default: true, describe: 'also check the thresholds in result.json (--no-scenario-thresholds: only --threshold)' })
      .option('noise', { type: 'string', describe: 'assumed run-to-run variation when both sides have one run [default 5%]' })
      .option('inconclusive', { type: 'string', describe: 'what an inconclusive comparison counts as: pass | fail [default pass]' })
      .option('junit', { type: 'string', describe: 'write JUnit XML (one test case per threshold) to FILE' })
      .option('md', { type: 'string', describe: 'write a Markdown summary (for $GITHUB_STEP_SUMMARY) to FILE' })
      .option('json', { type: 'boolean', describe: 'print the gate report (rmmscale.gate/1) as JSON' }) as Argv<Record<string, unknown>>,
  handler: async (argv) => {
    const inconclusive = (argv.inconclusive as string | undefined) ?? 'pass';
    if (inconclusive !== 'pass' && inconclusive !== 'fail') throw new InvalidArgumentError('--inconclusive', inconclusive, 'pass or fail');
    const noiseCv = argv.noise === undefined ? undefined : parseNoise(argv.noise);
    // Flags take no `requiresArg` (yargs reports a missing value as a crash); an empty value is refused here.
    for (const flag of ['junit', 'md'] as const) {
      if (argv[flag] !== undefined && (typeof argv[flag] !== 'string' || argv[flag] === '')) throw new InvalidArgumentError(`--${flag}`, argv[flag], 'a file path');
    }
    const { expandRunPaths, loadRun, runGate, gateText, DEFAULT_GATE } = await import('../../gate/gate.js');
    const current = expandRunPaths(list(argv.current), 'CURRENT').map((f) => loadRun(f));
    const baseline = expandRunPaths(list(argv.baseline), '--baseline').map((f) => loadRun(f));
    const report = runGate({
      current,
      baseline,
      thresholds: list(argv.threshold),
      scenarioThresholds: argv['scenario-thresholds'] !== false,
      decide: { ...DEFAULT_GATE.decide, ...(noiseCv === undefined ? {} : { noiseCv }) },
      inconclusive,
    });
    const { writeFileAtomic } = await import('../../core/atomic-write.js');
    if (argv.junit) {
      const { gateJunit } = await import('../../gate/junit.js');
      writeFileAtomic(String(argv.junit), gateJunit(report));
    }
    if (argv.md) {
      const { gateMarkdown } = await import('../../gate/markdown.js');
      writeFileAtomic(String(argv.md), gateMarkdown(report));
    }
    process.stdout.write(argv.json ? JSON.stringify(report, null, 2) + '\n' : gateText(report));
    process.exitCode = report.exitCode;
  },
};
