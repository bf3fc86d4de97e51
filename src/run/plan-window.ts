import { checkTarget } from '../core/loopback.js';
import type { CheckinSpec, Scenario } from '../scenario/types.js';
import { buildSwarmConfig, DEFAULT_CONNECT_RATE_PER_SEC, DEFAULT_SETTINGS, type SwarmConfig } from '../swarm/config.js';
import type { WindowResult } from './result-types.js';
import { NO_SHARD, type Shard } from '../swarm/shard.js';

/** The plan of one window, and the swarm that measures it. Pure: no clock, no I/O. */

/** Unmeasured load a stage sends at its starting count before its measured window (see drive.ts). */
export const STAGE_WARMUP_MS = 3000;

/**
 * The warm-up a window needs before anything in it is measured. A tunnel window is a new swarm that
 * opens its starting fleet first: at the default connect rate that storm keeps a 2-core host busy
 * (a worker's event loop stalled 0.6–1.2 s opening 10,000 tunnels), and the heap compaction after
 * it stalls it again. Both must be over before the window starts, so a tunnel window waits
 * for its connects (half again for handshakes under load) on top of its own warm-up.
 */
export function windowWarmupMs(transport: Scenario['fleet']['transport'], startAgents: number, baseMs: number): number {
  if (transport !== 'ws' || startAgents <= 0) return baseMs;
  // Whole seconds: the swarm's warm-up is counted in its one-second intervals.
  return baseMs + Math.ceil((startAgents / DEFAULT_CONNECT_RATE_PER_SEC) * 1.5) * 1000;
}

export interface WindowSpec {
  kind: WindowResult['kind'];
  label: string;
  agents: number;
  /** The check-in model: a share of the fleet per minute, or a fixed rate (its text goes into result.json). */
  checkin: CheckinSpec;
  warmupMs: number;
  measureMs: number;
  /** Ramp linearly from this count to `agents` over the window (stages); undefined or equal: hold. */
  rampFromAgents?: number;
  /** A stage's index (0-based): its faults count their time from its measured start. */
  stageIndex?: number;
  /** This window measures again the window of that index (not trustworthy): a coordinator tells its followers so. */
  supersedes?: number;
}

export interface WindowTargets {
  entryUrl: string;
  wsTargets: string[];
  secret: string;
  allowRemote: boolean;
  /** The slice of the fleet this run drives (`--shard` / the scenario's `shard:`); absent: all of it. */
  shard?: Shard;
  /** This window's t = 0 on the wall clock (shards start together); absent: when ready. */
  startAtEpochMs?: number | null;
  /** Where the agents' enrolment is kept from one window to the next (a protocol with `enroll`); absent: none. */
  enrolledStateDir?: string | null;
}

/**
 * The swarm one window runs: the scenario's fleet at this window's size, check-in model and ramp,
 * built as values from the resolved scenario (no flag strings to parse again).
 */
export function planWindow(sc: Scenario, t: WindowTargets, w: WindowSpec): SwarmConfig {
  const f = sc.fleet;
  const schemes = f.transport === 'ws' ? ['ws:', 'wss:'] : ['http:', 'https:'];
  const urls = f.transport === 'ws' ? t.wsTargets : [t.entryUrl];
  const ramp = isRamp(w);
  return buildSwarmConfig({
    targets: urls.map((u) => checkTarget('stack.target', u.trim(), schemes, t.allowRemote).toString().replace(/\/$/, '')),
    agents: w.agents,
    // The swarm's model, without the scenario's text.
    checkin: w.checkin.kind === 'fraction' ? { kind: 'fraction', fractionPerMin: w.checkin.fractionPerMin } : { kind: 'rate', ratePerSec: w.checkin.ratePerSec },
    arrival: f.arrival,
    jitterMs: f.jitterMs,
    warmupMs: w.warmupMs,
    durationMs: w.measureMs,
    stages: ramp ? [{ durationMs: w.measureMs, agents: w.agents, checkin: null }] : [],
    rampFrom: ramp ? (w.rampFromAgents ?? 0) : 0,
    mode: f.transport,
    // A connection policy is HTTP's; tunnels are one persistent socket per agent.
    connection: f.transport === 'ws' ? 'per-checkin' : f.connection,
    poolConnections: DEFAULT_SETTINGS.poolConnections,
    workers: null,
    seed: f.seed,
    secret: t.secret,
    mix: { ...f.mix },
    commandDelayMs: DEFAULT_SETTINGS.commandDelayMs,
    timeoutMs: f.timeoutMs,
    lateThresholdMs: DEFAULT_SETTINGS.lateThresholdMs,
    maxErrorRate: DEFAULT_SETTINGS.maxErrorRate,
    sourceAddresses: null,
    reconnect: DEFAULT_SETTINGS.reconnect,
    returnHome: DEFAULT_SETTINGS.returnHome,
    connectRatePerSec: DEFAULT_SETTINGS.connectRatePerSec,
    caFile: null,
    insecure: false,
    identitiesFile: null,
    jsonFile: null,
    hlogFile: null,
    allowRemote: t.allowRemote,
    protocol: sc.agent ?? null,
    shard: t.shard ?? NO_SHARD,
    enrolledStateDir: t.enrolledStateDir ?? null,
    startAtEpochMs: t.startAtEpochMs ?? null,
  });
}

export function isRamp(w: Pick<WindowSpec, 'agents' | 'rampFromAgents'>): boolean {
  return w.rampFromAgents !== undefined && w.rampFromAgents !== w.agents;
}
