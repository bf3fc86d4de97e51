import type { HostFacts } from '../core/host.js';
import { round } from '../core/units.js';
import { toolVersion } from '../core/version.js';
import { createLatencyHistogram, summarize, type LatencyHistogram, type LatencySummary } from '../metrics/histogram.js';
import { opStats, type OpStats } from '../metrics/op-stats.js';
import { describeWorkload, type SwarmConfig } from './config.js';
import type { IntervalMerger } from './interval-merge.js';
import { decideVerdict, SWARM_RESULT_SCHEMA, type RigVerdict, type SwarmResult, type WorkerSummary } from './result.js';
import type { Sizing } from './sizing.js';
import type { WorkerState } from './worker-pool.js';

/** Everything after the workers finished: totals, per-operation histograms, the rig's verdict, the result. */

export interface BuildSwarmResultInput {
  cfg: SwarmConfig;
  sizing: Sizing;
  host: HostFacts;
  startedAt: Date;
  intervalMs: number;
  merged: IntervalMerger;
  workers: WorkerState[];
  interrupted: boolean;
  /** The clock offset measured against a reference (coordinator), when one was. */
  clock?: { offsetMs: number; reference: string } | null;
}

export function buildSwarmResult(a: BuildSwarmResultInput): SwarmResult {
  const { cfg, sizing, merged: m, intervalMs, interrupted } = a;
  const { opResults, overall, overallService } = opResultsOf(m);
  const workerSummaries = summarizeWorkers(a.workers);
  const measuredIntervals = m.series.filter((p) => !p.warmup).length;
  const measuredSec = Math.max(0.001, Math.min(measuredIntervals * intervalMs, cfg.durationMs) / 1000);
  const hostCpuMean = m.hostCpuSamples.length > 0 ? round(mean(m.hostCpuSamples), 3) : null;
  const hostStealMean = m.hostStealSamples.length > 0 ? round(mean(m.hostStealSamples), 3) : null;
  const hostStealMax = m.hostStealSamples.length > 0 ? round(Math.max(...m.hostStealSamples), 3) : null;
  const lagSummary = summarize(m.lag);
  const verdict = rigVerdict(a, workerSummaries, { hostCpuMean, hostStealMean, hostStealMax }, lagSummary, measuredSec);
  const t = m.totals;
  return {
    schema: SWARM_RESULT_SCHEMA,
    tool: { name: 'rmmscale', version: toolVersion() },
    host: a.host,
    startedAt: a.startedAt.toISOString(),
    endedAt: new Date().toISOString(),
    complete: !interrupted && !workerSummaries.some((w) => w.exitedEarly),
    interrupted,
    config: configOf(cfg, sizing),
    summary: {
      targetRatePerSec: round(t.target > 0 ? intendedRate(cfg) / cfg.shard.count : 0, 1),
      achievedRatePerSec: round(m.completedInWindow / measuredSec, 1),
      intended: t.target,
      attempted: t.attempted,
      completed: t.completed,
      failed: t.failed,
      late: t.late,
      dropped: t.dropped,
      errorRate: t.completed + t.failed > 0 ? round(t.failed / (t.completed + t.failed), 6) : 0,
      latency: summarize(overall),
      serviceTime: summarize(overallService),
    },
    ops: opResults,
    errors: m.errors,
    series: m.series,
    generator: { workers: workerSummaries, schedulingLag: lagSummary, schedulingLagStealFree: m.lagStealFree.result(), hostCpuMean, hostStealMean, hostStealMax },
    reconnect: reconnectOf(opResults['ws-reconnect'], m, intervalMs),
    verdict,
    shard: {
      index: cfg.shard.index,
      count: cfg.shard.count,
      startAtEpochMs: m.startAtEpochMs,
      startAtRequestedEpochMs: cfg.startAtEpochMs,
      clockOffsetMs: a.clock?.offsetMs ?? null,
      clockReference: a.clock?.reference ?? null,
    },
  };
}

function opResultsOf(m: IntervalMerger): { opResults: Record<string, OpStats>; overall: LatencyHistogram; overallService: LatencyHistogram } {
  const opResults: Record<string, OpStats> = {};
  const overall = createLatencyHistogram();
  const overallService = createLatencyHistogram();
  for (const [name, acc] of m.ops) {
    opResults[name] = opStats(acc);
    if (!name.startsWith('ws-connect') && !name.startsWith('ws-reconnect')) {
      overall.add(acc.corrected);
      overallService.add(acc.service);
    }
  }
  return { opResults, overall, overallService };
}

