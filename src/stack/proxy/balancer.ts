import { AGENT_PREFIX, USER_PREFIX } from '../../core/protocol.js';

/** What the balancer needs to know about a backend. */
export interface Balanceable {
  healthy: boolean;
  outstanding: number;
}

/** Which pool a path belongs to; null: the proxy does not forward it. */
export function poolOf(path: string): 'agent' | 'user' | null {
  if (path.startsWith(AGENT_PREFIX)) return 'agent';
  if (path.startsWith(USER_PREFIX)) return 'user';
  return null;
}

/**
 * Least outstanding requests among the healthy backends of `pool` not yet `tried` for this
 * request. Ties go to the first one at or after `start` (mod pool size), so callers that bump
 * `start` per request spread light traffic — where every backend has 0 outstanding — round-robin.
 *
 *   pool:        [A:2, B:0, C:0]   start = 2 → C   (B and C tie at 0; C comes first from index 2)
 *   tried={C}:   [A:2, B:0, C:0]   start = 2 → B
 */
export function leastOutstanding<B extends Balanceable>(pool: readonly B[], tried: ReadonlySet<B>, start: number): B | null {
  const n = pool.length;
  let best: B | null = null;
  for (let i = 0; i < n; i++) {
    const b = pool[(start + i) % n];
    if (!b.healthy || tried.has(b)) continue;
    if (best === null || b.outstanding < best.outstanding) best = b;
  }
  return best;
}

/**
 * The backend for a request: agent paths from the agent pool; user paths from the user pool, or
 * from the agent pool when no user backend is healthy (the article's fallback).
 */
export function pickBackend<B extends Balanceable>(pools: { agent: readonly B[]; user: readonly B[] }, kind: 'agent' | 'user', tried: ReadonlySet<B>, start: number): B | null {
  if (kind === 'agent') return leastOutstanding(pools.agent, tried, start);
  return leastOutstanding(pools.user, tried, start) ?? leastOutstanding(pools.agent, tried, start);
}
