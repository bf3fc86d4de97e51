import type { Argv, CommandModule, Options } from 'yargs';
import { InvalidArgumentError } from '../../core/errors.js';
import { EXIT, type ExitCode } from '../../core/exit-codes.js';
import { DEFAULT_SEED, deriveFleet, parseSessionScope, userToken } from '../../core/identity.js';
import { isLoopbackHost } from '../../core/loopback.js';
import type { StackEvent, StackOptions } from '../../stack/launcher.js';
import { checkSecret, removeStackState, runningStacks, SECRET_ENV, stateDir, writeStackState } from '../../stack/state-file.js';

/**
 * `rmmscale stack up TOPOLOGY|FILE …` and `rmmscale stack tokens …`. Flags are declared once,
 * keyed by StackCliInput's fields; the launcher, profiles and topologies load when the command
 * runs, so `--help` stays fast.
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
  entry: { key: 'entry', type: 'string', describe: 'fault: which running stack, by its entry URL, when several are up' },
  json: { key: 'json', type: 'boolean', describe: 'one JSON object per line' },
  'print-scrape-config': { key: 'printScrapeConfig', type: 'boolean', describe: 'up: print a Prometheus scrape config for every node\'s /metrics once the stack is up' },
};

export const stackCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'stack <action> [topology] [fault]',
  describe: 'run a reference RMM stack (up TOPOLOGY|FILE), print the agent tokens it accepts (tokens), or break one of its nodes (fault NODE kill|stop|cont|restart)',
  builder: (y: Argv) => {
    let out = y
      .positional('action', { type: 'string', describe: 'up | tokens | fault' })
      .positional('topology', { type: 'string', describe: 'up: single | split2 … split16 | relays1 … relays16 | a .yaml/.json topology file; fault: the NODE (or a tier: its first node)' })
      .positional('fault', { type: 'string', describe: 'fault: kill (SIGKILL) | stop (SIGSTOP) | cont (SIGCONT) | restart (same role, port and data)' });
    for (const [flag, spec] of Object.entries(STACK_FLAGS)) {
      const { key: _key, ...opt } = spec;
      out = out.option(flag, { ...opt, requiresArg: opt.type !== 'boolean' });
    }
    return out as Argv<Record<string, unknown>>;
  },
  handler: async (argv) => {
    const input: Record<string, unknown> = {};
    for (const [flag, spec] of Object.entries(STACK_FLAGS)) if (argv[flag] !== undefined) input[spec.key] = argv[flag];
    if (argv.action === 'fault') process.exitCode = await runStackFault(argv.topology as string | undefined, argv.fault as string | undefined, input as StackCliInput);
    else process.exitCode = await runStackCli(argv.action as string, argv.topology as string | undefined, input as StackCliInput);
  },
};

/** `rmmscale stack …` input as flags give it (strings where the user types numbers). */
export interface StackCliInput {
  profile?: string;
  proxy?: string;
  db?: string;
  dbUrl?: string;
  portBase?: string;
  dataDir?: string;
  secret?: string;
  seed?: string;
  agents?: string;
  user?: string;
  scope?: string;
  entry?: string;
  json?: boolean;
  printScrapeConfig?: boolean;
}

const ACTIONS = ['up', 'tokens', 'fault'] as const;

function wholeNumber(flag: string, v: unknown, min: number, max: number): number {
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(flag, v, `a whole number from ${min} to ${max}`);
  return n;
}

function oneOf<T extends string>(flag: string, v: string | undefined, allowed: readonly T[], fallback: T): T {
  if (v === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(v)) throw new InvalidArgumentError(flag, v, allowed.join(' or '));
  return v as T;
}

/** PostgreSQL URL: loopback only (or a local socket), like every target rmmscale talks to. */
function postgresUrl(v: string | undefined): string {
  const allowed = 'a postgres://USER@127.0.0.1/DB URL (or env DATABASE_URL) with --db postgres';
  if (!v) throw new InvalidArgumentError('--db-url', v, allowed);
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new InvalidArgumentError('--db-url', v, allowed);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new InvalidArgumentError('--db-url', v, allowed);
  if (url.hostname !== '' && !isLoopbackHost(url.hostname)) throw new InvalidArgumentError('--db-url', v, 'a loopback host (127.0.0.0/8, ::1, localhost) or a local socket');
  return v;
}