function summarizeWorkers(workers: WorkerState[]): WorkerSummary[] {
  return workers.map((w, i) => ({
    worker: i,
    pid: w.pid,
    agents: w.agents,
    cpuMean: round(mean(w.cpu), 3),
    cpuMax: round(Math.max(0, ...w.cpu), 3),
    eldP99MsMax: round(w.eldMax, 3),
    eldMaxMsMax: round(w.eldMaxAbs, 3),
    rssBytesMax: w.rssMax,
    exitedEarly: w.exitedEarly,
  }));
}

type HostCpu = { hostCpuMean: number | null; hostStealMean: number | null; hostStealMax: number | null };

function rigVerdict(a: BuildSwarmResultInput, workers: WorkerSummary[], hostCpu: HostCpu, lag: LatencySummary, measuredSec: number): RigVerdict {
  const { cfg, merged: m } = a;
  return decideVerdict({
    attempted: m.totals.attempted,
    completed: m.totals.completed,
    failed: m.totals.failed,
    late: m.totals.late,
    droppedByCap: m.droppedByCap,
    workers,
    ...hostCpu,
    lagP99Us: lag.p99Us,
    lagMaxUs: lag.maxUs,
    lateThresholdMs: cfg.lateThresholdMs,
    maxErrorRate: cfg.maxErrorRate,
    interrupted: a.interrupted,
    closedLoop: cfg.workload.kind === 'closed',
    intended: m.totals.target,
    timeoutMs: cfg.timeoutMs,
    measuredSec,
    hostCpus: a.host.cpus,
  });
}

function configOf(cfg: SwarmConfig, sizing: Sizing): SwarmResult['config'] {
  return {
    targets: cfg.targets,
    agents: cfg.agents,
    checkin: describeWorkload(cfg.workload),
    arrival: cfg.arrival,
    mode: cfg.mode,
    connection: cfg.connection,
    closedLoop: cfg.workload.kind === 'closed',
    protocol: cfg.protocol?.name ?? null,
    durationMs: cfg.durationMs,
    warmupMs: cfg.warmupMs,
    stages: cfg.stages.map((s) => ({ durationMs: s.durationMs, agents: s.agents })),
    seed: cfg.seed,
    mix: { ...cfg.mix },
    workers: sizing.workers,
    sourceAddresses: sizing.sourceAddresses,
    maxInflightPerWorker: sizing.maxInflight,
    lateThresholdMs: cfg.lateThresholdMs,
    maxErrorRate: cfg.maxErrorRate,
  };
}

function reconnectOf(reconnectOp: OpStats | undefined, m: IntervalMerger, intervalMs: number): SwarmResult['reconnect'] {
  const errors = m.errors;
  if (!reconnectOp && !errors['ws:tunnel-dropped']) return null;
  return {
    disconnects: errors['ws:tunnel-dropped'] ?? 0,
    reconnected: reconnectOp?.completed ?? 0,
    t50Ms: reconnectOp ? round(reconnectOp.latency.p50Us / 1000, 3) : null,
    t90Ms: reconnectOp ? round(reconnectOp.latency.p90Us / 1000, 3) : null,
    t99Ms: reconnectOp ? round(reconnectOp.latency.p99Us / 1000, 3) : null,
    peakConnectsPerSec: Math.max(0, ...m.series.map((p) => p.connects / (intervalMs / 1000))),
  };
}

/** Mean intended rate over the measured window: ∫rate / duration (warm-up excluded). */
function intendedRate(cfg: SwarmConfig): number {
  const pts = cfg.profile.points;
  let area = 0;
  for (let j = 1; j < pts.length; j++) {
    const a = pts[j - 1];
    const b = pts[j];
    if (b.atMs <= cfg.warmupMs) continue;
    const d = b.atMs - a.atMs;
    // ∫ (A0 + dA·x)(f0 + df·x) dx over [0,1] · d
    const dA = b.agents - a.agents;
    const df = b.freqPerMs - a.freqPerMs;
    area += d * (a.agents * a.freqPerMs + (a.agents * df + a.freqPerMs * dA) / 2 + (dA * df) / 3);
  }
  return cfg.durationMs > 0 ? (area / cfg.durationMs) * 1000 : 0;
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}
