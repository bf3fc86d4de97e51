import { InvalidArgumentError, ValidationError, RmmscaleError } from '../core/errors.js';
import { DEFAULT_SEED, generateSecret } from '../core/identity.js';
import { checkTarget, isLoopbackHost } from '../core/loopback.js';
import { MESSAGE_KINDS, type MessageKind } from '../core/protocol.js';
import {
  describeCheckin,
  parseCheckinFractionPerMin,
  parseDurationMs,
  parseRatePerSec,
  perAgentFreqPerMs,
  type CheckinModel,
} from '../core/units.js';
import { buildProfile, type LoadProfile } from './schedule.js';
import { parseReconnectPolicy, parseReturnHome } from './reconnect.js';
import { loadProtocolFile } from './protocol/load-protocol.js';
import type { ProtocolSpec } from './protocol/types.js';
import { NO_SHARD, parseShard, parseStartAt, type Shard } from './shard.js';

/**
 * The swarm's configuration, validated once. Flags (src/cli/commands/swarm.ts) and scenario files
 * both produce a `SwarmInput`; `resolveSwarmConfig` checks every field, lists every problem, and
 * returns a `SwarmConfig` whose units are explicit.
 */

export const ARRIVALS = ['periodic', 'poisson'] as const;
export const MODES = ['http', 'ws'] as const;
export const CONNECTIONS = ['per-checkin', 'keepalive', 'pool'] as const;
export type Arrival = (typeof ARRIVALS)[number];
export type Mode = (typeof MODES)[number];
export type ConnectionPolicy = (typeof CONNECTIONS)[number];
/** Scheduled kinds: command results are follow-ups, not scheduled. */
export type ScheduledKind = Exclude<MessageKind, 'command-result'>;
export const SCHEDULED_KINDS: readonly ScheduledKind[] = MESSAGE_KINDS.filter((k): k is ScheduledKind => k !== 'command-result');

/** Raw input as it comes from flags or a scenario: strings where the user writes units. */
export interface SwarmInput {
  target?: string;
  agents?: number | string;
  checkin?: string;
  checkinInterval?: string;
  rate?: string;
  arrival?: string;
  jitter?: string;
  duration?: string;
  warmup?: string;
  stage?: string[];
  /** With `stage`: the agent count the first stage ramps from (default 0). Not a CLI flag: `rmmscale run` chains its stages with it. */
  rampFrom?: number;
  mode?: string;
  connection?: string;
  connections?: number | string;
  workers?: number | string;
  seed?: string;
  secret?: string;
  mix?: string;
  commandDelay?: string;
  timeout?: string;
  lateThreshold?: string;
  maxErrorRate?: string;
  sourceAddresses?: number | string;
  reconnect?: string;
  returnHome?: string;
  connectRate?: string;
  ca?: string;
  insecure?: boolean;
  identities?: string;
  json?: string;
  hlog?: string;
  allowRemote?: boolean;
  /** A protocol file (docs/protocols.md): what each agent sends instead of rmmscale's own API. */
  protocol?: string;
  /** The protocol's declared variables, NAME=VALUE each. */
  var?: string[];
  /** `i/n`: run shard i of n of the fleet (shard.ts). */
  shard?: string;
  /** ISO time or epoch ms: t = 0 at this wall-clock instant (shards start together). */
  startAt?: string;
}

export interface StageSpec {
  durationMs: number;
  agents: number;
  checkin: CheckinModel | null;
}

/**
 * What decides when a request goes out, chosen once (resolveSwarmConfig) and nowhere again.
 * - `open` (the default): the schedule sends at the check-in model's rate whatever the target does;
 *   latency counts from the intended send time (the profile, arrival and jitter say when).
 * - `closed` (`--rate max`): for maximum-throughput tests. Each of `connections` (all workers
 *   together, as wrk's -c) sends its next check-in as soon as the previous one ends; there is no
 *   schedule, so latency is service time. HTTP pool connections only.
 */
export type Workload = { kind: 'open'; checkin: CheckinModel } | { kind: 'closed'; connections: number };

/** The workload as the user wrote it: the check-in model (`30%/min`, `250/s`, `every 5 min`), or `max` for a closed loop. */
export function describeWorkload(w: Workload): string {
  return w.kind === 'open' ? describeCheckin(w.checkin) : 'max';
}

