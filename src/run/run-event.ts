import type { Scenario } from '../scenario/types.js';
import type { Trust } from '../swarm/generator-trust.js';
import type { SwarmEvent } from '../swarm/swarm-event.js';
import type { Ledger } from './ledger.js';
import type { WindowResult } from './result-types.js';

/**
 * What a run reports as it goes, in the order it happens. The runner never prints:
 * src/cli/run-events.ts turns each event into the line a terminal shows.
 */
export type RunEvent =
  | { type: 'stack-starting'; topology: string; nodes: number; profile: string; proxy: Scenario['stack']['proxy']; db: Scenario['stack']['db'] }
  | { type: 'stack-healthy'; nodes: Array<{ name: string; url: string; metricsUrl: string; pid: number }> }
  /** A window's plan: `rampFromAgents` (when set and not `agents`) is where a staged ramp starts. */
  | { type: 'window-start'; label: string; agents: number; rampFromAgents?: number; checkin: string; warmupMs: number; measureMs: number }
  /** A window measured and judged: its SLO verdict, and the trust GeneratorTrust gave it. */
  | { type: 'window-end'; window: WindowResult; trust: Trust }
  /** A window that could not be trusted is measured once more, at once. */
  | { type: 'remeasure'; label: string }
  /** …or after the host settles, when the host's steal was the trouble. */
  | { type: 'waiting-for-quiet-host'; label: string; stealMean: number | null | undefined; stealMax: number | null | undefined }
  | { type: 'host-quiet'; settled: boolean; waitedMs: number; lastSteal: number | null }
  /** An unexpected error (a known RmmscaleError is only the result's `error`). */
  | { type: 'run-failed'; stack: string }
  | { type: 'stack-stopping' }
  /** A sharded run's coordinator listens (`--coordinator`) for its followers. */
  | { type: 'coordinator-listening'; url: string; followers: number }
  /** A follower joined its coordinator; its clock minus the coordinator's. */
  | { type: 'coordinator-joined'; url: string; clockOffsetMs: number }
  /** The ledger, read from the database after the last window (run/ledger.ts). */
  | { type: 'ledger'; ledger: Ledger }
  | SwarmEvent;