/** Validate every `stack up` flag before anything starts. */
export async function stackOptionsFromInput(topologyArg: string | undefined, input: StackCliInput, env: NodeJS.ProcessEnv) {
  const { DB_KINDS, PROXY_KINDS } = await import('../../stack/launcher.js');
  const { resolveProfileSet } = await import('../../stack/profiles.js');
  const { loadTopology, TOPOLOGY_NAMES } = await import('../../stack/topology.js');
  if (!topologyArg) throw new InvalidArgumentError('TOPOLOGY', topologyArg, TOPOLOGY_NAMES);
  const topology = loadTopology(topologyArg);
  const profile = resolveProfileSet(input.profile ?? 'none');
  const proxy = oneOf('--proxy', input.proxy, PROXY_KINDS, 'builtin');
  if (proxy === 'haproxy' && !topology.nodes.some((n) => n.role === 'proxy')) throw new InvalidArgumentError('--proxy', proxy, `builtin for topology ${topology.name} (haproxy needs a proxy node: split2 … split16)`);
  const db = oneOf('--db', input.db, DB_KINDS, 'sqlite');
  const dbUrl = db === 'postgres' ? postgresUrl(input.dbUrl ?? (env.DATABASE_URL || undefined)) : undefined;
  if (db !== 'postgres' && input.dbUrl !== undefined) throw new InvalidArgumentError('--db', input.db, 'postgres when --db-url is given');
  const portBase = input.portBase === undefined ? undefined : wholeNumber('--port-base', input.portBase, 1024, 65_535 - topology.nodes.length);
  // No --secret (nor $RMMSCALE_SECRET): the stack generates one.
  const given = input.secret ?? (env[SECRET_ENV] || undefined);
  const secret = given === undefined ? undefined : checkSecret(input.secret !== undefined ? '--secret' : SECRET_ENV, given);
  const options: StackOptions = { secret, profile, proxy, db, dbUrl, portBase, dataDir: input.dataDir };
  return { topology, options };
}

export async function runStackCli(action: string, topologyArg: string | undefined, input: StackCliInput): Promise<ExitCode> {
  oneOf('ACTION', action, ACTIONS, 'up');
  const json = input.json === true;
  if (action === 'tokens') {
    if (input.scope !== undefined && input.user === undefined) throw new InvalidArgumentError('--scope', input.scope, 'a scope together with --user NAME');
    if (input.user !== undefined) {
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(input.user)) throw new InvalidArgumentError('--user', input.user, 'a user name of 1-64 letters, digits, _ or -');
      if (input.scope !== undefined) parseSessionScope('--scope', input.scope);
      const secret = tokensSecret(input.secret);
      const token = userToken(secret, input.user, input.scope);
      process.stdout.write(json ? JSON.stringify({ user: input.user, scope: input.scope ?? null, token }) + '\n' : `${token}\n`);
      return EXIT.ok;
    }
    const agents = input.agents === undefined ? 10 : wholeNumber('--agents', input.agents, 1, 1_000_000);
    const seed = input.seed ?? DEFAULT_SEED;
    const secret = tokensSecret(input.secret);
    const lines: string[] = [];
    for (const a of deriveFleet(seed, secret, agents)) {
      lines.push(json ? JSON.stringify({ index: a.index, id: a.id, token: a.token, hostname: a.hostname, os: a.os, client: a.client }) : `${a.id} ${a.token}`);
      if (lines.length >= 1000) process.stdout.write(lines.splice(0).join('\n') + '\n');
    }
    if (lines.length) process.stdout.write(lines.join('\n') + '\n');
    return EXIT.ok;
  }

  const { topology, options } = await stackOptionsFromInput(topologyArg, input, process.env);
  const { startStack } = await import('../../stack/launcher.js');
  // One handler for the whole life of the command: a signal during start-up stops the stack as soon
  // as it is up, and a second Ctrl-C while stopping is harmless instead of killing this process
  // half-way through stopping its nodes.
  let requestStop!: () => void;
  const stopRequested = new Promise<void>((resolve) => (requestStop = resolve));
  const onSignal = (): void => requestStop();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const stack = await startStack(topology, options).catch((err: unknown) => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    throw err;
  });
  const print = (e: StackEvent): void => {
    if (json) process.stdout.write(JSON.stringify(e) + '\n');
    else if (e.event === 'node-exit') process.stderr.write(`rmmscale: node ${e.node} (pid ${e.pid}) exited (${e.signal ?? `code ${e.code}`})\n`);
  };
  let stateFile: string;
  let control: { url: string; close: () => Promise<void> } | null = null;
  try {
    // `stack fault` asks this process: it alone can restart a node on its port with its spec.
    const { startControlServer } = await import('../../stack/control.js');
    const { deriveKey } = await import('../../core/identity.js');
    control = await startControlServer(stack, deriveKey(stack.secret, 'control'), (f) => {
      if (json) process.stdout.write(JSON.stringify({ event: 'fault', entry: stack.entryUrl, ...f }) + '\n');
      else process.stderr.write(`rmmscale: fault: ${f.action} ${f.node} (pid ${f.pid})\n`);
    });
    // The secret, for `rmmscale swarm`, `stack tokens` and `run` on this host (0600; removed on stop).
    stateFile = writeStackState({
      pid: process.pid,
      topology: topology.name,
      entry: stack.entryUrl,
      urls: stack.nodes.map((n) => n.url),
      secret: stack.secret,
      startedAt: new Date().toISOString(),
      control: control.url,
    });
  } catch (err) {
    await control?.close();
    await stack.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    throw err;
  }
  stack.on('event', print);
  print({ event: 'ready', entry: stack.entryUrl, nodes: stack.nodes, stateFile });
  if (!json) {
    process.stdout.write(`stack ${topology.name} (profile ${options.profile!.name}, db ${options.db}, proxy ${options.proxy}) is up; entry ${stack.entryUrl}\n`);
    for (const n of stack.nodes) process.stdout.write(`  ${n.name.padEnd(14)} ${n.role.padEnd(6)} ${n.url.padEnd(24)} metrics ${n.metricsUrl}  pid ${n.pid}\n`);
    // Printed this once, and only when generated; `rmmscale swarm` and `stack tokens` read it from the state file.
    if (stack.secretGenerated) process.stdout.write(`secret: ${stack.secret} (generated; shown once)\n`);
    process.stdout.write(`state: ${stateFile} (mode 0600: the secret, for rmmscale swarm / stack tokens on this host)\n`);
  }
  if (input.printScrapeConfig === true) {
    const { scrapeConfig } = await import('../../metrics/scrape-config.js');
    const yaml = scrapeConfig(stack.nodes.map((n) => ({ job: 'rmmscale-stack', url: n.metricsUrl })));
    if (json) process.stdout.write(JSON.stringify({ event: 'scrape-config', yaml }) + '\n');
    else process.stdout.write(`# Prometheus scrape config (docs/k8s.md#a-live-view)\n${yaml}`);
  }
  if (!json) process.stdout.write('Ctrl-C stops every node.\n');
  await stopRequested;
  await control.close();
  await stack.stop();
  removeStackState(stateFile);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  return EXIT.interrupted;
}

