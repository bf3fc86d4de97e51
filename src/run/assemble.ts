import type { SearchResult } from '../analysis/ceiling-search.js';
import { planCapacity, type Plan } from '../analysis/plan.js';
import { tierCapacities, tierLayout, type TierLayout } from '../analysis/tier-sizing.js';
import { fitUsl } from '../analysis/usl.js';
import { hostFacts } from '../core/host.js';
import { round } from '../core/units.js';
import type { Scenario } from '../scenario/types.js';
import { calmerWindow, tierCeilings } from './diagnose.js';
import { RUN_RESULT_SCHEMA, type NodeSecond, type RunMergedShard, type RunResult, type RunShard, type RunSummary, type UslResult, type WindowResult } from './result-types.js';

/** Everything after the measurements: summary, ceilings, fits, plan. Pure over the windows. */

/**
 * What of the scenario the assembly reads: a resolved Scenario, or (rmmscale merge) the same facts
 * read back from a shard's result.json.
 */
export type AssembleScenario = Pick<Scenario, 'name' | 'file' | 'description' | 'definition' | 'thresholds' | 'slo' | 'plan'> & {
  fleet: Pick<Scenario['fleet'], 'checkin' | 'seed'>;
  ceiling: Pick<NonNullable<Scenario['ceiling']>, 'unit' | 'precision'> | null;
  stack: Pick<Scenario['stack'], 'target' | 'topology' | 'profile' | 'proxy' | 'db'> & { nodes: readonly unknown[] };
};

export interface AssembleInput {
  sc: AssembleScenario;
  startedAt: string;
  complete: boolean;
  interrupted: boolean;
  error: string | null;
  windows: WindowResult[];
  search: SearchResult | null;
  timeline: Record<string, NodeSecond[]>;
  hlogFiles: string[];
  faults: RunResult['faults'];
  ledger: RunResult['ledger'];
  warnings: string[];
  nodes: RunResult['stack']['nodes'];
  versions: RunResult['versions'];
  /** A shard's own result: its slice and clock. */
  shard?: RunShard;
  /** A merged result: the shards it was made of. */
  mergedFrom?: RunMergedShard[];
}

export function assemble(a: AssembleInput): RunResult {
  const { sc, search } = a;
  const warnings = [...a.warnings];
  const why = (w: WindowResult): string => w.generator.trust?.why ?? w.generator.reasons.join('; ');
  for (const w of a.windows) {
    if (w.supersededBy !== undefined) warnings.push(`${w.label}: not trustworthy (${why(w)}); measured again as window #${w.supersededBy}`);
  }
  // Windows measured again are kept in the file for the record, and used for nothing else.
  const windows = a.windows.filter((w) => w.supersededBy === undefined);
  const untrusted = windows.filter((w) => !w.generator.trustworthy);
  for (const w of untrusted) warnings.push(`${w.label}: not trustworthy: ${why(w)}`);
  if (a.error) warnings.push(`incomplete: ${a.error}`);

  const headlineIndex = headlineIndexOf(sc, search, windows);
  const headlineWindow = headlineIndex === null ? null : a.windows[headlineIndex];
  const summary = summaryOf(sc, search, windows, headlineWindow, untrusted.length === 0 && a.complete, warnings);
  const { usl, uslError } = uslOf(sc, windows);
  const tiers = tierLayout(a.nodes);

  // A plan answers the scenario's question (plan.agents); planning for the ceiling itself would
  // only restate it with headroom taken off.
  const plan = sc.plan && summary.ceilingAgents !== null ? planFromSummary(summary, tiers, sc) : null;

  return {
    schema: RUN_RESULT_SCHEMA,
    summary,
    scenario: { name: sc.name, file: sc.file, description: sc.description, seed: sc.fleet.seed, definition: sc.definition },
    load: { unit: loadUnit(sc), checkin: sc.fleet.checkin },
    versions: a.versions,
    host: hostFacts(),
    startedAt: a.startedAt,
    endedAt: new Date().toISOString(),
    complete: a.complete,
    interrupted: a.interrupted,
    error: a.error,
    stack: { topology: sc.stack.topology ?? 'external', profile: sc.stack.target ? 'n/a' : sc.stack.profile, proxy: sc.stack.proxy, db: sc.stack.db, target: sc.stack.target, nodes: a.nodes, tiers },
    slo: { p99Ms: sc.slo.p99Ms, errorRate: sc.slo.errorRate, minAchievedRatio: sc.slo.minAchievedRatio },
    thresholds: sc.thresholds,
    windows: a.windows,
    headline: headlineWindow ? { windowIndex: headlineWindow.index, client: headlineWindow.client, nodes: headlineWindow.nodes } : null,
    search: search
      ? { outcome: search.outcome, unit: sc.ceiling?.unit ?? 'agents', lastGood: search.lastGood, firstBad: search.firstBad, precision: sc.ceiling?.precision ?? 0 }
      : null,
    fits: { usl, uslError },
    plan,
    timeline: a.timeline,
    hlogFiles: a.hlogFiles,
    faults: a.faults,
    ledger: a.ledger,
    ...(a.shard ? { shard: a.shard } : {}),
    ...(a.mergedFrom ? { mergedFrom: a.mergedFrom } : {}),
  };
}

