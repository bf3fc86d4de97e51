import type { Argv, CommandModule, Options } from 'yargs';
import type { StackCliInput } from '../stack-cli.js';

/**
 * `rmmscale stack up TOPOLOGY|FILE …` and `rmmscale stack tokens …`. Flags are declared once,
 * keyed by StackCliInput's fields; the launcher loads inside the handler, so `--help` stays fast.
 */
type FlagSpec = Options & { key: keyof StackCliInput };

export const STACK_FLAGS: Record<string, FlagSpec> = {
  profile: { key: 'profile', type: 'string', describe: 'up: capacity profile set: automate | none | a .yaml/.json file [default none]' },
  proxy: { key: 'proxy', type: 'string', describe: 'up: builtin | haproxy (the system haproxy with an equivalent config) [default builtin]' },
  db: { key: 'db', type: 'string', describe: 'up: sqlite | postgres [default sqlite]' },
  'db-url': { key: 'dbUrl', type: 'string', describe: 'up: PostgreSQL URL for --db postgres [default: env DATABASE_URL]' },
  'port-base': { key: 'portBase', type: 'string', describe: 'up: first port; nodes take consecutive ports in topology order [default: free ports]' },
  'data-dir': { key: 'dataDir', type: 'string', describe: 'up: where the SQLite database lives [default: a temporary folder, removed on stop]' },
  secret: { key: 'secret', type: 'string', describe: 'stack secret that agent and user tokens derive from [up: generated; tokens: the running stack\'s; env RMMSCALE_SECRET]' },
  seed: { key: 'seed', type: 'string', describe: 'tokens: fleet seed (the swarm\'s --seed)' },
  agents: { key: 'agents', type: 'string', describe: 'tokens: how many agents [default 10]' },
  user: { key: 'user', type: 'string', describe: 'tokens: print a user token for this user instead of agent tokens' },
  scope: { key: 'scope', type: 'string', describe: 'tokens --user: the sessions it may open: * | agents:ID,… | group:NAME, optionally @PROTOCOL,…' },
  json: { key: 'json', type: 'boolean', describe: 'one JSON object per line' },
};

export const stackCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'stack <action> [topology]',
  describe: 'run a reference RMM stack (up TOPOLOGY|FILE), or print the agent tokens it accepts (tokens)',
  builder: (y: Argv) => {
    let out = y
      .positional('action', { type: 'string', describe: 'up | tokens' })
      .positional('topology', { type: 'string', describe: 'up: single | split2 … split16 | relays1 … relays16 | a .yaml/.json topology file' });
    for (const [flag, spec] of Object.entries(STACK_FLAGS)) {
      const { key: _key, ...opt } = spec;
      out = out.option(flag, { ...opt, requiresArg: opt.type !== 'boolean' });
    }
    return out as Argv<Record<string, unknown>>;
  },
  handler: async (argv) => {
    const { runStackCli } = await import('../stack-cli.js');
    const input: Record<string, unknown> = {};
    for (const [flag, spec] of Object.entries(STACK_FLAGS)) if (argv[flag] !== undefined) input[spec.key] = argv[flag];
    process.exitCode = await runStackCli(argv.action as string, argv.topology as string | undefined, input as StackCliInput);
  },
};
