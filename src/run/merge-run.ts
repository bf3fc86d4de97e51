import { InvalidArgumentError } from '../core/errors.js';
import { round } from '../core/units.js';
import { addEncoded, createLatencyHistogram, summarize } from '../metrics/histogram.js';
import { mergeOpStats, type OpStats } from '../metrics/op-stats.js';
import { scenarioPlanOf } from '../scenario/resolve-scenario.js';
import { checkShardSet, type ShardDoc } from '../swarm/merge-shards.js';
import { assemble, type AssembleScenario } from './assemble.js';
import { windowDiagnosis, windowVerdict } from './judge-window.js';
import type { ClientStats, GeneratorHealth, NodeSecond, RunMergedShard, RunResult, WindowResult } from './result-types.js';

/**
 * `rmmscale merge` of `rmmscale run --shard i/n` results: one result.json as if one process had
 * driven the whole fleet, which `report`, `gate` and `plan --from` read unchanged. Pure over the documents.
 * - Windows are matched by index (the shards ran the same windows: the same stages, or the same
 *   coordinator's decisions); each window's client figures add up, and every operation's
 *   histograms add bucket for bucket, so every percentile is exact.
 * - Each window is judged again on the merged figures against the scenario's SLO (judge-window.ts's
 *   windowVerdict, the run's own), never per shard; the scenario's thresholds are the gate's, on
 *   the merged file; the summary, tier ceilings, fits and plan are assembled from the merged windows
 *   (assemble.ts, the run's own).
 * - Nodes: every shard scrapes the same stack nodes (stack.nodes of the shared target), so node
 *   windows and the timeline are never summed: each node's figures come from the lowest-index shard
 *   that has them (shard 0, the coordinator, when it has them), placed on the merged clock.
 * - Clocks: a shard's times are moved by its `shard.clockOffsetMs` (measured against the
 *   coordinator; null, taken as 0, without one) and counted from the earliest shard's start.
 * - Trust: any untrustworthy shard window makes the merged window untrustworthy, and its reason says which shard.
 */

export type RunShardDoc = ShardDoc<RunResult>;

/** What must be equal across the shards of one run: the scenario, its seed and load, and the windows they ran. */
function runFingerprint(r: RunResult): string {
  return JSON.stringify([r.scenario.name, r.scenario.seed, r.load, r.stack.target, r.slo, r.windows.map((w) => [w.index, w.label, w.agents, w.checkin])]);
}

/** Exactly: counts add, histograms add bucket for bucket; rates add (each shard offered its share). */
export function mergeClientStats(parts: readonly ClientStats[]): ClientStats {
  const sum = (f: (c: ClientStats) => number): number => parts.reduce((a, c) => a + f(c), 0);
  const names = [...new Set(parts.flatMap((c) => Object.keys(c.ops)))];
  const ops: Record<string, OpStats> = Object.fromEntries(names.map((n) => [n, mergeOpStats(parts.flatMap((c) => (c.ops[n] ? [c.ops[n]] : [])))]));
  // Every operation's latency but tunnel connects, as the swarm's own summary counts it.
  const overall = createLatencyHistogram();
  for (const [name, o] of Object.entries(ops)) if (!name.startsWith('ws-connect') && !name.startsWith('ws-reconnect')) addEncoded(overall, o.histograms.corrected);
  const completed = sum((c) => c.completed);
  const failed = sum((c) => c.failed);
  const errors: Record<string, number> = {};
  for (const c of parts) for (const [k, v] of Object.entries(c.errors)) errors[k] = (errors[k] ?? 0) + v;
  return {
    agents: parts[0].agents,
    offeredRatePerSec: round(sum((c) => c.offeredRatePerSec), 1),
    attemptedRatePerSec: round(sum((c) => c.attemptedRatePerSec), 1),
    achievedRatePerSec: round(sum((c) => c.achievedRatePerSec), 1),
    count: sum((c) => c.count),
    completed,
    failed,
    late: sum((c) => c.late),
    dropped: sum((c) => c.dropped),
    errorRate: completed + failed > 0 ? round(failed / (completed + failed), 6) : 0,
    latency: overall.totalCount > 0 || names.length === 0 ? summarize(overall) : parts[0].latency,
    ops,
    errors,
  };
}