export interface SwarmConfig {
  /** Base URLs: one for HTTP; one or more relay tunnel URLs for ws (comma-separated on the CLI). */
  targets: string[];
  agents: number;
  workload: Workload;
  /** Open workload: periodic or Poisson arrivals. */
  arrival: Arrival;
  jitterMs: number;
  /** Measured window length (the profile is warmupMs longer). */
  durationMs: number;
  /**
   * Load at the starting level before the measured window; sent for real, shown in the series
   * as warm-up, and left out of totals, histograms and the verdict.
   */
  warmupMs: number;
  stages: StageSpec[];
  profile: LoadProfile;
  mode: Mode;
  connection: ConnectionPolicy;
  /** Pool mode of an open workload: connections per worker (a closed one's are in `workload`). */
  poolConnections: number;
  /** null = decide from the open-file limit and the rate at run time. */
  workers: number | null;
  seed: string;
  secret: string;
  mix: Record<ScheduledKind, number>;
  commandDelayMs: number;
  timeoutMs: number;
  lateThresholdMs: number;
  maxErrorRate: number;
  /** Loopback source addresses to spread sockets over; null = decide at run time. */
  sourceAddresses: number | null;
  reconnect: string;
  /** ws: how an agent that failed over goes back to its home relay ("BASE:MAX" or "off"; reconnect.ts). */
  returnHome: string;
  /** ws: first connects and reconnects per second, all workers together. */
  connectRatePerSec: number;
  caFile: string | null;
  insecure: boolean;
  identitiesFile: string | null;
  jsonFile: string | null;
  hlogFile: string | null;
  allowRemote: boolean;
  /** A template protocol (src/swarm/protocol/); null = rmmscale's own agent API, the fixed path. */
  protocol: ProtocolSpec | null;
  /** The slice of the fleet this process runs ({0, 1}: all of it). `agents` is still the whole fleet's. */
  shard: Shard;
  /**
   * A protocol with enrolment: the folder where workers keep their agents' enrolment between swarms
   * (protocol/enrolled-state.ts). `rmmscale run` gives one per run, so agents enrol once per run,
   * not once per window; null (`rmmscale swarm`): every swarm enrols its agents.
   */
  enrolledStateDir: string | null;
  /** t = 0 at this wall-clock instant (epoch ms); null: as soon as the workers are ready. */
  startAtEpochMs: number | null;
}

/** Tunnel connects per second, the whole fleet together, unless --connect-rate says otherwise. */
export const DEFAULT_CONNECT_RATE_PER_SEC = 4000;

export const DEFAULTS = {
  agents: 1000,
  checkin: '30%/min',
  arrival: 'periodic',
  jitter: '0ms',
  duration: '60s',
  mode: 'http',
  connection: 'per-checkin',
  connections: 64,
  mix: 'checkin=1',
  commandDelay: '200ms',
  timeout: '30s',
  lateThreshold: '10ms',
  maxErrorRate: '1%',
  reconnect: 'exponential:1s:60s',
  returnHome: '5s:60s',
  connectRate: `${DEFAULT_CONNECT_RATE_PER_SEC}/s`,
} as const;

/** DEFAULTS as values, for settings built without strings (`rmmscale run`); a test keeps the two equal. */
export const DEFAULT_SETTINGS = {
  poolConnections: 64,
  commandDelayMs: 200,
  lateThresholdMs: 10,
  maxErrorRate: 0.01,
  reconnect: 'exponential:1s:60s',
  returnHome: '5s:60s',
  connectRatePerSec: DEFAULT_CONNECT_RATE_PER_SEC,
} as const;

const MAX_AGENTS = 2_000_000;

function oneOf<T extends string>(field: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new InvalidArgumentError(field, value, `one of ${allowed.join(', ')}`);
}

function parsePercent(field: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)%$/.exec(value.trim());
  if (!m || Number(m[1]) > 100) throw new InvalidArgumentError(field, value, 'a percentage like "1%" (0–100)');
  return Number(m[1]) / 100;
}

export function parseMix(field: string, value: string): Record<ScheduledKind, number> {
  const mix: Record<ScheduledKind, number> = { checkin: 0, heartbeat: 0, inventory: 0 };
  const allowed = `comma-separated KIND=WEIGHT with KIND in ${SCHEDULED_KINDS.join(', ')}, e.g. "checkin=90,inventory=5,heartbeat=5"`;
  for (const part of value.split(',')) {
    const m = /^\s*([a-z-]+)\s*=\s*(\d+(?:\.\d+)?)\s*$/.exec(part);
    if (!m || !(SCHEDULED_KINDS as readonly string[]).includes(m[1])) throw new InvalidArgumentError(field, value, allowed);
    mix[m[1] as ScheduledKind] = Number(m[2]);
  }
  if (SCHEDULED_KINDS.every((k) => mix[k] === 0)) throw new InvalidArgumentError(field, value, `${allowed}, with a weight above 0`);
  return mix;
}