/** An external target whose nodes were not listed: nothing server-side was measured. */
const unmeasured = (sc: AssembleScenario): boolean => sc.stack.target !== null && sc.stack.nodes.length === 0;

const NO_NODES_HINT = 'an external target without stack.nodes is measured from the client side only (list its nodes with their Prometheus /metrics URLs and a mapping file under stack.nodes to have the limiting tier named)';

/** Why a window that broke the SLO named no tier, in one line for result.json. */
function noTierReason(sc: AssembleScenario, evidence: readonly string[]): string {
  return unmeasured(sc) ? `the stack's nodes were not measured: ${NO_NODES_HINT}` : `no measured tier showed saturation, server errors or a rising node-side p99: ${evidence.join('; ')}`;
}

const loadUnit = (sc: AssembleScenario): 'agents' | 'rate' => sc.ceiling?.unit ?? 'agents';

/**
 * The load of a window in agents at the fleet's check-in model: its agents, or for a search by
 * rate its offered rate as agents at the fleet's fraction (the fleet of a search by rate is a fixed
 * size; its agents say nothing about the rate). Tier ceilings and the summary count agents alike.
 */
function agentsAtModel(sc: AssembleScenario, w: WindowResult): number {
  return loadUnit(sc) === 'rate' ? (ceilingAgentsForRate(sc, w.client.offeredRatePerSec) ?? w.agents) : w.agents;
}

/** The headline: the ceiling window of a search, or the last stage of a staged run. `windows`: those not superseded. */
function headlineIndexOf(sc: AssembleScenario, search: SearchResult | null, windows: WindowResult[]): number | null {
  if (search) {
    const good = search.ceilingLoad;
    const cands = windows.filter((w) => w.verdict.ok && (sc.ceiling?.unit === 'agents' ? w.agents === good : Math.abs(w.client.offeredRatePerSec - (good ?? -1)) < 1));
    // No ceiling claimed (untrustworthy, below the start): the last window that met the SLO, so
    // reports and gates still have a measured window to show; the summary claims nothing from it.
    const fallback = cands.length ? cands : windows.filter((w) => w.verdict.ok);
    return fallback.length ? fallback[fallback.length - 1].index : windows.length ? windows[windows.length - 1].index : null;
  }
  return windows.length ? windows[windows.length - 1].index : null;
}

