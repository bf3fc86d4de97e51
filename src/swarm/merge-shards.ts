import { InvalidArgumentError } from '../core/errors.js';
import { round } from '../core/units.js';
import { addEncoded, createLatencyHistogram, encodeHistogram, summarize, type LatencyHistogram } from '../metrics/histogram.js';
import { mergeOpStats, type OpStats } from '../metrics/op-stats.js';
import type { RigVerdict, SeriesPoint, SwarmResult, WorkerSummary } from './result.js';
import { SWARM_RESULT_SCHEMA } from './result.js';

/**
 * `rmmscale merge` of swarm shards (`rmmscale swarm --shard i/n --json …`): one result as if one
 * process had run the whole fleet. Pure over the documents.
 * - counts add; per-operation histograms add bucket for bucket, so every percentile is exact;
 * - the per-second series is aligned by wall clock (each shard's t = 0, corrected by its measured
 *   clock offset, rounded to the second) and each second's percentiles come from the shards'
 *   per-second histograms, exactly;
 * - the verdict: any untrustworthy shard makes the whole untrustworthy, and its reasons say which;
 *   the error rate is judged on the merged counts.
 * Shards of different runs are refused, with one line (mergeCheck).
 */

export interface ShardDoc<T> {
  file: string;
  doc: T;
}

/** What must be equal across the shards of one run (the seed, the fleet, the load): a fingerprint per shard. */
function swarmFingerprint(r: SwarmResult): string {
  const c = r.config;
  return JSON.stringify([c.targets, c.agents, c.checkin, c.arrival, c.mode, c.connection, c.durationMs, c.warmupMs, c.stages, c.seed, c.mix]);
}

/**
 * Refuse shards that are not the n shards of one run: a file without a shard block, different
 * counts, a different scenario or seed, an index twice or missing. One line, naming the files.
 */
export function checkShardSet<T>(docs: ReadonlyArray<ShardDoc<T>>, shardOf: (d: T) => { index: number; count: number } | undefined, fingerprint: (d: T) => string, what: string): void {
  const allowed = `the n result files of one sharded ${what} (shards 0/n … n−1/n, same seed and load)`;
  if (docs.length === 0) throw new InvalidArgumentError('SHARD.json', '(none)', allowed);
  const seen = new Map<number, string>();
  const first = docs[0];
  const firstShard = shardOf(first.doc);
  for (const d of docs) {
    const s = shardOf(d.doc);
    if (!s) throw new InvalidArgumentError(d.file, 'a result without a shard', `${allowed}: run each with --shard i/n`);
    if (s.count !== firstShard?.count) throw new InvalidArgumentError(d.file, `shard ${s.index}/${s.count}`, `${allowed}: ${first.file} is of ${firstShard?.count ?? 1}`);
    if (fingerprint(d.doc) !== fingerprint(first.doc)) throw new InvalidArgumentError(d.file, 'another run', `${allowed}: its seed, fleet or load differ from ${first.file}'s`);
    const twice = seen.get(s.index);
    if (twice !== undefined) throw new InvalidArgumentError(d.file, `shard ${s.index}/${s.count}`, `${allowed}: ${twice} is shard ${s.index} too`);
    seen.set(s.index, d.file);
  }
  const n = firstShard?.count ?? 1;
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !seen.has(i));
  if (missing.length > 0) throw new InvalidArgumentError('SHARD.json', `${docs.length} of ${n} shards`, `${allowed}: missing shard ${missing.map((i) => `${i}/${n}`).join(', ')}`);
}

/** Each shard's t = 0 on the reference clock, as whole seconds after the earliest: where its series starts in the merged one. */
export function secondOffsets(starts: ReadonlyArray<{ startAtEpochMs: number; clockOffsetMs: number | null }>): number[] {
  const t0 = starts.map((s) => s.startAtEpochMs - (s.clockOffsetMs ?? 0));
  const min = Math.min(...t0);
  return t0.map((t) => Math.round((t - min) / 1000));
}

function mergeOps(docs: ReadonlyArray<Record<string, OpStats>>): Record<string, OpStats> {
  const names = [...new Set(docs.flatMap((d) => Object.keys(d)))];
  return Object.fromEntries(names.map((n) => [n, mergeOpStats(docs.flatMap((d) => (d[n] ? [d[n]] : [])))]));
}

function sumRecords(rs: ReadonlyArray<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rs) for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v;
  return out;
}

