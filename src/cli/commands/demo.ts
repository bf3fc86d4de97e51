import type { Argv, CommandModule } from 'yargs';

/** `rmmscale demo`: the quick start. The reference single stack driven by the article's fleet. */
export const demoCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'demo',
  describe: 'start the single stack (embedded SQLite, automate profile) and drive it with 20,000 agents at 30%/min for 60 s',
  builder: (y: Argv) =>
    y
      .option('agents', { type: 'string', describe: 'agents [default 20000]', requiresArg: true })
      .option('duration', { type: 'string', describe: 'measured time [default 60s]', requiresArg: true })
      .option('profile', { type: 'string', describe: 'capacity profile: automate | none [default automate]', requiresArg: true })
      .option('json', { type: 'string', describe: 'write the swarm result document to FILE', requiresArg: true }) as Argv<Record<string, unknown>>,
  handler: async (argv) => {
    const { runDemo } = await import('../demo-cli.js');
    process.exitCode = await runDemo({
      agents: (argv.agents as string | undefined) ?? '20000',
      duration: (argv.duration as string | undefined) ?? '60s',
      profile: (argv.profile as string | undefined) ?? 'automate',
      json: argv.json as string | undefined,
    });
  },
};