/** `DURATION:AGENTS[@CHECKIN]`, e.g. `30s:1000`, `2m:20000@30%/min`, `1m:5000@250/s`. */
export function parseStage(field: string, value: string): StageSpec {
  const m = /^([^:@]+):(\d+)(?:@(.+))?$/.exec(value.trim());
  const allowed = 'DURATION:AGENTS[@CHECKIN] like "30s:1000", "2m:20000@30%/min" or "1m:5000@250/s"';
  if (!m) throw new InvalidArgumentError(field, value, allowed);
  const durationMs = parseDurationMs(field, m[1]);
  const agents = Number(m[2]);
  if (agents > MAX_AGENTS) throw new InvalidArgumentError(field, value, `at most ${MAX_AGENTS} agents`);
  const checkin = m[3] ? parseCheckinModel(field, m[3]) : null;
  return { durationMs, agents, checkin };
}

function parseCheckinModel(field: string, value: string): CheckinModel {
  if (value.includes('%')) return { kind: 'fraction', fractionPerMin: parseCheckinFractionPerMin(field, value) };
  if (value.includes('/')) return { kind: 'rate', ratePerSec: parseRatePerSec(field, value) };
  throw new InvalidArgumentError(field, value, 'a check-in like "30%/min" or a rate like "250/s"');
}

function positiveInt(field: string, value: unknown, max: number): number {
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(field, value, `a whole number from 1 to ${max}`);
  return n;
}

/**
 * Validate everything, collecting one line per problem (flag names as the user typed them), and
 * build the load profile.
 */
