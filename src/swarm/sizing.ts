import { isLoopbackHost } from '../core/loopback.js';
import type { SwarmConfig } from './config.js';

/**
 * How many worker processes a swarm needs, how many requests each may hold in flight, and which
 * loopback source addresses spread its sockets: pure arithmetic over the load and the open-file
 * limit (test/swarm/sizing.test.ts).
 */

/** Sockets one worker may hold: 70% of its open-file limit, leaving room for everything else. */
export function socketBudget(fdLimit: number): number {
  return Math.max(64, Math.floor(fdLimit * 0.7));
}

/**
 * Tunnels one worker may hold: 90% of its open-file limit, less 64 for its own files (stdio, IPC,
 * epoll). A tunnel is exactly one descriptor, closed before its reconnect opens another, so little
 * more is needed. Fewer, fuller workers matter here: every worker costs ~65 MB and a few wake-ups a
 * second before it holds anything (at 20,000 files: 6 workers for 100,000 tunnels, not 9).
 */
export function tunnelBudget(fdLimit: number): number {
  return Math.max(64, Math.floor(fdLimit * 0.9) - 64);
}

/** One worker process holds its schedule to ~2 ms p99 up to about this rate (measured; docs/benchmarks.md). */
export const RATE_PER_WORKER = 8000;
/** Keep sockets per source address well below the ~15k where binding slows connects. */
export const SOCKETS_PER_ADDRESS = 4000;
/** Loopback source addresses used: 127.0.0.2 … 127.0.0.251. */
const ADDRESSES = 250;

export interface Sizing {
  workers: number;
  maxInflight: number;
  sourceAddresses: string[];
  peakRatePerSec: number;
  fdLimit: number;
}

/** Decide workers, in-flight caps and source addresses from the load and the open-file limit. */
export function sizeRun(cfg: SwarmConfig, fdLimit: number): Sizing {
  const budget = socketBudget(fdLimit);
  // A shard holds 1/n of the fleet and of its rate (shard.ts).
  const part = 1 / cfg.shard.count;
  const agents = Math.ceil(cfg.agents * part);
  let peak = 0;
  for (const p of cfg.profile.points) peak = Math.max(peak, p.agents * p.freqPerMs * 1000 * part);
  const holdsSockets = cfg.mode === 'ws' || cfg.connection === 'keepalive';
  // Keep-alive HTTP leaves a fifth of its budget for requests in flight beside the held sockets.
  const bySockets = cfg.mode === 'ws' ? Math.ceil(agents / tunnelBudget(fdLimit)) : holdsSockets ? Math.ceil(agents / (budget * 0.8)) : 1;
  const byRate = Math.ceil(peak / RATE_PER_WORKER);
  const workers = cfg.workers ?? Math.max(1, bySockets, byRate);
  const agentsPerWorker = Math.ceil(agents / workers);
  // Pool mode: the pool's connections are the cap, so undici never queues a send out of sight. A
  // closed workload shares its connections among the workers: N in all, as wrk's -c means.
  const pool = cfg.workload.kind === 'closed' ? Math.ceil(cfg.workload.connections / workers) : cfg.poolConnections;
  const maxInflight = cfg.connection === 'pool' && cfg.mode === 'http' ? pool : holdsSockets ? Math.max(16, budget - agentsPerWorker) : budget;
  const totalSockets = holdsSockets ? agents : Math.min(workers * maxInflight, Math.ceil(peak * 2) + 64);
  const loopback4 = cfg.targets.every((t) => {
    const h = new URL(t).hostname;
    return isLoopbackHost(h) && !h.includes(':') && h !== '[::1]';
  });
  const n = cfg.sourceAddresses ?? (loopback4 ? Math.min(ADDRESSES, Math.ceil(totalSockets / SOCKETS_PER_ADDRESS)) : 1);
  // Shards on one machine must not pile onto the same addresses: shard i takes the n after shard
  // i − 1's. Four shards of 100,000 tunnels all on 127.0.0.2–8 held ~14,300 sockets per address,
  // where binding a source port stalls a worker for seconds (docs/swarm.md, sharding).
  const from = (cfg.shard.index * n) % ADDRESSES;
  const sourceAddresses = loopback4 && n > 1 ? Array.from({ length: n }, (_, i) => `127.0.0.${((from + i) % ADDRESSES) + 2}`) : [];
  return { workers, maxInflight, sourceAddresses, peakRatePerSec: peak, fdLimit };
}
