import { round } from '../core/units.js';
import type { Diagnosis, NodeWindow, TierName, TierSummary } from './result-types.js';

/**
 * Which tier limits, and why: pure functions over the per-node window statistics.
 *
 * A tier is saturated when its busiest node's utilisation is near 1 (≥ 0.9, over the window's
 * seconds) or its queue keeps growing (a positive slope of more than half a request per second
 * with a mean depth of at least one). When several tiers are saturated, the DEEPEST one is the
 * cause: a web worker is held while it waits on the database, so a saturated database drives the
 * web tier's utilisation up too, never the other way round. Order, deepest first:
 *   db → app → relay → web-agent → web-user → single → proxy.
 * With no saturated tier, server errors (5xx share ≥ 0.5%) name the deepest tier that has them,
 * and then a node-side p99 that rose at least 2× over the previous good window. Nothing of that:
 * no tier is named, and the evidence says so. No node measured at all (an external target without
 * `stack.nodes`): no tier can be named, and the evidence says that instead.
 *
 * The database's model lives in the db node; in the `single` topology it lives in the single
 * node, and its gauges name the `db` tier all the same. A tier a topology file named itself keeps
 * its name; its depth is that of its nodes' role (a web node's is web-agent's).
 */

export const UTILIZATION_SATURATED = 0.9;
export const QUEUE_GROWTH_PER_SEC = 0.5;
export const ERROR_SHARE = 0.005;
export const P99_RISE = 2;
const DEPTH: readonly TierName[] = ['db', 'analytics', 'app', 'relay', 'web-agent', 'web-user', 'single', 'proxy'];
/** Where a tier of each role sits in DEPTH when its name is not one of the reference tiers. */
const ROLE_DEPTH_TIER: Readonly<Record<string, TierName>> = { db: 'db', analytics: 'analytics', app: 'app', relay: 'relay', web: 'web-agent', single: 'single', proxy: 'proxy' };

export interface TierSignals {
  tier: TierName;
  /** The role of its nodes (`db` for the single node's embedded database). */
  role: string;
  nodes: string[];
  /** Busiest node's mean utilisation (db: the database model's), null without a model. */
  utilization: number | null;
  perNode: Array<{ node: string; utilization: number | null }>;
  queueGrowthPerSec: number;
  queueMean: number;
  requests: number;
  errors: number;
  ratePerSec: number;
  p99Us: number;
  cpuCoresMax: number;
}

const f2 = (x: number): string => x.toFixed(2);

/** The evidence, and the run's `noTierNamed`, when no node was measured at all. */
export const NO_NODES = 'no node of the stack was measured (an external target without stack.nodes): no tier can be named';

/** Per-tier signals of one window, the embedded database (single) split out as `db`. */
export function tierSignals(nodes: readonly NodeWindow[]): TierSignals[] {
  const byTier = new Map<TierName, TierSignals>();
  const get = (tier: TierName, role: string): TierSignals => {
    let t = byTier.get(tier);
    if (!t) byTier.set(tier, (t = { tier, role, nodes: [], utilization: null, perNode: [], queueGrowthPerSec: 0, queueMean: 0, requests: 0, errors: 0, ratePerSec: 0, p99Us: 0, cpuCoresMax: 0 }));
    return t;
  };
  for (const n of nodes) {
    const t = get(n.tier, n.role);
    t.nodes.push(n.node);
    const routes = Object.values(n.routes);
    t.requests += routes.reduce((a, r) => a + r.count, 0) + (n.scraped?.requests ?? 0);
    t.errors += routes.reduce((a, r) => a + r.errors, 0) + (n.scraped?.errors ?? 0);
    t.ratePerSec += n.ratePerSec;
    t.p99Us = Math.max(t.p99Us, ...routes.map((r) => r.latency.p99Us), n.scraped?.latency?.p99Us ?? 0, 0);
    t.cpuCoresMax = Math.max(t.cpuCoresMax, n.cpuCoresMean);
    // A db node of ours has no request gate: its model is the database's. An external node's
    // utilisation and queue are whatever its mapping says, whatever its role.
    const ownDb = n.role === 'db' && !n.scraped;
    const own = ownDb ? (n.dbUtilization?.mean ?? null) : (n.utilization?.mean ?? null);
    const ownQ = ownDb ? n.dbQueueDepth : n.queueDepth;
    t.perNode.push({ node: n.node, utilization: own });
    if (own !== null) t.utilization = Math.max(t.utilization ?? 0, own);
    if (ownQ) {
      t.queueGrowthPerSec = Math.max(t.queueGrowthPerSec, ownQ.growthPerSec);
      t.queueMean = Math.max(t.queueMean, ownQ.mean);
    }
    if (n.role !== 'db' && n.dbUtilization) {
      // The embedded database of a single node.
      const db = get('db', 'db');
      db.nodes.push(n.node);
      db.perNode.push({ node: n.node, utilization: n.dbUtilization.mean });
      db.utilization = Math.max(db.utilization ?? 0, n.dbUtilization.mean);
      db.ratePerSec += n.ratePerSec;
      if (n.dbQueueDepth) {
        db.queueGrowthPerSec = Math.max(db.queueGrowthPerSec, n.dbQueueDepth.growthPerSec);
        db.queueMean = Math.max(db.queueMean, n.dbQueueDepth.mean);
      }
    }
  }
  return [...byTier.values()];
}

