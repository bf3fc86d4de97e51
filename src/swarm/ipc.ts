import type { SwarmConfig } from './config.js';
import type { AckLedgerWire } from './ack-ledger.js';
import type { RecorderInterval } from './recorder.js';
import type { TunnelEvent } from './tunnel-log.js';
import type { FleetShare } from './schedule.js';

/**
 * Both halves of the IPC between the coordinator and its worker processes, in one place so neither
 * side can drift: the coordinator sends `prepare` (the worker's plan), `go` (the shared t = 0) and
 * `stop` (Ctrl-C); a worker answers `ready`, then one `interval` a second, then `done` (or `error`).
 */

export interface WorkerPlan {
  workerIndex: number;
  workerCount: number;
  /** The fleet agents this worker holds: its stripe of the shard's stripe (shard.ts workerShare). */
  share: FleetShare;
  config: SwarmConfig;
  localAddresses: string[];
  maxInflight: number;
  intervalMs: number;
  caPem: string | null;
}

export interface WorkerHealth {
  pid: number;
  /** Share of one core this worker used in the interval (0..1+). */
  cpu: number;
  /** CPU time this worker used in the interval, µs. */
  cpuUs: number;
  /** Event-loop delay, ms: beyond the 10 ms monitor's resolution (HTTP), or the lateness of the worker's own timers (tunnels). */
  eldP99Ms: number;
  eldMaxMs: number;
  rssBytes: number;
  inflight: number;
  connected: number;
}

export type WorkerMessage =
  | { type: 'ready'; worker: number; agents: number; pid: number }
  /** `tunnelEvents`: the drops, reconnects and returns home since the last interval (tunnels only; absent when none). */
  | { type: 'interval'; worker: number; index: number; interval: RecorderInterval; health: WorkerHealth; tunnelEvents?: TunnelEvent[] }
  /** HTTP workers, once, just before `done`: every write acknowledged (ack-ledger.ts). */
  | { type: 'ledger'; worker: number; ledger: AckLedgerWire }
  | { type: 'done'; worker: number }
  | { type: 'error'; worker: number; message: string; code: string }
  /** The answer to `disconnect`: how many of this worker's tunnels it dropped. */
  | { type: 'disconnected'; worker: number; id: number; dropped: number };

export type CoordinatorMessage =
  | { type: 'prepare'; plan: WorkerPlan }
  | { type: 'go'; startAtEpochMs: number }
  | { type: 'stop' }
  /** A `disconnect` fault: drop that share of this worker's open tunnels now. */
  | { type: 'disconnect'; id: number; fraction: number };

/** One worker's report of one interval, as the coordinator merges it. */
export interface IntervalPart {
  interval: RecorderInterval;
  health: WorkerHealth;
}
