import type { CapacityProfile } from './types.js';

/**
 * Built-in capacity profiles, per tier. `automate` is calibrated to the article's figures (see
 * docs/stack.md for the arithmetic):
 * - 30%/min of 20,000 agents is 100 check-ins/s; a single server tops out near there, so one
 *   web-capable node saturates at ~110 requests/s. A web worker is held for its own service time
 *   (51 ms) and for the database query it waits on (94 ms): 16 workers / 0.145 s ≈ 110/s;
 * - each agent web node adds about 20,000 agents (the same ~110/s per node);
 * - the database limits the stack near 50,000 agents: 250 check-ins/s plus loop and user
 *   queries; 25 connections / 0.094 s ≈ 266 queries/s at saturation.
 * `none` applies no model: the node's real work only.
 */
export interface ProfileSet {
  name: string;
  /** Request-level profile per tier (single, web-agent, web-user, relay, proxy…). */
  tiers: Record<string, CapacityProfile | undefined>;
  /** Query-level profile of the database (applied where the store lives). */
  db?: CapacityProfile;
}

const WEB: CapacityProfile = { workers: 16, queue: 4000, service: { dist: 'exponential', meanMs: 51 } };

export const PROFILES: Record<string, ProfileSet> = {
  none: { name: 'none', tiers: {} },
  automate: {
    name: 'automate',
    tiers: { single: WEB, 'web-agent': WEB, 'web-user': WEB },
    db: { workers: 25, queue: 20_000, service: { dist: 'exponential', meanMs: 94 } },
  },
};

/** Requests/s a profile sustains at 100% utilisation: workers / mean service time. */
export function saturationRps(p: CapacityProfile): number {
  return (p.workers * 1000) / p.service.meanMs;
}