function saturation(t: TierSignals): string[] {
  const why: string[] = [];
  if (t.utilization !== null && t.utilization >= UTILIZATION_SATURATED) {
    const each = t.perNode.length > 1 ? ` (${t.perNode.map((p) => `${p.node} ${p.utilization === null ? 'n/a' : f2(p.utilization)}`).join(', ')})` : '';
    why.push(`utilization ${f2(t.utilization)}${each}`);
  }
  if (t.queueGrowthPerSec > QUEUE_GROWTH_PER_SEC && t.queueMean >= 1) why.push(`queue growing ${t.queueGrowthPerSec.toFixed(1)}/s (mean depth ${t.queueMean.toFixed(0)})`);
  return why;
}

/** A tier's place in DEPTH (0: deepest); a tier named by a topology file takes its role's place. */
export function tierDepth(t: { tier: TierName; role: string }): number {
  const own = DEPTH.indexOf(t.tier);
  if (own >= 0) return own;
  const byRole = DEPTH.indexOf(ROLE_DEPTH_TIER[t.role] ?? '');
  return byRole >= 0 ? byRole : DEPTH.length;
}

/** Name the limiting tier of a window (usually the first that broke the SLO). */
export function diagnose(nodes: readonly NodeWindow[], previousGood: readonly NodeWindow[] | null): Diagnosis {
  if (nodes.length === 0) return { limitingTier: null, evidence: [NO_NODES] };
  const tiers = tierSignals(nodes).sort((a, b) => tierDepth(a) - tierDepth(b));
  const evidence: string[] = [];
  const saturated = tiers.map((t) => ({ t, why: saturation(t) })).filter((x) => x.why.length > 0);
  for (const s of saturated) evidence.push(`${s.t.tier}: ${s.why.join(', ')}`);
  if (saturated.length > 0) {
    const root = saturated[0].t.tier;
    if (saturated.length > 1) evidence.push(`${root} is the deepest saturated tier: ${saturated.slice(1).map((s) => s.t.tier).join(', ')} wait on it`);
    return { limitingTier: root, evidence };
  }
  const erring = tiers.filter((t) => t.requests > 0 && t.errors / t.requests >= ERROR_SHARE);
  if (erring.length > 0) {
    for (const t of erring) evidence.push(`${t.tier}: ${((t.errors / t.requests) * 100).toFixed(1)}% server errors (${t.errors} of ${t.requests})`);
    return { limitingTier: erring[0].tier, evidence };
  }
  if (previousGood) {
    const before = new Map(tierSignals(previousGood).map((t) => [t.tier, t.p99Us]));
    const rising = tiers
      .map((t) => ({ t, rise: (before.get(t.tier) ?? 0) > 0 ? t.p99Us / before.get(t.tier)! : 0 }))
      .filter((x) => x.rise >= P99_RISE)
      .sort((a, b) => b.rise - a.rise);
    if (rising.length > 0) {
      for (const r of rising) evidence.push(`${r.t.tier}: node-side p99 rose ${r.rise.toFixed(1)}× (${(r.t.p99Us / 1000).toFixed(0)} ms)`);
      return { limitingTier: rising[0].t.tier, evidence };
    }
  }
  evidence.push('no tier shows saturation, server errors or rising node-side latency: the limit is outside the measured tiers');
  return { limitingTier: null, evidence };
}

/** A Node process saturates near one core: the capacity reference for tiers without a model. */
export const CPU_SATURATED_CORES = 0.9;

/**
 * Per-tier ceilings at the ceiling window. The limiting tier's ceiling is what was measured. For
 * the others, the utilisation law: a tier serving R requests/s at utilisation u would reach the
 * limiting tier's utilisation at the ceiling (u*) near R × u* ÷ u; a tier without a model uses its
 * CPU against one core. Agents follow from each tier's requests per agent.
 */
/** A lower load at which the limiting tier was still calm: see tierCeilings. */
export interface CalmerWindow {
  nodes: readonly NodeWindow[];
  agents: number;
}

/** The limiting tier's utilisation below which a shallower tier's own utilisation is its own work. */
export const CALM_UTILIZATION = 0.7;

/**
 * Pick, among windows that met the SLO below the ceiling, the highest load at which the limiting
 * tier's utilisation stayed at or under CALM_UTILIZATION. Null when there is none.
 */
