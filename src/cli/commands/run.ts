import type { Argv, CommandModule } from 'yargs';

/** `rmmscale run SCENARIO [--out DIR]`: the main job. */
export const runCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'run <scenario>',
  describe: 'run a scenario: start its stack, drive the swarm through its stages or ceiling search, record every node, write result.json and the report',
  builder: (y: Argv) =>
    y
      .positional('scenario', { type: 'string', describe: 'a scenario file (scenarios/*.yaml)' })
      .option('out', { type: 'string', describe: 'output folder [default reports/<scenario>-<timestamp>/]', requiresArg: true })
      .option('allow-remote', { type: 'boolean', describe: 'allow a scenario target that is not loopback' })
      .option('report', { type: 'boolean', default: true, describe: 'write report.html and summary.md beside result.json (--no-report to skip)' }) as Argv<Record<string, unknown>>,
  handler: async (argv) => {
    const { runRunCli } = await import('../run-cli.js');
    process.exitCode = await runRunCli({
      scenario: String(argv.scenario),
      out: argv.out as string | undefined,
      allowRemote: argv.allowRemote === true,
      report: argv.report !== false,
    });
  },
};
