import type { ProfileSet } from '../stack/profiles.js';
import { maxArrivalForSlo } from './erlang-c.js';
import type { TierCapacity } from './plan.js';

/**
 * Per-node tier capacities predicted from a profile set (for `rmmscale plan` without `--from`),
 * by the same queueing model the `automate` calibration uses (src/stack/calibration.ts):
 * - an agent web node is M/M/c with c = its workers and a hold of its service time plus one
 *   database query (the worker waits on it); it receives one request per check-in;
 * - the database is M/M/c with c = its connections; it receives one query per check-in plus
 *   `extraDbQueriesPerSec` (DBAgent loops and users), which the plan charges per agent at the
 *   fleet it was calibrated for.
 * Each capacity is the highest rate that keeps the p99 within the SLO. Tiers the profile does not
 * model (proxy, app, user web) are left out, and the plan says so.
 */
export interface ModelTiersOptions {
  checkinsPerAgentPerSec: number;
  sloP99Ms: number;
  /** Loop and user queries per second on the database (5 in the automate calibration). */
  extraDbQueriesPerSec: number;
  /** The fleet size the extra queries are spread over (they grow with it). */
  referenceAgents: number;
}

export function modelTierCapacities(set: ProfileSet, o: ModelTiersOptions): { tiers: TierCapacity[]; notes: string[] } {
  const tiers: TierCapacity[] = [];
  const notes: string[] = [];
  const web = set.tiers['web-agent'];
  const db = set.db;
  if (web) {
    const holdMs = web.service.meanMs + (db?.service.meanMs ?? 0);
    tiers.push({ tier: 'web-agent', perNodeCeilingRps: maxArrivalForSlo(web.workers, holdMs, 0.99, o.sloP99Ms), demandPerAgentRps: o.checkinsPerAgentPerSec, scalable: true });
  } else notes.push(`profile ${set.name} models no agent web tier`);
  if (db) {
    tiers.push({
      tier: 'db',
      perNodeCeilingRps: maxArrivalForSlo(db.workers, db.service.meanMs, 0.99, o.sloP99Ms),
      demandPerAgentRps: o.checkinsPerAgentPerSec + o.extraDbQueriesPerSec / o.referenceAgents,
      scalable: false,
    });
  } else notes.push(`profile ${set.name} models no database`);
  notes.push('proxy, user web and app tiers are not modelled by the profile: measure them with rmmscale run and plan --from result.json');
  return { tiers, notes };
}