export function calmerWindow(windows: ReadonlyArray<{ nodes: readonly NodeWindow[]; agents: number; ok: boolean }>, limiting: TierName | null, belowAgents: number): CalmerWindow | null {
  if (!limiting) return null;
  let best: CalmerWindow | null = null;
  for (const w of windows) {
    if (!w.ok || w.agents >= belowAgents) continue;
    const u = tierSignals(w.nodes).find((t) => t.tier === limiting)?.utilization;
    if (u === undefined || u === null || u > CALM_UTILIZATION) continue;
    if (!best || w.agents > best.agents) best = { nodes: w.nodes, agents: w.agents };
  }
  return best;
}

/**
 * Per tier: the limiting tier's measured ceiling, and for the others the utilisation law. A tier
 * in front of the limiting one (a web node in front of a saturated database) is busy at the
 * ceiling partly because its workers are held waiting on the deeper tier, so its utilisation
 * there understates what it could carry. With `calmer`, such tiers are estimated from that lower
 * load instead, where the deeper tier was not yet queueing.
 */
export function tierCeilings(atCeiling: readonly NodeWindow[], agents: number, limiting: TierName | null, limitEvidence: string[], calmer: CalmerWindow | null = null): TierSummary[] {
  const tiers = tierSignals(atCeiling);
  const lim = limiting ? tiers.find((t) => t.tier === limiting) : undefined;
  const uRef = lim?.utilization ?? UTILIZATION_SATURATED;
  const calmTiers = calmer ? tierSignals(calmer.nodes) : [];
  const calmLimU = calmTiers.find((t) => t.tier === limiting)?.utilization ?? null;
  const out: TierSummary[] = [];
  const limDepth = lim ? tierDepth(lim) : limiting ? tierDepth({ tier: limiting, role: '' }) : -1;
  for (const t of tiers.sort((a, b) => tierDepth(a) - tierDepth(b))) {
    const perAgent = agents > 0 ? t.ratePerSec / agents : 0;
    const agentsFor = (rps: number | null): number | null => (rps === null || perAgent <= 0 ? null : Math.round(rps / perAgent));
    const calm = calmer && limiting && tierDepth(t) > limDepth ? calmTiers.find((c) => c.tier === t.tier) : undefined;
    if (calm && calmer && calm.utilization !== null && calm.utilization >= 0.02 && calm.ratePerSec > 0) {
      const rps = round((calm.ratePerSec * uRef) / calm.utilization, 1);
      const calmPerAgent = calm.ratePerSec / calmer.agents;
      out.push({
        tier: t.tier,
        ceilingRps: rps,
        ceilingAgents: Math.round(rps / calmPerAgent),
        limitedBy: `estimated at ${calmer.agents} agents, where ${limiting} was at utilization ${f2(calmLimU ?? 0)}: utilization ${f2(calm.utilization)}; capacity ≈ rate × ${f2(uRef)}/${f2(calm.utilization)} (at the ceiling its workers also waited on ${limiting})`,
      });
      continue;
    }
    if (t.tier === limiting) {
      const rps = round(t.ratePerSec, 1);
      out.push({ tier: t.tier, ceilingRps: rps, ceilingAgents: agentsFor(rps), limitedBy: `limiting: ${limitEvidence.filter((e) => e.startsWith(`${t.tier}:`)).map((e) => e.slice(t.tier.length + 2)).join('; ') || limitEvidence.join('; ')}` });
      continue;
    }
    if (t.utilization !== null && t.utilization >= 0.02) {
      const rps = round((t.ratePerSec * uRef) / t.utilization, 1);
      out.push({ tier: t.tier, ceilingRps: rps, ceilingAgents: agentsFor(rps), limitedBy: `estimated: utilization ${f2(t.utilization)} at the ceiling; capacity ≈ rate × ${f2(uRef)}/${f2(t.utilization)}` });
    } else if (t.utilization === null && t.cpuCoresMax >= 0.02) {
      const rps = round((t.ratePerSec * CPU_SATURATED_CORES) / t.cpuCoresMax, 1);
      out.push({ tier: t.tier, ceilingRps: rps, ceilingAgents: agentsFor(rps), limitedBy: `estimated from CPU: ${f2(t.cpuCoresMax)} cores at the ceiling, one process saturates near ${CPU_SATURATED_CORES} of a core` });
    } else {
      out.push({ tier: t.tier, ceilingRps: null, ceilingAgents: null, limitedBy: 'unknown: too little load on this tier to extrapolate' });
    }
  }
  return out;
}

/** Least-squares slope of y over its index (per second). */
export function slopePerSec(ys: readonly number[]): number {
  const n = ys.length;
  if (n < 2) return 0;
  const mx = (n - 1) / 2;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (i - mx) * (ys[i] - my);
    den += (i - mx) ** 2;
  }
  return num / den;
}