const SUMMED: ReadonlyArray<keyof SeriesPoint> = [
  'targetRatePerSec', 'achievedRatePerSec', 'target', 'attempted', 'completed', 'failed', 'late', 'dropped', 'connected', 'connects', 'activeAgents',
  'workersReported', 'generatorCpuSum', 'generatorCpuUs', 'coordinatorCpuUs', 'generatorRssBytes',
];
const WORST: ReadonlyArray<keyof SeriesPoint> = ['generatorCpuMax', 'eldP99MsMax', 'lagP99Us'];

/** The series by wall-clock second: counts summed, worst-of for the rig's health, exact percentiles from each second's histograms. */
export function mergeSeries(series: ReadonlyArray<readonly SeriesPoint[]>, offsets: readonly number[]): SeriesPoint[] {
  const slots = new Map<number, { point: SeriesPoint; hist: LatencyHistogram; exact: boolean; hosts: number[]; steals: number[] }>();
  series.forEach((points, i) => {
    for (const p of points) {
      const at = p.tSec + offsets[i];
      let slot = slots.get(at);
      if (!slot) {
        const zero = Object.fromEntries([...SUMMED, ...WORST].map((k) => [k, 0])) as unknown as SeriesPoint;
        slot = { point: { ...zero, tSec: at, warmup: p.warmup, p50Us: 0, p99Us: 0, hostCpu: null, hostSteal: null }, hist: createLatencyHistogram(), exact: true, hosts: [], steals: [] };
        slots.set(at, slot);
      }
      const q = slot.point as unknown as Record<string, number>;
      const src = p as unknown as Record<string, number>;
      for (const k of SUMMED) q[k] = round(q[k] + (src[k] ?? 0), 3);
      for (const k of WORST) q[k] = Math.max(q[k], src[k] ?? 0);
      slot.point.warmup = slot.point.warmup && p.warmup;
      if (p.histogram !== undefined) addEncoded(slot.hist, p.histogram);
      else slot.exact = false;
      if (p.hostCpu !== null) slot.hosts.push(p.hostCpu);
      if (p.hostSteal !== null) slot.steals.push(p.hostSteal);
    }
  });
  return [...slots.values()]
    .sort((a, b) => a.point.tSec - b.point.tSec)
    .map(({ point, hist, exact, hosts, steals }) => {
      // Each shard ran on its own host: the worst host is the one that could have held the load back.
      const out: SeriesPoint = { ...point, hostCpu: hosts.length ? Math.max(...hosts) : null, hostSteal: steals.length ? Math.max(...steals) : null };
      if (exact) {
        out.p50Us = hist.totalCount ? hist.getValueAtPercentile(50) : 0;
        out.p99Us = hist.totalCount ? hist.getValueAtPercentile(99) : 0;
        out.histogram = encodeHistogram(hist);
      }
      return out;
    });
}

/** Any untrustworthy shard makes the whole untrustworthy; its reasons are kept, each saying which shard. */
export function mergeVerdicts(verdicts: ReadonlyArray<{ index: number; count: number; verdict: RigVerdict }>, errorRate: number, maxErrorRate: number): RigVerdict {
  const tag = (v: { index: number; count: number }, line: string): string => `shard ${v.index}/${v.count}: ${line}`;
  const untrusted = verdicts.filter((v) => !v.verdict.trustworthy);
  const reasons = verdicts.flatMap((v) => v.verdict.reasons.map((r) => tag(v, r)));
  if (untrusted.length > 0) reasons.unshift(`not trustworthy because shard ${untrusted.map((v) => `${v.index}/${v.count}`).join(', ')} ${untrusted.length === 1 ? 'was' : 'were'} not`);
  const sutFailed = errorRate > maxErrorRate;
  const warnings = verdicts.flatMap((v) => v.verdict.warnings.filter((w) => !/^error rate /.test(w)).map((w) => tag(v, w)));
  if (sutFailed) warnings.push(`error rate ${(errorRate * 100).toFixed(2)}% is above the allowed ${(maxErrorRate * 100).toFixed(2)}%`);
  const trust = (untrusted[0] ?? verdicts[0]).verdict.trust;
  return {
    trustworthy: untrusted.length === 0,
    generatorBound: verdicts.some((v) => v.verdict.generatorBound),
    hostBound: verdicts.some((v) => v.verdict.hostBound),
    sutFailed,
    reasons,
    warnings,
    ...(trust ? { trust } : {}),
  };
}

