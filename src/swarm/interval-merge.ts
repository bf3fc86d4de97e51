import { HostCpuSampler } from '../core/host.js';
import { round } from '../core/units.js';
import { addEncoded, createLatencyHistogram, encodeHistogram, HlogBuilder, type LatencyHistogram } from '../metrics/histogram.js';
import { newOpAccumulator, type OpAccumulator } from '../metrics/op-stats.js';
import type { SwarmConfig } from './config.js';
import type { IntervalPart } from './ipc.js';
import type { LiveMetrics } from './live-metrics.js';
import { ELD_LIMIT_MS, HOST_STEAL_WARN, LATE_FRACTION_LIMIT, WORKER_CPU_LIMIT, type SeriesPoint } from './result.js';
import { agentsAt, rateAtPerSec } from './schedule.js';
import { StealFreeLagAccumulator } from './steal-free-lag.js';

/**
 * Merges the workers' reports of one interval into one second of the series, exactly (HDR
 * histograms add without loss), and into the run's totals. Warm-up intervals are shown in the
 * series but kept out of every total, histogram and verdict.
 */

export interface ProgressSnapshot {
  /** Seconds since t = 0, warm-up included. */
  elapsedSec: number;
  warmup: boolean;
  totalSec: number;
  activeAgents: number;
  connected: number;
  targetRatePerSec: number;
  achievedRatePerSec: number;
  p50Us: number;
  p99Us: number;
  /** Failed sends so far (measured intervals only). */
  errors: number;
  /** Failed sends in this one interval, warm-up included. */
  errorsInInterval: number;
  late: number;
  dropped: number;
  generatorOk: boolean;
  generatorNote: string;
  /** This second's latency per operation (µs, from the intended time): the run's fault comparisons read it. Not for printing. */
  opHists?: ReadonlyMap<string, LatencyHistogram>;
}

const COUNTS = ['target', 'attempted', 'completed', 'failed', 'late', 'dropped'] as const;

export class IntervalMerger {
  readonly ops = new Map<string, OpAccumulator>();
  readonly errors: Record<string, number> = {};
  readonly lag = createLatencyHistogram();
  readonly lagStealFree = new StealFreeLagAccumulator();
  readonly series: SeriesPoint[] = [];
  readonly hostCpuSamples: number[] = [];
  readonly hostStealSamples: number[] = [];
  readonly totals = { target: 0, attempted: 0, completed: 0, failed: 0, late: 0, dropped: 0 };
  droppedByCap = 0;
  completedInWindow = 0;
  startAtEpochMs = 0;
  // Created at the shared start instant, so the log's StartTime is the profile's t = 0.
  hlog: HlogBuilder | null = null;
  private readonly hostCpu = new HostCpuSampler();
  private coordinatorCpuPrev = process.cpuUsage();

  constructor(
    private readonly cfg: SwarmConfig,
    private readonly intervalMs: number,
    private readonly onProgress?: (p: ProgressSnapshot) => void,
    /** The live view (--metrics-port): fed each merged second, warm-up and drain included. */
    private readonly live?: LiveMetrics,
  ) {}

  /** A worker's own failure, counted beside the requests' errors. */
  countWorkerError(code: string): void {
    this.errors[`worker:${code}`] = (this.errors[`worker:${code}`] ?? 0) + 1;
  }

  /** The shared t = 0: the .hlog starts here. */
  begin(startAtEpochMs: number, hlogComment: string): void {
    this.startAtEpochMs = startAtEpochMs;
    this.hlog = new HlogBuilder(startAtEpochMs, hlogComment);
  }

  merge(index: number, parts: IntervalPart[]): void {
    const { cfg, intervalMs } = this;
    const coordinatorCpu = process.cpuUsage(this.coordinatorCpuPrev);
    this.coordinatorCpuPrev = process.cpuUsage();
    const warm = (index + 1) * intervalMs <= cfg.warmupMs;
    const point = blankPoint(cfg, intervalMs, index, warm, parts.length, coordinatorCpu.user + coordinatorCpu.system);
    const opHists = new Map<string, LatencyHistogram>();
    const intervalLag = createLatencyHistogram();
    let fromMs = Infinity;
    let toMs = 0;
    for (const part of parts) {
      fromMs = Math.min(fromMs, part.interval.fromMs);
      toMs = Math.max(toMs, part.interval.toMs);
      this.addPart(point, part, warm, opHists, intervalLag);
    }
    if (!warm) this.lag.add(intervalLag);
    point.lagP99Us = intervalLag.totalCount ? intervalLag.getValueAtPercentile(99) : 0;
    const all = createLatencyHistogram();
    for (const [name, h] of opHists) {
      if (!name.startsWith('ws-connect') && !name.startsWith('ws-reconnect')) all.add(h);
      if (!warm) this.hlog?.addInterval(name, h, this.startAtEpochMs + fromMs, this.startAtEpochMs + Math.max(toMs, fromMs));
    }
    const spanSec = Math.max(0.001, (Math.max(toMs, fromMs + 1) - fromMs) / 1000);
    point.achievedRatePerSec = round(point.completed / spanSec, 1);
    // The interval after the profile's end only drains in-flight requests: no target there.
    const drain = index * intervalMs >= cfg.profile.durationMs;
    // A shard offers its 1/n of the fleet's rate (by count; its own sends are counted exactly).
    point.targetRatePerSec = drain ? 0 : round(rateAtPerSec(cfg.profile, index * intervalMs + intervalMs / 2) / cfg.shard.count, 1);
    point.p50Us = all.totalCount ? all.getValueAtPercentile(50) : 0;
    point.p99Us = all.totalCount ? all.getValueAtPercentile(99) : 0;
    // A shard keeps each second's histogram, so `rmmscale merge` can give the merged second exact percentiles.
    if (cfg.shard.count > 1) point.histogram = encodeHistogram(all);
    const inProfile = index * intervalMs < cfg.profile.durationMs;
    this.sampleHost(point, intervalLag, !warm && inProfile);
    if (!warm) for (const k of COUNTS) this.totals[k] += point[k];
    // Throughput counts completions inside the measured window only: a backlog that drains after
    // the window ends is in the counts above, but must not lift the achieved rate past capacity.
    if (!warm && inProfile) this.completedInWindow += point.completed;
    this.series.push(point);
    const progress = progressOf(point, this.totals, cfg.profile.durationMs / 1000);
    this.live?.interval(point, opHists, progress.generatorOk);
    if (drain) return;
    this.onProgress?.({ ...progress, opHists });
  }

