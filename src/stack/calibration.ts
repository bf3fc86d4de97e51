import { erlangC, maxArrivalForSlo } from '../analysis/erlang-c.js';
import type { ProfileSet } from './profiles.js';

/**
 * What a profile set predicts for a stack, by queueing theory: the highest check-in rate (and so
 * agent count) at which the check-in p99 stays under an SLO. It is how `automate` was calibrated
 * (docs/stack.md) and the test that keeps it calibrated.
 *
 * The model, per check-in: one request to an agent web node (or the single server), whose worker
 * is held for the web service time PLUS the database's response time (a web thread waits on its
 * query), and one query on the database, which also serves `extraDbQueriesPerSec` (DBAgent loops,
 * users). Each tier is M/M/c (Erlang C); the web service time is treated as exponential with mean
 * S_web + R_db(λ), an approximation the measured runs check.
 */
export interface CeilingOptions {
  /** Agent web nodes sharing the check-ins (1 for the single server). */
  webNodes: number;
  /** Tier of those nodes in the set (single or web-agent). */
  webTier: string;
  /** Check-ins per agent per second: 30%/min is 0.005. */
  checkinsPerAgentPerSec: number;
  extraDbQueriesPerSec: number;
  sloP99Ms: number;
}

export interface Ceiling {
  checkinsPerSec: number;
  agents: number;
  /**
   * The tier that sets the ceiling: `db` when the database alone (its own p99 under the SLO)
   * allows fewer check-ins than the web tier would with a database that never queues.
   */
  limitedBy: 'web' | 'db';
}

function p99Ms(set: ProfileSet, o: CeilingOptions, checkinsPerSec: number, dbQueues = true): { web: number; db: number } {
  const web = set.tiers[o.webTier];
  const db = set.db;
  const dbQ = db ? erlangC(checkinsPerSec + o.extraDbQueriesPerSec, db.workers, db.service.meanMs) : null;
  const dbMeanMs = dbQ ? (dbQueues ? dbQ.meanResponseMs : db!.service.meanMs) : 0;
  const webP99 = web ? erlangC(checkinsPerSec / o.webNodes, web.workers, web.service.meanMs + dbMeanMs).responsePercentileMs(0.99) : 0;
  return { web: webP99, db: dbQ ? dbQ.responsePercentileMs(0.99) : 0 };
}

function highest(ok: (rate: number) => boolean): number {
  let lo = 0;
  let hi = 1;
  while (ok(hi) && hi < 1e7) hi *= 2;
  for (let i = 0; i < 80; i++) {
    const mid = (lo + hi) / 2;
    if (ok(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

export function modelCeiling(set: ProfileSet, o: CeilingOptions): Ceiling {
  const checkinsPerSec = highest((rate) => {
    const p = p99Ms(set, o, rate);
    return p.web <= o.sloP99Ms && p.db <= o.sloP99Ms;
  });
  const webAlone = highest((rate) => p99Ms(set, o, rate, false).web <= o.sloP99Ms);
  const dbAlone = set.db ? maxArrivalForSlo(set.db.workers, set.db.service.meanMs, 0.99, o.sloP99Ms) - o.extraDbQueriesPerSec : Infinity;
  return { checkinsPerSec, agents: checkinsPerSec / o.checkinsPerAgentPerSec, limitedBy: dbAlone < webAlone ? 'db' : 'web' };
}
