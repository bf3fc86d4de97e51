import { existsSync } from 'node:fs';
import type { Argv, CommandModule, Options } from 'yargs';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { EXIT, type ExitCode } from '../../core/exit-codes.js';
import { deriveFleet, readIdentityFile, writeIdentityFile } from '../../core/identity.js';
import { findSecret, SECRET_ENV } from '../../stack/state-file.js';
import { DEFAULTS, resolveSwarmConfig, type SwarmConfig, type SwarmInput } from '../../swarm/config.js';
import { HOST_STEAL_WARN, type SwarmResult } from '../../swarm/result.js';
import type { StealFreeLag } from '../../swarm/steal-free-lag.js';
import { METRICS_PORT_FLAG, parseMetricsPort, startLiveView } from '../live-view.js';
import { formatUs, ProgressPrinter } from '../progress.js';

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
  'return-home': { key: 'returnHome', type: 'string', describe: `ws: an agent away from its home relay probes it, BASE:MAX backoff with jitter, or off [default ${DEFAULTS.returnHome}]` },
  'connect-rate': { key: 'connectRate', type: 'string', describe: `ws: connects (first and re-) per second, all workers [default ${DEFAULTS.connectRate}]` },
  ca: { key: 'ca', type: 'string', describe: 'CA certificate (PEM) for https/wss targets' },
  insecure: { key: 'insecure', type: 'boolean', describe: 'accept self-signed certificates (test stacks only)' },
  identities: { key: 'identities', type: 'string', describe: 'identity file: reused if it exists, written otherwise' },
  json: { key: 'json', type: 'string', describe: 'write the result document (rmmscale.swarm/1) to FILE' },
  hlog: { key: 'hlog', type: 'string', describe: 'write the HdrHistogram interval log to FILE' },
  protocol: { key: 'protocol', type: 'string', describe: "a protocol file: what each agent sends (docs/protocols.md) [default: rmmscale's own agent API]" },
  var: { key: 'var', type: 'string', array: true, describe: "a protocol variable NAME=VALUE, repeatable (e.g. --var enroll_secret=…)" },
  shard: { key: 'shard', type: 'string', describe: 'run shard i of n of the fleet and its schedule, e.g. 0/3 (merge the results with rmmscale merge)' },
  'start-at': { key: 'startAt', type: 'string', describe: 'start t = 0 at this wall-clock time (ISO 8601 with a zone, or epoch ms), so shards start together' },
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
    return out.option('metrics-port', METRICS_PORT_FLAG) as Argv<Record<string, unknown>>;
  },
  handler: async (argv) => {
    process.exitCode = await runSwarmCli(swarmInputFromArgv(argv), { metricsPort: parseMetricsPort(argv['metrics-port']) });
  },
};

/**
 * The swarm command's I/O: validate, run with a progress line, print the summary, write the
 * result and the .hlog atomically (also after Ctrl-C), and choose the exit code.
 */
