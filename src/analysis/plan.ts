/**
 * Sizing arithmetic: from per-node ceilings to nodes per tier, headroom, the first tier to
 * saturate as the fleet grows, and what one node failure does. Pure; `rmmscale plan` feeds it
 * measured ceilings (from result.json) or the `automate` profile.
 *
 * For a tier t with per-node ceiling Cₜ (requests/s at the SLO) and a demand of dₜ requests/s per
 * agent, a fleet of A agents needs Rₜ = A·dₜ, so nₜ = ⌈Rₜ / (Cₜ·uₘₐₓ)⌉ nodes (uₘₐₓ: the highest
 * utilisation we plan for), plus one with n+1 redundancy. Headroom is 1 − Rₜ/(nₜ·Cₜ). A tier
 * that cannot scale out (the DBAgent, a single database) keeps one node and shows its limit.
 */

export interface TierCapacity {
  tier: string;
  /** Requests/s one node sustains within the SLO. */
  perNodeCeilingRps: number;
  /** Requests/s this tier receives per agent (check-ins, plus its share of user and loop traffic). */
  demandPerAgentRps: number;
  /** False for single-instance tiers (app/DBAgent, a single database): always one node. */
  scalable: boolean;
}

export interface PlanOptions {
  agents: number;
  /** Plan no node above this utilisation (default 0.8). */
  maxUtilization: number;
  redundancy: 'none' | 'n+1';
}

export interface TierPlan {
  tier: string;
  nodes: number;
  demandRps: number;
  capacityRps: number;
  /** 1 − demand/capacity; negative when the tier cannot carry the fleet. */
  headroom: number;
  /** Agents this tier carries at the SLO with the planned nodes. */
  maxAgents: number;
  /** With one node of this tier down. */
  oneDown: { capacityRps: number; headroom: number; ok: boolean };
  note: string | null;
}

export interface Plan {
  agents: number;
  tiers: TierPlan[];
  /** The tier that saturates first as the fleet grows, and at how many agents. */
  firstToSaturate: { tier: string; atAgents: number };
  /** Every tier carries the fleet within maxUtilization. */
  feasible: boolean;
}

export function planCapacity(tiers: readonly TierCapacity[], o: PlanOptions): Plan {
  const out: TierPlan[] = tiers.map((t) => {
    const demandRps = o.agents * t.demandPerAgentRps;
    let nodes = 1;
    let note: string | null = null;
    if (t.scalable) {
      nodes = Math.max(1, Math.ceil(demandRps / (t.perNodeCeilingRps * o.maxUtilization)));
      if (o.redundancy === 'n+1') nodes += 1;
    } else if (demandRps > t.perNodeCeilingRps * o.maxUtilization) {
      note = `single instance at ${Math.round((demandRps / t.perNodeCeilingRps) * 100)}% of its ceiling, over the ${Math.round(o.maxUtilization * 100)}% planned: scale it up, not out`;
    }
    const capacityRps = nodes * t.perNodeCeilingRps;
    const down = t.scalable && nodes > 1 ? (nodes - 1) * t.perNodeCeilingRps : 0;
    const oneDownHeadroom = down > 0 ? 1 - demandRps / down : -1;
    return {
      tier: t.tier,
      nodes,
      demandRps,
      capacityRps,
      headroom: capacityRps > 0 ? 1 - demandRps / capacityRps : -1,
      maxAgents: t.demandPerAgentRps > 0 ? Math.floor(capacityRps / t.demandPerAgentRps) : Infinity,
      oneDown: {
        capacityRps: down,
        headroom: oneDownHeadroom,
        ok: down > 0 && demandRps <= down,
      },
      note,
    };
  });
  let first = out[0];
  for (const t of out) if (t.maxAgents < first.maxAgents) first = t;
  return {
    agents: o.agents,
    tiers: out,
    firstToSaturate: { tier: first.tier, atAgents: first.maxAgents },
    feasible: out.every((t) => t.demandRps <= t.capacityRps * o.maxUtilization + 1e-9),
  };
}
