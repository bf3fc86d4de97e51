import { readFileSync } from 'node:fs';
import { hostFacts, openFileLimit } from '../core/host.js';
import { mergeLedgers, type SwarmLedger } from './ack-ledger.js';
import { buildSwarmResult } from './build-result.js';
import { describeWorkload, type SwarmConfig } from './config.js';
import { IntervalMerger, type ProgressSnapshot } from './interval-merge.js';
import type { LiveMetrics } from './live-metrics.js';
import { probeTarget } from './probe-target.js';
import type { SwarmResult } from './result.js';
import { sizeRun } from './sizing.js';
import type { SwarmEvent } from './swarm-event.js';
import { TunnelLog } from './tunnel-log.js';
import { WorkerPool, type StartGate } from './worker-pool.js';

/**
 * Runs a swarm, in phases: probe the targets, size the workers (sizing.ts), fork them and start
 * them on one shared instant (worker-pool.ts), merge their per-second intervals exactly
 * (interval-merge.ts), and build the result (build-result.ts).
 * No printing here: progress goes to `onProgress`, worker errors to `onEvent`; the CLI decides how
 * to show them.
 */

/**
 * A handle on a running swarm for whoever started it: a scenario's `disconnect` fault, and the
 * tunnels' log (each drop, reconnect and return home, agent by agent), which a run reads to measure
 * each tunnel fault. Before the workers start and after they finish, a disconnect drops nothing.
 */
export class SwarmControl {
  private pool: WorkerPool | null = null;
  /** Every worker's tunnel events, on the epoch clock; pass a shared log to keep one across swarms. */
  constructor(readonly tunnelLog: TunnelLog = new TunnelLog()) {}

  attach(pool: WorkerPool | null): void {
    this.pool = pool;
  }

  /** Drop that share (0..1) of the open tunnels at once; resolves with how many were dropped. */
  disconnect(fraction: number): Promise<number> {
    return this.pool ? this.pool.disconnect(fraction) : Promise.resolve(0);
  }
}

export interface SwarmRunOptions {
  config: SwarmConfig;
  onProgress?: (p: ProgressSnapshot) => void;
  /** Worker errors (also counted in the result's `errors` as `worker:CODE`). */
  onEvent?: (e: SwarmEvent) => void;
  /** Called once with the shared t = 0 (epoch ms) the workers were told to start at. */
  onStart?: (startAtEpochMs: number) => void;
  /** Abort = Ctrl-C: workers stop, the partial result is returned with `interrupted: true`. */
  signal?: AbortSignal;
  intervalMs?: number;
  control?: SwarmControl;
  /** The live view (--metrics-port): every merged second goes to it, and the swarm's own verdict at the end. */
  live?: LiveMetrics;
  /** t = 0 from a barrier once every worker is ready (a sharded run's coordinator); its failure is thrown. */
  startGate?: StartGate;
}

export interface SwarmRunOutput {
  result: SwarmResult;
  hlog: string;
  /**
   * Every acknowledged agent write by key (HTTP), null for tunnels or when no worker reported one.
   * A worker that died before its end reports none: its acknowledged writes are not claimed.
   */
  ledger: SwarmLedger | null;
}

export async function runSwarm(opts: SwarmRunOptions): Promise<SwarmRunOutput> {
  const cfg = opts.config;
  const intervalMs = opts.intervalMs ?? 1000;
  for (const t of cfg.targets) await probeTarget(t);

  const fd = openFileLimit();
  const sizing = sizeRun(cfg, fd.soft ?? 1024);
  const caPem = readCa(cfg.caFile);
  const host = hostFacts();
  const merged = new IntervalMerger(cfg, intervalMs, opts.onProgress, opts.live);
  const startedAt = new Date();
  const hlogComment = `rmmscale swarm: ${cfg.agents} agents, ${describeWorkload(cfg.workload)}, ${cfg.targets.join(',')}`;

  const pool = new WorkerPool({
    config: cfg,
    sizing,
    caPem,
    intervalMs,
    signal: opts.signal,
    startGate: opts.startGate,
    onGo: (startAtEpochMs) => {
      merged.begin(startAtEpochMs, hlogComment);
      opts.onStart?.(startAtEpochMs);
    },
    onInterval: (index, parts) => merged.merge(index, parts),
    onTunnelEvents: (events) => opts.control?.tunnelLog.addAll(events),
    onWorkerError: (m) => {
      merged.countWorkerError(m.code);
      opts.onEvent?.({ type: 'worker-error', worker: m.worker, message: m.message, code: m.code });
    },
  });
  opts.control?.attach(pool);
  opts.live?.setRunning(true);
  try {
    await pool.run();
  } finally {
    opts.control?.attach(null);
    opts.live?.setRunning(false);
  }
  if (pool.gateError) throw pool.gateError;

  const result = buildSwarmResult({ cfg, sizing, host, startedAt, intervalMs, merged, workers: pool.workers, interrupted: pool.interrupted });
  return { result, hlog: merged.hlog ? merged.hlog.toString() : '', ledger: mergeLedgers(pool.ledgers, sizing.workers) };
}

/** Read a CA file for TLS targets once, in the coordinator, and ship the PEM to workers. */
function readCa(file: string | null): string | null {
  return file ? readFileSync(file, 'utf8') : null;
}
