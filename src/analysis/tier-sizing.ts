import type { TierCapacity } from './plan.js';

/**
 * From a stack's tiers and the ceilings a run measured on them to the planner's per-node
 * capacities: the one place that decides which tiers scale out, how many nodes share a tier's
 * ceiling, and how a tier's demand per agent follows the check-in model. `rmmscale run` (its
 * result's plan) and `rmmscale plan --from` both size from here. Pure.
 */

/** One tier of a stack: the nodes that serve it and whether it can scale out. */
export interface TierLayout {
  tier: string;
  /** The nodes that serve it (the single node for the embedded database). */
  nodes: string[];
  /** False for a tier that cannot scale out (see SINGLE_INSTANCE_ROLES): always one node. */
  scalable: boolean;
}

/**
 * Roles that cannot scale out: one DBAgent (app), one database (db), one analytics store in the
 * reference stack (a real one shards by tenant, seed 004; ours is one SQLite file); the single
 * server is one box.
 */
export const SINGLE_INSTANCE_ROLES: readonly string[] = ['app', 'db', 'analytics', 'single'];

/**
 * The tiers of a stack, in node order, from its nodes' roles and tiers. A tier keeps the name the
 * topology gave it; it scales out unless one of its nodes has a single-instance role. A `single`
 * node carries an embedded database, which run reports as tier `db` (diagnose.ts): listed here
 * too, unless a db node exists.
 */
export function tierLayout(nodes: ReadonlyArray<{ name: string; role: string; tier: string }>): TierLayout[] {
  const out = new Map<string, TierLayout>();
  for (const n of nodes) {
    const t = out.get(n.tier) ?? { tier: n.tier, nodes: [], scalable: true };
    t.nodes.push(n.name);
    if (SINGLE_INSTANCE_ROLES.includes(n.role)) t.scalable = false;
    out.set(n.tier, t);
  }
  const singles = nodes.filter((n) => n.role === 'single').map((n) => n.name);
  if (singles.length > 0 && !out.has('db')) out.set('db', { tier: 'db', nodes: singles, scalable: false });
  return [...out.values()];
}

/** A check-in model: a share of the fleet per minute, or a fixed aggregate rate spread over the fleet. */
export type CheckinModelSpec = { kind: 'fraction'; fractionPerMin: number; text: string } | { kind: 'rate'; ratePerSec: number; text: string };

/**
 * Check-ins per agent per second under a model: the fraction per minute ÷ 60, or a fixed rate ÷
 * the agents sharing it (`agents`: the fleet the rate was spread over). Null when a fixed rate has
 * no fleet to spread over.
 */
export function checkinsPerAgentPerSec(model: CheckinModelSpec, agents: number | null): number | null {
  if (model.kind === 'fraction') return model.fractionPerMin / 60;
  return agents !== null && agents > 0 ? model.ratePerSec / agents : null;
}

/** A tier's measured or estimated ceiling, as result.json's summary.tiers holds it. */
export interface TierCeiling {
  tier: string;
  ceilingRps: number | null;
  ceilingAgents: number | null;
  limitedBy: string;
}

/**
 * Per-node capacities for the planner. A tier's ceiling is shared by its nodes when it scales out;
 * a single-instance tier's is one node's, whatever stands by beside it (a tier the layout does not
 * list counts as one node that scales out); its demand per agent is what it
 * carried per agent at the ceiling (ceilingRps ÷ ceilingAgents), times `demandScale` (the plan's
 * check-ins per agent ÷ the run's). Tiers without a ceiling are left out, with a note.
 */
export function tierCapacities(ceilings: readonly TierCeiling[], layout: readonly TierLayout[], demandScale = 1): { tiers: TierCapacity[]; notes: string[] } {
  const tiers: TierCapacity[] = [];
  const notes: string[] = [];
  for (const t of ceilings) {
    if (t.ceilingRps === null || t.ceilingAgents === null || t.ceilingAgents <= 0) {
      notes.push(`${t.tier}: no ceiling (${t.limitedBy}), left out`);
      continue;
    }
    const l = layout.find((x) => x.tier === t.tier);
    // A tier that cannot scale out works on one node: the others of it (a standby DBAgent) wait.
    const nodes = l && l.scalable ? Math.max(1, l.nodes.length) : 1;
    tiers.push({ tier: t.tier, perNodeCeilingRps: t.ceilingRps / nodes, demandPerAgentRps: (t.ceilingRps / t.ceilingAgents) * demandScale, scalable: l?.scalable ?? true });
    if (t.limitedBy.startsWith('estimated')) notes.push(`${t.tier}: ceiling ${t.limitedBy}`);
  }
  return { tiers, notes };
}