/** The run's summary: a found ceiling with its limiting tier, or why there is none. Adds to `warnings`. */
function summaryOf(sc: AssembleScenario, search: SearchResult | null, windows: WindowResult[], headlineWindow: WindowResult | null, trustworthy: boolean, warnings: string[]): RunSummary {
  if (search && search.outcome === 'found' && headlineWindow) {
    const firstBad = windows.find((w) => !w.verdict.ok && (sc.ceiling?.unit === 'agents' ? w.agents === search.firstBad : true)) ?? windows.find((w) => !w.verdict.ok)!;
    const limiting = firstBad.diagnosis.limitingTier;
    const agents = agentsAtModel(sc, headlineWindow);
    const calmer = calmerWindow(
      windows.filter((w) => w.generator.trustworthy).map((w) => ({ nodes: w.nodes, agents: agentsAtModel(sc, w), ok: w.verdict.ok })),
      limiting,
      agents,
    );
    const tiers = tierCeilings(headlineWindow.nodes, agents, limiting, firstBad.diagnosis.evidence, calmer);
    const summary: RunSummary = {
      ceilingAgents: sc.ceiling?.unit === 'agents' ? search.ceilingLoad : ceilingAgentsForRate(sc, headlineWindow.client.offeredRatePerSec),
      ceilingRps: round(headlineWindow.client.achievedRatePerSec, 1),
      limitingTier: limiting,
      noTierNamed: limiting ? null : noTierReason(sc, firstBad.diagnosis.evidence),
      tiers,
      trustworthy,
      warnings,
    };
    if (!limiting && unmeasured(sc)) warnings.push(`no tier could be named: ${NO_NODES_HINT}`);
    else if (!limiting) warnings.push(`the SLO broke at ${firstBad.label} but no tier showed saturation: ${firstBad.diagnosis.evidence.join('; ')}`);
    return summary;
  }
  if (search) {
    const why: Record<string, string> = {
      'below-start': 'the first step already broke the SLO: lower ceiling.start',
      'above-max': 'every step met the SLO up to ceiling.max: the ceiling is higher than searched',
      untrustworthy: 'the generator or the host saturated before the stack: no ceiling is claimed',
      budget: 'ceiling.maxSteps ran out before the search converged',
      found: '',
    };
    warnings.push(`no ceiling: ${why[search.outcome]}`);
  }
  const tiers = headlineWindow ? tierCeilings(headlineWindow.nodes, agentsAtModel(sc, headlineWindow), null, []) : [];
  // Which tier limits is asked of every window that broke the SLO; an unmeasured stack cannot answer it at all.
  const broke = windows.find((w) => !w.verdict.ok);
  const named = broke?.diagnosis.limitingTier ?? null;
  const noTierNamed = unmeasured(sc) && windows.length > 0 ? `the stack's nodes were not measured: ${NO_NODES_HINT}` : broke && !named ? noTierReason(sc, broke.diagnosis.evidence) : null;
  return { ceilingAgents: null, ceilingRps: null, limitingTier: null, noTierNamed, tiers, trustworthy: trustworthy && (!search || search.outcome !== 'untrustworthy'), warnings };
}

/** USL over every trustworthy window: load = agents (or offered rate), throughput = achieved. */
function uslOf(sc: AssembleScenario, windows: WindowResult[]): { usl: UslResult | null; uslError: string | null } {
  const points = windows.filter((w) => w.generator.trustworthy).map((w) => ({ load: sc.ceiling?.unit === 'rate' ? w.client.offeredRatePerSec : w.agents, throughput: w.client.achievedRatePerSec }));
  const distinct = new Set(points.map((p) => p.load)).size;
  if (distinct < 3) return { usl: null, uslError: `needs at least 3 distinct loads, got ${distinct}` };
  try {
    const f = fitUsl(points);
    // The axis the points were fitted on: a search by rate fits the offered rate, not agents.
    const loadUnit: UslResult['loadUnit'] = sc.ceiling?.unit === 'rate' ? 'rate' : 'agents';
    const usl: UslResult = { loadUnit, points: points.sort((x, y) => x.load - y.load), sigma: f.sigma, kappa: f.kappa, lambda: f.lambda, nMax: Number.isFinite(f.nMax) ? f.nMax : -1, xMax: Number.isFinite(f.xMax) ? f.xMax : -1, r2: f.r2 };
    return { usl, uslError: null };
  } catch (err) {
    return { usl: null, uslError: (err as Error).message };
  }
}

/**
 * A rate ceiling in agents: only a per-agent check-in model (a fraction per minute) converts. A
 * fixed aggregate rate says nothing about how many agents would produce it, so no agent figure.
 */
function ceilingAgentsForRate(sc: AssembleScenario, ratePerSec: number): number | null {
  const c = sc.fleet.checkin;
  return c.kind === 'fraction' ? Math.round(ratePerSec / (c.fractionPerMin / 60)) : null;
}

/** The scenario's plan from the measured tier ceilings, sized as `rmmscale plan --from` sizes them (analysis/tier-sizing.ts). */
export function planFromSummary(summary: RunSummary, layout: readonly TierLayout[], sc: AssembleScenario): Plan | null {
  const { tiers } = tierCapacities(summary.tiers, layout);
  const agents = sc.plan?.agents[0] ?? summary.ceilingAgents;
  if (tiers.length === 0 || agents === null) return null;
  return planCapacity(tiers, { agents, maxUtilization: sc.plan?.maxUtilization ?? 0.8, redundancy: sc.plan?.redundancy ?? 'n+1' });
}