/** n swarm shard results → one swarm result. Throws InvalidArgumentError for a wrong set of shards. */
export function mergeSwarmShards(input: ReadonlyArray<ShardDoc<SwarmResult>>): SwarmResult {
  checkShardSet(input, (r) => r.shard, swarmFingerprint, 'rmmscale swarm');
  const shards = [...input].sort((a, b) => a.doc.shard!.index - b.doc.shard!.index);
  const docs = shards.map((s) => s.doc);
  const first = docs[0];
  const sum = (f: (r: SwarmResult) => number): number => docs.reduce((a, r) => a + f(r), 0);
  const ops = mergeOps(docs.map((r) => r.ops));
  const overall = createLatencyHistogram();
  const service = createLatencyHistogram();
  for (const [name, o] of Object.entries(ops)) {
    if (name.startsWith('ws-connect') || name.startsWith('ws-reconnect')) continue;
    addEncoded(overall, o.histograms.corrected);
    addEncoded(service, o.histograms.service);
  }
  const completed = sum((r) => r.summary.completed);
  const failed = sum((r) => r.summary.failed);
  const errorRate = completed + failed > 0 ? round(failed / (completed + failed), 6) : 0;
  const offsets = secondOffsets(docs.map((r) => ({ startAtEpochMs: r.shard!.startAtEpochMs, clockOffsetMs: r.shard!.clockOffsetMs })));
  const series = mergeSeries(docs.map((r) => r.series), offsets);
  const workers: WorkerSummary[] = docs.flatMap((r) => r.generator.workers).map((w, i) => ({ ...w, worker: i }));
  const worst = (f: (r: SwarmResult) => number | null): number | null => {
    const xs = docs.map(f).filter((x): x is number => x !== null);
    return xs.length ? Math.max(...xs) : null;
  };
  const lagWorst = docs.reduce((a, r) => (r.generator.schedulingLag.p99Us > a.generator.schedulingLag.p99Us ? r : a), first);
  const reconnectOp = ops['ws-reconnect'];
  const disconnects = sum((r) => r.reconnect?.disconnects ?? 0);
  return {
    ...first,
    startedAt: docs.map((r) => r.startedAt).sort()[0],
    endedAt: docs.map((r) => r.endedAt).sort()[docs.length - 1],
    complete: docs.every((r) => r.complete),
    interrupted: docs.some((r) => r.interrupted),
    config: { ...first.config, workers: sum((r) => r.config.workers), sourceAddresses: [...new Set(docs.flatMap((r) => r.config.sourceAddresses))] },
    summary: {
      targetRatePerSec: round(sum((r) => r.summary.targetRatePerSec), 1),
      achievedRatePerSec: round(sum((r) => r.summary.achievedRatePerSec), 1),
      intended: sum((r) => r.summary.intended),
      attempted: sum((r) => r.summary.attempted),
      completed,
      failed,
      late: sum((r) => r.summary.late),
      dropped: sum((r) => r.summary.dropped),
      errorRate,
      latency: summarize(overall),
      serviceTime: summarize(service),
    },
    ops,
    errors: sumRecords(docs.map((r) => r.errors)),
    series,
    generator: {
      workers,
      // Not exactly mergeable (no histogram kept): the worst shard's, which bounds the rig's error.
      schedulingLag: lagWorst.generator.schedulingLag,
      schedulingLagStealFree: lagWorst.generator.schedulingLagStealFree,
      hostCpuMean: worst((r) => r.generator.hostCpuMean),
      hostStealMean: worst((r) => r.generator.hostStealMean),
      hostStealMax: worst((r) => r.generator.hostStealMax),
    },
    reconnect:
      docs.every((r) => r.reconnect === null) && !reconnectOp
        ? null
        : {
            disconnects,
            reconnected: reconnectOp?.completed ?? 0,
            t50Ms: reconnectOp ? round(reconnectOp.latency.p50Us / 1000, 3) : null,
            t90Ms: reconnectOp ? round(reconnectOp.latency.p90Us / 1000, 3) : null,
            t99Ms: reconnectOp ? round(reconnectOp.latency.p99Us / 1000, 3) : null,
            peakConnectsPerSec: Math.max(0, ...series.map((p) => p.connects)),
          },
    verdict: mergeVerdicts(docs.map((r) => ({ index: r.shard!.index, count: r.shard!.count, verdict: r.verdict })), errorRate, first.config.maxErrorRate),
    shard: undefined,
    mergedFrom: shards.map((s) => ({ index: s.doc.shard!.index, file: s.file, startedAt: s.doc.startedAt, trustworthy: s.doc.verdict.trustworthy })),
    schema: SWARM_RESULT_SCHEMA,
  };
}
