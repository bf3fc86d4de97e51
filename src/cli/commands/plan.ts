import type { Argv, CommandModule } from 'yargs';

/** `rmmscale plan --agents N [--from result.json]`: nodes per tier for a fleet. */
export const planCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'plan',
  describe: 'size a stack: nodes per tier, headroom, the first tier to saturate and one-node failures, from measured ceilings (--from) or the automate model',
  builder: (y: Argv) =>
    y
      .option('agents', { type: 'string', array: true, describe: 'fleet size(s) to plan for [default 20000 40000 50000]', requiresArg: true })
      .option('checkin', { type: 'string', describe: 'check-in model [default 30%/min]', requiresArg: true })
      .option('from', { type: 'string', describe: 'a result.json whose measured per-tier ceilings to use', requiresArg: true })
      .option('slo', { type: 'string', describe: 'p99 bound for the model, e.g. "p99<1s" [default p99<1s]; with --from, the run\'s own', requiresArg: true })
      .option('redundancy', { type: 'string', describe: 'n+1 | none [default n+1]', requiresArg: true })
      .option('max-utilization', { type: 'string', describe: 'plan no node above this share of its ceiling [default 0.8]', requiresArg: true })
      .option('json', { type: 'boolean', describe: 'print the plans as JSON' }) as Argv<Record<string, unknown>>,
  handler: async (argv) => {
    const { runPlanCli } = await import('../plan-cli.js');
    process.exitCode = runPlanCli({
      agents: ((argv.agents as string[] | undefined) ?? []).map(String),
      checkin: argv.checkin as string | undefined,
      from: argv.from as string | undefined,
      slo: argv.slo as string | undefined,
      redundancy: argv.redundancy as string | undefined,
      maxUtilization: argv.maxUtilization as string | undefined,
      json: argv.json === true,
    });
  },
};
