import { InvalidArgumentError } from '../core/errors.js';
import { EXIT, type ExitCode } from '../core/exit-codes.js';
import { DEFAULT_SECRET, DEFAULT_SEED, deriveFleet } from '../core/identity.js';
import { startStack, type StackEvent } from '../stack/launcher.js';
import { PROFILES } from '../stack/profiles.js';
import { namedTopology, TOPOLOGY_NAMES } from '../stack/topology.js';

function positiveInt(flag: string, v: unknown, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(flag, v, `a whole number from 1 to ${max}`);
  return n;
}

export async function runStackCli(action: string, topologyArg: string | undefined, argv: Record<string, unknown>): Promise<ExitCode> {
  const secret = (argv.secret as string | undefined) ?? DEFAULT_SECRET;
  const json = argv.json === true;
  if (action === 'tokens') {
    const agents = positiveInt('--agents', argv.agents ?? 10, 1_000_000);
    const seed = (argv.seed as string | undefined) ?? DEFAULT_SEED;
    for (const a of deriveFleet(seed, secret, agents)) {
      process.stdout.write(json ? JSON.stringify({ index: a.index, id: a.id, token: a.token, hostname: a.hostname, os: a.os, client: a.client }) + '\n' : `${a.id} ${a.token}\n`);
    }
    return EXIT.ok;
  }
  if (!topologyArg) throw new InvalidArgumentError('TOPOLOGY', topologyArg, `a topology name: ${TOPOLOGY_NAMES}`);
  const topology = namedTopology(topologyArg);
  const profileName = (argv.profile as string | undefined) ?? 'none';
  const profile = PROFILES[profileName];
  if (!profile) throw new InvalidArgumentError('--profile', profileName, Object.keys(PROFILES).join(' or '));
  const portBase = argv['port-base'] === undefined ? undefined : positiveInt('--port-base', argv['port-base'], 65_000);

  const stack = await startStack(topology, { secret, profile, portBase, dataDir: argv['data-dir'] as string | undefined });
  const print = (e: StackEvent): void => {
    if (json) process.stdout.write(JSON.stringify(e) + '\n');
    else if (e.event === 'node-exit') process.stderr.write(`rmmscale: node ${e.node} (pid ${e.pid}) exited (code ${e.code}, signal ${e.signal})\n`);
  };
  stack.on('event', print);
  const ready: StackEvent = { event: 'ready', entry: stack.entryUrl, nodes: stack.nodes };
  if (json) print(ready);
  else {
    process.stdout.write(`stack ${topology.name} (profile ${profile.name}) is up; entry ${stack.entryUrl}\n`);
    for (const n of stack.nodes) process.stdout.write(`  ${n.name.padEnd(14)} ${n.role.padEnd(7)} ${n.url}  metrics ${n.metricsUrl}  pid ${n.pid}\n`);
    process.stdout.write('Ctrl-C stops every node.\n');
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await stack.stop();
  return EXIT.interrupted;
}