export function resolveSwarmConfig(input: SwarmInput): SwarmConfig {
  const problems: string[] = [];
  const take = <T>(fn: () => T, fallback: T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof RmmscaleError) {
        problems.push(err.message);
        return fallback;
      }
      throw err;
    }
  };

  const mode = take(() => oneOf('--mode', input.mode ?? DEFAULTS.mode, MODES), 'http' as Mode);
  const allowRemote = input.allowRemote === true;
  const targets = take(() => {
    if (!input.target) throw new InvalidArgumentError('--target', input.target, 'a URL like http://127.0.0.1:8080 (required)');
    const schemes = mode === 'ws' ? ['ws:', 'wss:'] : ['http:', 'https:'];
    return input.target.split(',').map((t) => checkTarget('--target', t.trim(), schemes, allowRemote).toString().replace(/\/$/, ''));
  }, [] as string[]);

  const agents = take(() => (input.agents === undefined ? DEFAULTS.agents : positiveInt('--agents', input.agents, MAX_AGENTS)), DEFAULTS.agents);

  const given = [input.checkin !== undefined, input.checkinInterval !== undefined, input.rate !== undefined].filter(Boolean).length;
  if (given > 1) problems.push('--checkin, --checkin-interval, --rate: expected at most one of them, got ' + given);
  const closedLoop = input.rate === 'max';
  if (closedLoop && input.connection !== undefined && input.connection !== 'pool') {
    problems.push(`--connection: --rate max needs --connection pool, got "${input.connection}"`);
  }
  const checkin = take((): CheckinModel | null => {
    if (closedLoop) return null;
    if (input.rate !== undefined) return { kind: 'rate', ratePerSec: parseRatePerSec('--rate', input.rate) };
    if (input.checkinInterval !== undefined) return { kind: 'interval', intervalMs: parseDurationMs('--checkin-interval', input.checkinInterval) };
    return { kind: 'fraction', fractionPerMin: parseCheckinFractionPerMin('--checkin', input.checkin ?? DEFAULTS.checkin) };
  }, { kind: 'fraction', fractionPerMin: 0.3 });
  if (checkin?.kind === 'interval' && !(checkin.intervalMs > 0)) problems.push(`--checkin-interval: expected a duration above 0, got "${input.checkinInterval}"`);

  const arrival = take(() => oneOf('--arrival', input.arrival ?? DEFAULTS.arrival, ARRIVALS), 'periodic' as Arrival);
  const jitterMs = take(() => parseDurationMs('--jitter', input.jitter ?? DEFAULTS.jitter), 0);
  const warmupMs = take(() => parseDurationMs('--warmup', input.warmup ?? '0s'), 0);
  if (warmupMs % 1000 !== 0) problems.push(`--warmup: expected whole seconds (the series is per second), got "${input.warmup}"`);
  const durationMs = take(() => parseDurationMs('--duration', input.duration ?? DEFAULTS.duration), 60_000);
  if (input.duration !== undefined && durationMs <= 0) problems.push(`--duration: expected a duration above 0, got "${input.duration}"`);
  const stages = take(() => (input.stage ?? []).map((s) => parseStage('--stage', s)), [] as StageSpec[]);
  const connection = closedLoop ? 'pool' : take(() => oneOf('--connection', input.connection ?? DEFAULTS.connection, CONNECTIONS), 'per-checkin' as ConnectionPolicy);
  const poolConnections = take(() => (input.connections === undefined ? DEFAULTS.connections : positiveInt('--connections', input.connections, 10_000)), 64);
  const workers = take(() => (input.workers === undefined || input.workers === 'auto' ? null : positiveInt('--workers', input.workers, 64)), null);
  const mix = take(() => parseMix('--mix', input.mix ?? DEFAULTS.mix), { checkin: 1, heartbeat: 0, inventory: 0 });
  const commandDelayMs = take(() => parseDurationMs('--command-delay', input.commandDelay ?? DEFAULTS.commandDelay), 200);
  const timeoutMs = take(() => parseDurationMs('--timeout', input.timeout ?? DEFAULTS.timeout), 30_000);
  const lateThresholdMs = take(() => parseDurationMs('--late-threshold', input.lateThreshold ?? DEFAULTS.lateThreshold), 10);
  const maxErrorRate = take(() => parsePercent('--max-error-rate', input.maxErrorRate ?? DEFAULTS.maxErrorRate), 0.01);
  const sourceAddresses = take(
    () => (input.sourceAddresses === undefined || input.sourceAddresses === 'auto' ? null : positiveInt('--source-addresses', input.sourceAddresses, 250)),
    null,
  );
  if (sourceAddresses !== null && targets.length > 0 && !targets.every((t) => isLoopbackHost(new URL(t).hostname))) {
    problems.push('--source-addresses: expected "auto" for a remote target (127.0.0.x sources only reach loopback)');
  }
  const reconnect = input.reconnect ?? DEFAULTS.reconnect;
  take(() => parseReconnectPolicy('--reconnect', reconnect), null);
  const returnHome = input.returnHome ?? DEFAULTS.returnHome;
  take(() => parseReturnHome('--return-home', returnHome), null);
  const connectRatePerSec = take(() => parseRatePerSec('--connect-rate', input.connectRate ?? DEFAULTS.connectRate), 4000);
  if (closedLoop && mode === 'ws') problems.push('--rate: max (a closed loop) applies to --mode http only, got --mode ws');
  const shard = take(() => (input.shard === undefined ? NO_SHARD : parseShard('--shard', input.shard)), NO_SHARD);
  const startAtEpochMs = take(() => (input.startAt === undefined ? null : parseStartAt('--start-at', input.startAt)), null);
  if (shard.count > 1 && closedLoop) problems.push('--shard: a closed loop (--rate max) has no schedule to split; shard an open workload');
  if (shard.count > 1 && input.identities !== undefined) problems.push('--shard: not with --identities (each shard derives its agents from the seed)');
  if (mode === 'ws' && input.connection !== undefined) problems.push(`--connection: applies to --mode http only, got "${input.connection}" with --mode ws`);
  const varArgs = input.var ?? [];
  if (input.protocol === undefined && varArgs.length > 0) problems.push(`--var: applies with --protocol only, got ${JSON.stringify(varArgs[0])} without one`);
  const protocol = input.protocol === undefined ? null : take(() => loadProtocolFile(input.protocol!, varArgs), null);
  if (protocol && mode === 'ws' && !protocol.doc.tunnel) problems.push(`--protocol: expected a protocol with tunnel: for --mode ws, got ${protocol.file ?? protocol.name}, which has flows (HTTP agents)`);
  if (protocol && mode === 'http' && protocol.doc.tunnel) problems.push(`--protocol: expected a protocol with flows: for --mode http, got ${protocol.file ?? protocol.name}, which has a tunnel (use --mode ws)`);

  if (problems.length > 0) throw new ValidationError(problems);

  return buildSwarmConfig({
    targets,
    agents,
    checkin,
    arrival,
    jitterMs,
    warmupMs,
    durationMs,
    stages,
    rampFrom: stages.length === 0 ? 0 : Math.max(0, Math.floor(input.rampFrom ?? 0)),
    mode,
    connection,
    poolConnections,
    workers,
    seed: input.seed ?? DEFAULT_SEED,
    // No well-known default: without a secret (the CLI looks it up first) the agents' tokens are
    // under a random one, which no stack accepts.
    secret: input.secret ?? generateSecret(),
    mix,
    commandDelayMs,
    timeoutMs,
    lateThresholdMs,
    maxErrorRate,
    sourceAddresses,
    reconnect,
    returnHome,
    connectRatePerSec,
    caFile: input.ca ?? null,
    insecure: input.insecure === true,
    identitiesFile: input.identities ?? null,
    jsonFile: input.json ?? null,
    hlogFile: input.hlog ?? null,
    allowRemote,
    protocol,
    shard,
    enrolledStateDir: null,
    startAtEpochMs,
  });
}