export async function runSwarmCli(input: SwarmInput, opts: { metricsPort?: number | null } = {}): Promise<ExitCode> {
  // Loaded before the signal handlers go on: a Ctrl-C must find the swarm started, not its import.
  const { runSwarm } = await import('../../swarm/coordinator.js');
  const { printWorkerErrors } = await import('../run-events.js');
  let cfg = resolveSwarmConfig(input);
  // The secret: --secret, $RMMSCALE_SECRET, or that of the `rmmscale stack up` serving the target.
  // None (a target that is not an rmmscale stack): the config's random one, said once.
  const secret = findSecret('--secret', input.secret, cfg.targets);
  if (secret !== null) cfg = { ...cfg, secret };
  else if (!(cfg.identitiesFile && existsSync(cfg.identitiesFile)) && (!cfg.protocol || JSON.stringify(cfg.protocol.doc).includes('agent.token'))) {
    process.stderr.write(`rmmscale: no --secret, no ${SECRET_ENV} and no running \`rmmscale stack up\` serves ${cfg.targets.join(', ')}: agent tokens are under a random secret (a stack that checks them answers 401)\n`);
  }
  cfg = prepareIdentities(cfg);
  const view = await startLiveView(opts.metricsPort ?? null);

  const controller = new AbortController();
  let signalled = false;
  const onSignal = (): void => {
    if (signalled) return;
    signalled = true;
    process.stderr.write('\nrmmscale: stopping (writing the partial result)…\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const printer = new ProgressPrinter(process.stderr);
  process.stderr.write(
    `rmmscale swarm: ${cfg.agents} agents → ${cfg.targets.join(', ')} for ${cfg.durationMs / 1000}s` +
      `${cfg.warmupMs > 0 ? ` after ${cfg.warmupMs / 1000}s warm-up` : ''} ` +
      `(${cfg.mode}${cfg.mode === 'http' ? `/${cfg.connection}` : ''}, ${cfg.arrival}${cfg.protocol ? `, protocol ${cfg.protocol.name}` : ''})\n`,
  );
  try {
    const { result, hlog } = await runSwarm({ config: cfg, signal: controller.signal, onProgress: (p) => printer.update(p), onEvent: printWorkerErrors, live: view?.live });
    printer.end();
    if (result.verdict.trust) view?.live.judged(result.verdict.trust.judgedAs, result.verdict.trustworthy);
    if (cfg.jsonFile) writeFileAtomic(cfg.jsonFile, JSON.stringify(result, null, 2) + '\n');
    if (cfg.hlogFile) writeFileAtomic(cfg.hlogFile, hlog);
    process.stdout.write(renderSummary(result));
    if (cfg.jsonFile) process.stdout.write(`result: ${cfg.jsonFile}\n`);
    if (cfg.hlogFile) process.stdout.write(`hlog:   ${cfg.hlogFile}\n`);
    return exitCodeFor(result);
  } finally {
    printer.end();
    await view?.server.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** --identities FILE: reuse the fleet in FILE, or derive it from the seed and write it there. */
function prepareIdentities(cfg: SwarmConfig): SwarmConfig {
  if (!cfg.identitiesFile) return cfg;
  if (existsSync(cfg.identitiesFile)) {
    const file = readIdentityFile('--identities', cfg.identitiesFile);
    return { ...cfg, seed: file.seed, agents: Math.min(cfg.agents, file.agents.length) };
  }
  writeIdentityFile(cfg.identitiesFile, cfg.seed, deriveFleet(cfg.seed, cfg.secret, cfg.agents));
  return cfg;
}

export function exitCodeFor(r: SwarmResult): ExitCode {
  if (r.interrupted) return EXIT.interrupted;
  if (!r.verdict.trustworthy) return EXIT.untrustworthy;
  if (r.verdict.sutFailed) return EXIT.sutFailed;
  return EXIT.ok;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** Beside the lag, once steal took some seconds out: the same over the seconds it left alone. */
function stealFreeLagText(q: StealFreeLag | null): string {
  if (q === null || q.seconds === q.ofSeconds) return '';
  if (q.seconds === 0) return ` (no second was free of steal)`;
  return ` (${formatUs(q.lag.p99Us)} over the ${q.seconds} of ${q.ofSeconds} s free of steal)`;
}

export function renderSummary(r: SwarmResult): string {
  const s = r.summary;
  const lines: string[] = [];
  lines.push('');
  const target = r.config.closedLoop ? 'max (closed loop: latency is service time)' : `${s.targetRatePerSec}/s`;
  lines.push(`rate      achieved ${s.achievedRatePerSec}/s  target ${target}`);
  lines.push(
    `requests  intended ${s.intended}  sent ${s.attempted}  completed ${s.completed}  failed ${s.failed}  late ${s.late}  dropped ${s.dropped}  (error rate ${(s.errorRate * 100).toFixed(2)}%)`,
  );
  lines.push('');
  const cols = ['p50', 'p90', 'p95', 'p99', 'p99.9', 'max'];
  lines.push(`${pad('operation', 16)}${pad('count', 9)}${pad('failed', 8)}${cols.map((c) => pad(c, 9)).join('')}service p99`);
  for (const [name, o] of Object.entries(r.ops)) {
    const l = o.latency;
    // p95Us is absent in summaries written before it was recorded: "–", never 0.
    const values = [l.p50Us, l.p90Us, l.p95Us, l.p99Us, l.p999Us, l.maxUs].map((us) => pad(us === undefined ? '–' : formatUs(us), 9));
    lines.push(`${pad(name, 16)}${pad(String(o.count), 9)}${pad(String(o.failed), 8)}${values.join('')}${formatUs(o.serviceTime.p99Us)}`);
  }
  lines.push('(latency from the intended send time; "service p99" from the actual send time)');
  const errs = Object.entries(r.errors);
  if (errs.length > 0) lines.push(`errors    ${errs.map(([k, v]) => `${k}×${v}`).join('  ')}`);
  const g = r.generator;
  lines.push(
    `generator ${g.workers.length} worker(s), cpu max ${Math.round(Math.max(0, ...g.workers.map((w) => w.cpuMax)) * 100)}%, ` +
      `scheduling lag p99 ${formatUs(g.schedulingLag.p99Us)}${stealFreeLagText(g.schedulingLagStealFree)}, host cpu ${g.hostCpuMean === null ? 'n/a' : `${Math.round(g.hostCpuMean * 100)}%`}` +
      `, steal ${g.hostStealMean === null ? 'n/a' : `${(g.hostStealMean * 100).toFixed(1)}%`}` +
      (g.hostStealMax !== null && g.hostStealMax > HOST_STEAL_WARN ? ` (worst second ${(g.hostStealMax * 100).toFixed(0)}%)` : ''),
  );
  if (r.reconnect) {
    const rc = r.reconnect;
    lines.push(`reconnect ${rc.reconnected}/${rc.disconnects} reconnected; 50% by ${rc.t50Ms} ms, 90% by ${rc.t90Ms} ms, 99% by ${rc.t99Ms} ms; peak ${rc.peakConnectsPerSec} connects/s`);
  }
  const v = r.verdict;
  if (v.trust?.judgedAs === 'closed-loop') lines.push(`verdict   the target served at least ${s.achievedRatePerSec}/s; the generator may have been the limit (closed loop: saturated by design)`);
  else if (v.trustworthy) lines.push('verdict   measurement trustworthy: the generator kept its schedule');
  else lines.push(`verdict   NOT TRUSTWORTHY (${v.generatorBound ? 'generator-bound' : 'host-bound'}): these numbers describe the generator, not the target`);
  for (const reason of v.reasons) lines.push(`          - ${reason}`);
  for (const w of v.warnings) lines.push(`warning   ${w}`);
  return lines.join('\n') + '\n';
}