/** The rig over every shard: the worst of each health figure; untrustworthy when any shard was, saying which. */
export function mergeGenerator(parts: ReadonlyArray<{ index: number; count: number; g: GeneratorHealth }>): GeneratorHealth {
  const tag = (p: { index: number; count: number }, line: string): string => `shard ${p.index}/${p.count}: ${line}`;
  const untrusted = parts.filter((p) => !p.g.trustworthy);
  const worst = (f: (g: GeneratorHealth) => number | null | undefined): number | null => {
    const xs = parts.map((p) => f(p.g)).filter((x): x is number => typeof x === 'number');
    return xs.length ? Math.max(...xs) : null;
  };
  const reasons = parts.flatMap((p) => p.g.reasons.map((r) => tag(p, r)));
  const why = untrusted.map((p) => `shard ${p.index}/${p.count} was not (${p.g.trust?.why ?? (p.g.reasons.join('; ') || 'untrustworthy')})`).join('; ');
  if (untrusted.length > 0) reasons.unshift(`not trustworthy because ${why}`);
  const base = (untrusted[0] ?? parts[0]).g.trust;
  return {
    trustworthy: untrusted.length === 0,
    ...(base ? { trust: untrusted.length > 0 ? { ...base, trustworthy: false, why: `not trustworthy because ${why}` } : base } : {}),
    generatorBound: parts.some((p) => p.g.generatorBound),
    hostBound: parts.some((p) => p.g.hostBound),
    reasons,
    warnings: parts.flatMap((p) => p.g.warnings.map((w) => tag(p, w))),
    workers: parts.reduce((a, p) => a + p.g.workers, 0),
    cpuMax: worst((g) => g.cpuMax) ?? 0,
    schedulingLagP99Us: worst((g) => g.schedulingLagP99Us) ?? 0,
    hostCpuMean: worst((g) => g.hostCpuMean),
    hostStealMean: worst((g) => g.hostStealMean),
    hostStealMax: worst((g) => g.hostStealMax),
  };
}

/** A shard's t = 0 (its run's start) on the reference clock, epoch ms. */
function referenceStartMs(r: RunResult): number {
  return Date.parse(r.startedAt) - (r.shard?.clockOffsetMs ?? 0);
}

/** The facts assemble() reads, as the shard's result.json recorded them. */
function scenarioOf(r: RunResult): AssembleScenario {
  return {
    name: r.scenario.name,
    file: r.scenario.file,
    description: r.scenario.description,
    definition: r.scenario.definition,
    thresholds: r.thresholds,
    slo: r.slo,
    plan: scenarioPlanOf(r.scenario.definition),
    fleet: { checkin: r.load.checkin, seed: r.scenario.seed },
    ceiling: r.search ? { unit: r.search.unit, precision: r.search.precision } : null,
    stack: { target: r.stack.target, topology: r.stack.topology === 'external' ? null : r.stack.topology, profile: r.stack.profile, proxy: r.stack.proxy, db: r.stack.db, nodes: r.stack.target ? r.stack.nodes : [] },
  } as AssembleScenario;
}

/**
 * n shard results of one `rmmscale run --shard i/n` → one result. Throws InvalidArgumentError for a
 * wrong set of shards (one line, naming the files). A coordinator's result is already the merge of
 * its run: given with its shards, it is returned as it is.
 */