/**
 * `rmmscale stack fault NODE kill|stop|cont|restart`: ask the running `stack up` (found through its
 * state file; `--entry URL` picks one of several) to do it, over its loopback control endpoint.
 */
export async function runStackFault(node: string | undefined, action: string | undefined, input: StackCliInput): Promise<ExitCode> {
  const { FAULT_ACTIONS, requestFault } = await import('../../stack/control.js');
  const { deriveKey } = await import('../../core/identity.js');
  if (!node) throw new InvalidArgumentError('NODE', node, 'the node to break, as `stack up` printed it (web-agent-1, db, relay-2) or a tier name');
  if (!action || !(FAULT_ACTIONS as readonly string[]).includes(action)) throw new InvalidArgumentError('FAULT', action, FAULT_ACTIONS.join(' | '));
  const running = runningStacks().filter((s) => s.control);
  const chosen = input.entry === undefined ? running : running.filter((s) => s.entry === input.entry);
  if (chosen.length !== 1) {
    const why =
      running.length === 0
        ? `no \`rmmscale stack up\` is running (state files in ${stateDir()})`
        : chosen.length === 0
          ? `none has entry ${input.entry}; running: ${running.map((s) => s.entry).join(', ')}`
          : `${running.length} stacks are running (entries ${running.map((s) => s.entry).join(', ')})`;
    throw new InvalidArgumentError('--entry', input.entry, `the entry URL of one running stack: ${why}`);
  }
  const s = chosen[0]!;
  const done = await requestFault(s.control!, deriveKey(s.secret, 'control'), node, action);
  process.stdout.write(input.json === true ? JSON.stringify(done) + '\n' : `${done.action} ${done.node}: done (pid ${done.pid})\n`);
  return EXIT.ok;
}

/** `stack tokens`: --secret, $RMMSCALE_SECRET, or the one stack `stack up` runs on this host. */
function tokensSecret(flag: string | undefined): string {
  const given = flag ?? (process.env[SECRET_ENV] || undefined);
  if (given !== undefined) return checkSecret(flag !== undefined ? '--secret' : SECRET_ENV, given);
  const running = runningStacks();
  if (running.length === 1) return running[0].secret;
  const why = running.length === 0 ? `no \`rmmscale stack up\` is running (state files in ${stateDir()})` : `${running.length} stacks are running (entries ${running.map((s) => s.entry).join(', ')})`;
  throw new InvalidArgumentError('--secret', flag, `the stack's secret (or env ${SECRET_ENV}): ${why}`);
}