/**
 * A swarm's settings as values: what resolveSwarmConfig parses out of the CLI's strings, and what
 * `rmmscale run` builds straight from its resolved scenario (src/run/plan-window.ts), so that no
 * value goes back through a string to be parsed again. `checkin` null is a closed loop.
 */
export type SwarmSettings = Omit<SwarmConfig, 'workload' | 'profile' | 'agents' | 'durationMs'> & {
  /** Without stages, the fleet; with stages, the configuration's `agents` is the largest count. */
  agents: number;
  /** The open workload's model; null is a closed loop. */
  checkin: CheckinModel | null;
  /** Without stages: the measured window's length (with stages, their durations are). */
  durationMs: number;
  /** With stages: the count the first stage ramps from. */
  rampFrom: number;
};

/** The configuration from settings: the workload, chosen once, and the load profile. Pure. */
export function buildSwarmConfig(st: SwarmSettings): SwarmConfig {
  const { checkin, agents, stages, warmupMs } = st;
  // The profile: a single steady stage unless stages were given. A closed loop has no schedule: its
  // profile only says for how long, and how many agents take turns.
  const workload: Workload = checkin === null ? { kind: 'closed', connections: st.poolConnections } : { kind: 'open', checkin };
  const freq = checkin === null ? 0 : perAgentFreqPerMs(checkin, agents);
  const stageTargets =
    stages.length === 0
      ? [{ durationMs: st.durationMs, agents, freqPerMs: freq }]
      : stages.map((s) => ({
          durationMs: s.durationMs,
          agents: s.agents,
          freqPerMs: s.checkin ? perAgentFreqPerMs(s.checkin, Math.max(1, s.agents)) : freq,
        }));
  const rampFrom = stages.length === 0 ? 0 : st.rampFrom;
  const first = stages.length === 0 ? stageTargets[0] : { agents: rampFrom, freqPerMs: stageTargets[0].freqPerMs };
  const warm = warmupMs > 0 ? [{ durationMs: warmupMs, agents: first.agents, freqPerMs: first.freqPerMs }] : [];
  const profile = buildProfile(first, [...warm, ...stageTargets]);
  const maxAgents = Math.max(agents, rampFrom, ...stages.map((s) => s.agents));
  return {
    targets: st.targets,
    agents: maxAgents,
    workload,
    arrival: st.arrival,
    jitterMs: st.jitterMs,
    durationMs: profile.durationMs - warmupMs,
    warmupMs,
    stages,
    profile,
    mode: st.mode,
    connection: st.connection,
    poolConnections: st.poolConnections,
    workers: st.workers,
    seed: st.seed,
    secret: st.secret,
    mix: st.mix,
    commandDelayMs: st.commandDelayMs,
    timeoutMs: st.timeoutMs,
    lateThresholdMs: st.lateThresholdMs,
    maxErrorRate: st.maxErrorRate,
    sourceAddresses: st.sourceAddresses,
    reconnect: st.reconnect,
    returnHome: st.returnHome,
    connectRatePerSec: st.connectRatePerSec,
    caFile: st.caFile,
    insecure: st.insecure,
    identitiesFile: st.identitiesFile,
    jsonFile: st.jsonFile,
    hlogFile: st.hlogFile,
    allowRemote: st.allowRemote,
    protocol: st.protocol,
    shard: st.shard,
    enrolledStateDir: st.enrolledStateDir,
    startAtEpochMs: st.startAtEpochMs,
  };
}