export function mergeRunShards(input: readonly RunShardDoc[]): RunResult {
  const merged = input.filter((d) => d.doc.mergedFrom !== undefined);
  if (merged.length > 0) return coordinatorResult(input, merged);
  checkShardSet(input, (r) => (r.shard ? { index: r.shard.index, count: r.shard.count } : undefined), runFingerprint, 'rmmscale run');
  const shards = [...input].sort((a, b) => a.doc.shard!.index - b.doc.shard!.index);
  const docs = shards.map((s) => s.doc);
  const first = docs[0];
  const refStarts = docs.map(referenceStartMs);
  const t0 = Math.min(...refStarts);
  const shiftSec = refStarts.map((s) => (s - t0) / 1000);
  const slo = first.slo;
  const windows: WindowResult[] = [];
  for (const [k, w0] of first.windows.entries()) {
    const ws = docs.map((d) => d.windows[k]);
    const client = mergeClientStats(ws.map((w) => w.client));
    const bgs = ws.map((w) => w.background).filter((b): b is ClientStats => b !== null);
    // Every shard scrapes the same nodes: the lowest-index shard that has them (see above).
    const nodes = ws.find((w) => w.nodes.length > 0)?.nodes ?? [];
    const { verdict } = windowVerdict(client, slo);
    const generator = mergeGenerator(ws.map((w, i) => ({ index: docs[i].shard!.index, count: docs[i].shard!.count, g: w.generator })));
    const merged: WindowResult = {
      index: w0.index,
      kind: w0.kind,
      label: w0.label,
      agents: w0.agents,
      checkin: w0.checkin,
      startSec: round(Math.min(...ws.map((w, i) => w.startSec + shiftSec[i])), 1),
      warmupSec: w0.warmupSec,
      measuredSec: Math.max(...ws.map((w) => w.measuredSec)),
      client,
      background: bgs.length ? mergeClientStats(bgs) : null,
      generator,
      nodes,
      verdict,
      diagnosis: windowDiagnosis(nodes, windows),
      ...(w0.supersededBy !== undefined ? { supersededBy: w0.supersededBy } : {}),
    };
    windows.push(merged);
  }
  const nodeSource = (name: string): number => docs.findIndex((d) => (d.timeline[name]?.length ?? 0) > 0);
  const timeline: Record<string, NodeSecond[]> = {};
  for (const name of [...new Set(docs.flatMap((d) => Object.keys(d.timeline)))]) {
    const i = nodeSource(name);
    if (i >= 0) timeline[name] = docs[i].timeline[name].map((s) => ({ ...s, tSec: round(s.tSec + shiftSec[i], 3) }));
  }
  const errors = docs.flatMap((d) => (d.error ? [`shard ${d.shard!.index}/${d.shard!.count}: ${d.error}`] : []));
  const untrustedShards = docs.filter((d) => !d.summary.trustworthy).map((d) => `${d.shard!.index}/${d.shard!.count}`);
  const warnings = untrustedShards.length ? [`not trustworthy because shard ${untrustedShards.join(', ')} ${untrustedShards.length === 1 ? 'was' : 'were'} not`] : [];
  const mergedFrom: RunMergedShard[] = shards.map((s) => ({
    index: s.doc.shard!.index,
    count: s.doc.shard!.count,
    file: s.file,
    startedAt: s.doc.startedAt,
    trustworthy: s.doc.summary.trustworthy,
    clockOffsetMs: s.doc.shard!.clockOffsetMs,
  }));
  const search = first.search ? { outcome: first.search.outcome, ceilingLoad: ceilingLoadOf(first), lastGood: first.search.lastGood, firstBad: first.search.firstBad, steps: [] } : null;
  const result = assemble({
    sc: scenarioOf(first),
    startedAt: new Date(t0).toISOString(),
    complete: docs.every((d) => d.complete),
    interrupted: docs.some((d) => d.interrupted),
    error: errors.length ? errors.join('; ') : null,
    windows,
    search,
    timeline,
    // The .hlog files stay beside each shard's result.json; the merged histograms are in the windows.
    hlogFiles: [],
    faults: docs.find((d) => d.faults.length > 0)?.faults ?? [],
    ledger: null,
    warnings,
    nodes: first.stack.nodes,
    versions: first.versions,
    mergedFrom,
  });
  // The alert delay is read from the analytics node by the shard that started the stack, and covers
  // every shard's agents (they all send to it): taken from that shard, as the faults are, on the merged clock.
  const a = docs.findIndex((d) => d.alertDelayMs !== undefined && d.alertDelayMs !== null);
  const alerts =
    a >= 0
      ? { alertDelayMs: docs[a].alertDelayMs, alertDelayTimeline: docs[a].alertDelayTimeline?.map((s) => ({ ...s, tSec: round(s.tSec + shiftSec[a], 3) })) ?? null }
      : {};
  return { ...result, ...alerts, host: first.host, endedAt: docs.map((d) => d.endedAt).sort()[docs.length - 1] };
}

/** The ceiling a search claimed: its last good load when it found one (the assembly's headline). */
function ceilingLoadOf(r: RunResult): number | null {
  const s = r.search;
  if (!s) return null;
  return s.outcome === 'found' || s.outcome === 'above-max' || s.outcome === 'budget' ? s.lastGood : null;
}

/** A coordinator's result with (some of) its shards: it already merged every window as it ran. */
function coordinatorResult(input: readonly RunShardDoc[], merged: readonly RunShardDoc[]): RunResult {
  const allowed = 'the shard results of one run, or one coordinator result (which already merged its shards) with its own shards';
  if (merged.length > 1) throw new InvalidArgumentError(merged[1].file, 'a second merged result', `${allowed}: ${merged[0].file} is merged too`);
  const m = merged[0];
  const count = m.doc.mergedFrom![0]?.count ?? 1;
  for (const d of input) {
    if (d === m) continue;
    const s = d.doc.shard;
    if (!s || !s.coordinated || s.count !== count || d.doc.scenario.seed !== m.doc.scenario.seed || d.doc.scenario.name !== m.doc.scenario.name) {
      throw new InvalidArgumentError(d.file, s ? `shard ${s.index}/${s.count}` : 'a result without a shard', `${allowed}: ${m.file} is the coordinator's of ${count} shards`);
    }
  }
  return m.doc;
}
