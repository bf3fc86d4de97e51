import type { Argv, CommandModule } from 'yargs';
import { InvalidArgumentError } from '../../core/errors.js';

/** `rmmscale stack up …` and `rmmscale stack tokens …`. The launcher loads inside the handler. */
export const stackCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'stack <action> [topology]',
  describe: 'run a reference RMM stack (up), or print the agent tokens it accepts (tokens)',
  builder: (y: Argv) =>
    y
      .positional('action', { type: 'string', choices: ['up', 'tokens'] })
      .positional('topology', { type: 'string' })
      .option('profile', { type: 'string', describe: 'capacity profile: automate | none [default none]', requiresArg: true })
      .option('port-base', { type: 'string', describe: 'first port; nodes take consecutive ports [default: free ports]', requiresArg: true })
      .option('secret', { type: 'string', describe: 'stack secret agent and user tokens derive from', requiresArg: true })
      .option('data-dir', { type: 'string', describe: 'where the SQLite database lives [default: a temporary folder]', requiresArg: true })
      .option('seed', { type: 'string', describe: 'tokens: fleet seed', requiresArg: true })
      .option('agents', { type: 'string', describe: 'tokens: how many agents', requiresArg: true })
      .option('json', { type: 'boolean', describe: 'one JSON object per line' }) as Argv<Record<string, unknown>>,
  handler: async (argv) => {
    const { runStackCli } = await import('../stack-cli.js');
    if (argv.action !== 'up' && argv.action !== 'tokens') throw new InvalidArgumentError('action', argv.action, 'up or tokens');
    process.exitCode = await runStackCli(String(argv.action), argv.topology as string | undefined, argv);
  },
};
