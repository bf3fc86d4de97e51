import type { Argv, CommandModule } from 'yargs';
import { InvalidArgumentError } from '../../core/errors.js';

/**
 * `rmmscale run SCENARIO [--out DIR] [--junit FILE] [--md FILE]`: the main job. Exits 0 ok, 3 the run
 * did not complete or a stage breached the SLO, 4 untrustworthy, 5 a scenario threshold failed,
 * 130 interrupted (runOutcome in src/cli/run-cli.ts has the order).
 */
export const runCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'run <scenario>',
  describe: 'run a scenario: start its stack, drive the swarm through its stages or ceiling search, record every node, write result.json and the report',
  builder: (y: Argv) =>
    y
      .positional('scenario', { type: 'string', describe: 'a scenario file (scenarios/*.yaml)' })
      .option('out', { type: 'string', describe: 'output folder [default reports/<scenario>-<timestamp>/]', requiresArg: true })
      .option('allow-remote', { type: 'boolean', describe: 'allow a scenario target that is not loopback' })
      .option('report', { type: 'boolean', default: true, describe: 'write report.html and summary.md beside result.json (--no-report to skip)' })
      .option('junit', { type: 'string', describe: "write the scenario thresholds' verdicts as JUnit XML to FILE (as rmmscale gate --junit)" })
      .option('md', { type: 'string', describe: "write the scenario thresholds' verdicts as Markdown to FILE (as rmmscale gate --md)" }) as Argv<Record<string, unknown>>,
  handler: async (argv) => {
    // As in `rmmscale gate`: no `requiresArg` (yargs reports a missing value as a crash); an empty value is refused here.
    for (const flag of ['junit', 'md'] as const) {
      if (argv[flag] !== undefined && (typeof argv[flag] !== 'string' || argv[flag] === '')) throw new InvalidArgumentError(`--${flag}`, argv[flag], 'a file path');
    }
    const { runRunCli } = await import('../run-cli.js');
    process.exitCode = await runRunCli({
      scenario: String(argv.scenario),
      out: argv.out as string | undefined,
      allowRemote: argv.allowRemote === true,
      report: argv.report !== false,
      junit: argv.junit as string | undefined,
      md: argv.md as string | undefined,
    });
  },
};