  /** One worker's interval into the point, and (measured intervals only) into the run's totals. */
  private addPart(point: SeriesPoint, { interval: iv, health }: IntervalPart, warm: boolean, opHists: Map<string, LatencyHistogram>, intervalLag: LatencyHistogram): void {
    for (const k of COUNTS) point[k] += iv[k];
    point.connected += iv.gauges.connected ?? 0;
    point.generatorCpuMax = Math.max(point.generatorCpuMax, health.cpu);
    point.generatorCpuSum += health.cpu;
    point.generatorCpuUs += health.cpuUs;
    point.generatorRssBytes += health.rssBytes;
    point.eldP99MsMax = Math.max(point.eldP99MsMax, health.eldP99Ms);
    if (!warm) {
      for (const [code, n] of Object.entries(iv.errors)) {
        this.errors[code] = (this.errors[code] ?? 0) + n;
        if (code === 'dropped:inflight-cap') this.droppedByCap += n;
      }
    }
    // An idle worker ships '' (no sends): nothing to decode.
    addEncoded(intervalLag, iv.lag);
    for (const [name, o] of Object.entries(iv.ops)) {
      if (!warm) {
        let acc = this.ops.get(name);
        if (!acc) {
          acc = newOpAccumulator();
          this.ops.set(name, acc);
        }
        addEncoded(acc.corrected, o.histograms.corrected);
        addEncoded(acc.service, o.histograms.service);
        acc.completed += o.completed;
        acc.failed += o.failed;
      }
      if (name === 'ws-connect') point.connects += o.completed;
      let h = opHists.get(name);
      if (!h) opHists.set(name, (h = createLatencyHistogram()));
      addEncoded(h, o.histograms.corrected);
    }
  }

  private sampleHost(point: SeriesPoint, intervalLag: LatencyHistogram, measured: boolean): void {
    const hc = this.hostCpu.sample();
    point.hostCpu = hc === null ? null : round(hc.busy, 3);
    point.hostSteal = hc === null ? null : round(hc.steal, 3);
    if (hc !== null && measured) {
      this.hostCpuSamples.push(hc.busy);
      this.hostStealSamples.push(hc.steal);
      this.lagStealFree.add(intervalLag, point.hostSteal); // the published (rounded) figure, as in the series
    }
  }
}

function blankPoint(cfg: SwarmConfig, intervalMs: number, index: number, warmup: boolean, workersReported: number, coordinatorCpuUs: number): SeriesPoint {
  return {
    tSec: ((index + 1) * intervalMs) / 1000,
    warmup,
    targetRatePerSec: 0,
    achievedRatePerSec: 0,
    target: 0,
    attempted: 0,
    completed: 0,
    failed: 0,
    late: 0,
    dropped: 0,
    connected: 0,
    connects: 0,
    activeAgents: Math.floor(agentsAt(cfg.profile, Math.min((index + 1) * intervalMs, cfg.profile.durationMs)) + 1e-9),
    p50Us: 0,
    p99Us: 0,
    workersReported,
    generatorCpuMax: 0,
    generatorCpuSum: 0,
    generatorCpuUs: 0,
    coordinatorCpuUs,
    generatorRssBytes: 0,
    eldP99MsMax: 0,
    lagP99Us: 0,
    hostCpu: null,
    hostSteal: null,
  };
}

function progressOf(point: SeriesPoint, totals: IntervalMerger['totals'], totalSec: number): ProgressSnapshot {
  return {
    elapsedSec: Math.min(point.tSec, totalSec),
    totalSec,
    activeAgents: point.activeAgents,
    connected: point.connected,
    targetRatePerSec: point.targetRatePerSec,
    achievedRatePerSec: point.achievedRatePerSec,
    p50Us: point.p50Us,
    p99Us: point.p99Us,
    errors: totals.failed,
    errorsInInterval: point.failed,
    late: totals.late,
    dropped: totals.dropped,
    warmup: point.warmup,
    // The verdict's per-worker limits, applied to this second alone.
    generatorOk: point.generatorCpuMax <= WORKER_CPU_LIMIT && point.late <= Math.max(1, point.attempted * LATE_FRACTION_LIMIT) && point.eldP99MsMax <= ELD_LIMIT_MS,
    generatorNote:
      `cpu ${(point.generatorCpuMax * 100).toFixed(0)}% eld ${point.eldP99MsMax.toFixed(1)}ms` +
      // Steal is the host's, not the generator's: shown once it could matter, never judged per second.
      (point.hostSteal !== null && point.hostSteal > HOST_STEAL_WARN ? ` steal ${(point.hostSteal * 100).toFixed(0)}%` : ''),
  };
}
