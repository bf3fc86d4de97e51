import type { Argv, CommandModule, Options } from 'yargs';
import type { SwarmInput } from '../../swarm/config.js';
import { DEFAULTS } from '../../swarm/config.js';

/**
 * `rmmscale swarm`: flags are declared once here, keyed by SwarmInput's field names, so a config
 * key cannot drift from its flag. Heavy modules load inside the handler.
 */
type FlagSpec = Options & { key: keyof SwarmInput };

export const SWARM_FLAGS: Record<string, FlagSpec> = {
  target: { key: 'target', type: 'string', describe: 'agent API base URL (http/https), or relay tunnel URL(s) for --mode ws, comma-separated' },
  agents: { key: 'agents', type: 'string', describe: `simulated agents [default ${DEFAULTS.agents}]` },
  checkin: { key: 'checkin', type: 'string', describe: `share of the fleet checking in each minute [default ${DEFAULTS.checkin}]` },
  'checkin-interval': { key: 'checkinInterval', type: 'string', describe: 'every agent checks in once per interval, e.g. 5m' },
  rate: { key: 'rate', type: 'string', describe: 'aggregate rate spread over the fleet, e.g. 250/s' },
  arrival: { key: 'arrival', type: 'string', describe: `periodic (drift-free per agent) | poisson (memoryless aggregate) [default ${DEFAULTS.arrival}]` },
  jitter: { key: 'jitter', type: 'string', describe: 'move each periodic fire by up to ± this, e.g. 2s' },
  duration: { key: 'duration', type: 'string', describe: `how long to run [default ${DEFAULTS.duration}]` },
  warmup: { key: 'warmup', type: 'string', describe: 'run at the starting load for this long before measuring (whole seconds; shown as warm-up, not counted)' },
  stage: { key: 'stage', type: 'string', array: true, describe: 'ramp stage DURATION:AGENTS[@CHECKIN], repeatable; stages start from 0 agents' },
  mode: { key: 'mode', type: 'string', describe: 'http (polling agents) | ws (persistent tunnels to relays)' },
  connection: { key: 'connection', type: 'string', describe: `http: per-checkin | keepalive | pool [default ${DEFAULTS.connection}]` },
  connections: { key: 'connections', type: 'string', describe: `pool mode: connections per worker [default ${DEFAULTS.connections}]` },
  workers: { key: 'workers', type: 'string', describe: 'worker processes, or auto (from the open-file limit and the rate) [default auto]' },
  seed: { key: 'seed', type: 'string', describe: 'fleet seed: same seed, same agents and schedule' },
  secret: { key: 'secret', type: 'string', describe: 'stack secret the agent tokens are derived with [default: env RMMSCALE_SECRET, else the `rmmscale stack up` serving --target]' },
  mix: { key: 'mix', type: 'string', describe: `message mix, e.g. checkin=90,inventory=5,heartbeat=5 [default ${DEFAULTS.mix}]` },
  'command-delay': { key: 'commandDelay', type: 'string', describe: `mean simulated command execution time [default ${DEFAULTS.commandDelay}]` },
  timeout: { key: 'timeout', type: 'string', describe: `per-request timeout [default ${DEFAULTS.timeout}]` },
  'late-threshold': { key: 'lateThreshold', type: 'string', describe: `a send later than this after its intended time counts as late [default ${DEFAULTS.lateThreshold}]` },
  'max-error-rate': { key: 'maxErrorRate', type: 'string', describe: `error rate above which the run fails (exit 3) [default ${DEFAULTS.maxErrorRate}]` },
  'source-addresses': { key: 'sourceAddresses', type: 'string', describe: 'loopback source addresses to spread sockets over (127.0.0.2…), or auto' },
  reconnect: { key: 'reconnect', type: 'string', describe: `ws reconnect policy: exponential:BASE:MAX | fixed:DELAY | linear:STEP:MAX [default ${DEFAULTS.reconnect}]` },
  'connect-rate': { key: 'connectRate', type: 'string', describe: `ws: connects (first and re-) per second, all workers [default ${DEFAULTS.connectRate}]` },
  ca: { key: 'ca', type: 'string', describe: 'CA certificate (PEM) for https/wss targets' },
  insecure: { key: 'insecure', type: 'boolean', describe: 'accept self-signed certificates (test stacks only)' },
  identities: { key: 'identities', type: 'string', describe: 'identity file: reused if it exists, written otherwise' },
  json: { key: 'json', type: 'string', describe: 'write the result document (rmmscale.swarm/1) to FILE' },
  hlog: { key: 'hlog', type: 'string', describe: 'write the HdrHistogram interval log to FILE' },
  'allow-remote': { key: 'allowRemote', type: 'boolean', describe: 'allow a target outside loopback (never in tests)' },
};

export function swarmInputFromArgv(argv: Record<string, unknown>): SwarmInput {
  const input: Record<string, unknown> = {};
  for (const [flag, spec] of Object.entries(SWARM_FLAGS)) {
    const v = argv[flag];
    if (v !== undefined) input[spec.key] = v;
  }
  return input as SwarmInput;
}

export const swarmCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'swarm',
  describe: 'drive an agent API or relays with a simulated RMM fleet (open model, CO-corrected)',
  builder: (y: Argv) => {
    let out = y;
    for (const [flag, spec] of Object.entries(SWARM_FLAGS)) {
      const { key: _key, ...opt } = spec;
      out = out.option(flag, { ...opt, requiresArg: opt.type !== 'boolean' });
    }
    return out as Argv<Record<string, unknown>>;
  },
  handler: async (argv) => {
    const { runSwarmCli } = await import('../swarm-cli.js');
    process.exitCode = await runSwarmCli(swarmInputFromArgv(argv));
  },
};
