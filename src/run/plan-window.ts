import type { Scenario } from '../scenario/types.js';
import { DEFAULT_CONNECT_RATE_PER_SEC, type SwarmInput } from '../swarm/config.js';
import type { WindowResult } from './result-types.js';

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
  /** The check-in model's text: `30%/min` or `45/s`. */
  checkin: string;
  warmupMs: number;
  measureMs: number;
  /** Ramp linearly from this count to `agents` over the window (stages); undefined or equal: hold. */
  rampFromAgents?: number;
  /** A stage's index (0-based): its faults count their time from its measured start. */
  stageIndex?: number;
}

export interface WindowTargets {
  entryUrl: string;
  wsTargets: string[];
  secret: string;
  allowRemote: boolean;
}

/** The swarm one window runs: the scenario's fleet at this window's size, check-in rate and ramp. */
export function planWindow(sc: Scenario, t: WindowTargets, w: WindowSpec): SwarmInput {
  const input: SwarmInput = {
    target: sc.fleet.transport === 'ws' ? t.wsTargets.join(',') : t.entryUrl,
    agents: w.agents,
    duration: `${w.measureMs}ms`,
    warmup: `${w.warmupMs}ms`,
    mode: sc.fleet.transport,
    // A connection policy is HTTP's; tunnels are one persistent socket per agent.
    connection: sc.fleet.transport === 'ws' ? undefined : sc.fleet.connection,
    arrival: sc.fleet.arrival,
    jitter: `${sc.fleet.jitterMs}ms`,
    seed: sc.fleet.seed,
    secret: t.secret,
    mix: mixText(sc.fleet.mix),
    timeout: `${sc.fleet.timeoutMs}ms`,
    allowRemote: t.allowRemote,
  };
  if (w.checkin.includes('%')) input.checkin = w.checkin;
  else input.rate = w.checkin;
  if (isRamp(w)) {
    input.stage = [`${w.measureMs}ms:${w.agents}`];
    input.rampFrom = w.rampFromAgents;
  }
  return input;
}

export function isRamp(w: Pick<WindowSpec, 'agents' | 'rampFromAgents'>): boolean {
  return w.rampFromAgents !== undefined && w.rampFromAgents !== w.agents;
}

function mixText(m: Scenario['fleet']['mix']): string {
  return Object.entries(m)
    .filter(([, w]) => w > 0)
    .map(([k, w]) => `${k}=${w}`)
    .join(',');
}
