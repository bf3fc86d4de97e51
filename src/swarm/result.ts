import type { HostFacts } from '../core/host.js';
import type { LatencySummary } from '../metrics/histogram.js';
import type { OpStats } from '../metrics/op-stats.js';
import type { ReconnectCurve } from './reconnect.js';
import type { SendOutcomes } from './recorder.js';
import type { StealFreeLag } from './steal-free-lag.js';
import { HOST_CPU_SATURATED, judgeTrust, type Trust } from './generator-trust.js';

/**
 * The swarm's result document, `rmmscale.swarm/1`. Everything after a run (reports, gates, plans)
 * reads this, never a live swarm. Additive changes keep the version; anything else bumps it.
 */
export const SWARM_RESULT_SCHEMA = 'rmmscale.swarm/1';

export interface SeriesPoint extends SendOutcomes {
  /** End of the interval, seconds from the profile's start (warm-up included). */
  tSec: number;
  /** A warm-up interval: shown, but outside every total, histogram and the verdict. */
  warmup: boolean;
  targetRatePerSec: number;
  achievedRatePerSec: number;
  target: number;
  attempted: number;
  /** Tunnels open at the end of the interval (ws mode). */
  connected: number;
  /** Tunnel connects completed in the interval, first connects and reconnects alike (ws mode). */
  connects: number;
  activeAgents: number;
  p50Us: number;
  p99Us: number;
  workersReported: number;
  generatorCpuMax: number;
  /** CPU of all workers together, in cores (1 = one full core): each worker's share of its own interval, summed. */
  generatorCpuSum: number;
  /**
   * CPU time all workers used in this interval, µs. Unlike generatorCpuSum it adds up exactly over
   * a window (a late interval timer makes one worker's interval long and its next one short).
   */
  generatorCpuUs: number;
  /** CPU time the coordinator process (this one: merging, printing) used since the previous point, µs. */
  coordinatorCpuUs: number;
  /** RSS of all workers together at the end of the interval, bytes. */
  generatorRssBytes: number;
  eldP99MsMax: number;
  /** Scheduling lag p99 over all workers in the interval, µs. */
  lagP99Us: number;
  hostCpu: number | null;
  /** Host steal over the interval: share of all cores' time the hypervisor took (HostCpuSample). */
  hostSteal: number | null;
  /** A shard's result only (`--shard`): the second's histogram of every operation but connects (compressed base64, µs), for an exact merge. */
  histogram?: string;
}

export interface WorkerSummary {
  worker: number;
  pid: number;
  agents: number;
  cpuMean: number;
  cpuMax: number;
  eldP99MsMax: number;
  /** The worst single event-loop delay (ms) in the measured window; absent in older results. */
  eldMaxMsMax?: number;
  rssBytesMax: number;
  exitedEarly: boolean;
}

export type { ReconnectCurve as ReconnectSummary } from './reconnect.js';

/**
 * The rig's own health over a run (generator- or host-bound, and why) and, with no SLO to hold
 * against, whether its numbers can be trusted (GeneratorTrust decides; `rmmscale run` judges each
 * window again against the scenario's SLO).
 */
export interface RigVerdict {
  trustworthy: boolean;
  generatorBound: boolean;
  hostBound: boolean;
  sutFailed: boolean;
  reasons: string[];
  warnings: string[];
  /** How trust was decided, with the rig's error bound (absent in results written before it existed). */
  trust?: Trust;
}

export interface SwarmResult {
  schema: typeof SWARM_RESULT_SCHEMA;
  tool: { name: 'rmmscale'; version: string };
  host: HostFacts;
  startedAt: string;
  endedAt: string;
  complete: boolean;
  interrupted: boolean;
  config: {
    targets: string[];
    agents: number;
    /** The check-in model as written (`30%/min`, `250/s`, `every 5 min`), or `max` for a closed loop. */
    checkin: string;
    arrival: string;
    mode: string;
    connection: string;
    /** `--rate max`: closed loop, no schedule; latency is service time. */
    closedLoop: boolean;
    /** The protocol file's `name` (--protocol); absent or null: rmmscale's own agent API (and `mix` applies). */
    protocol?: string | null;
    /** The measured window. */
    durationMs: number;
    warmupMs: number;
    stages: Array<{ durationMs: number; agents: number }>;
    seed: string;
    mix: Record<string, number>;
    workers: number;
    sourceAddresses: string[];
    maxInflightPerWorker: number;
    lateThresholdMs: number;
    maxErrorRate: number;
  };
  summary: SendOutcomes & {
    targetRatePerSec: number;
    achievedRatePerSec: number;
    intended: number;
    attempted: number;
    errorRate: number;
    latency: LatencySummary;
    serviceTime: LatencySummary;
  };
  /** By operation (metrics/op-stats.ts): the same shape a run's result.json keeps per window. */
  ops: Record<string, OpStats>;
  errors: Record<string, number>;
  series: SeriesPoint[];
  generator: {
    workers: WorkerSummary[];
    schedulingLag: LatencySummary;
    /**
     * The same over only the measured seconds whose host steal stayed at or under 1%: the
     * generator's own precision, beside (never instead of) the figure above. null where the host
     * does not report steal.
     */
    schedulingLagStealFree: StealFreeLag | null;
    hostCpuMean: number | null;
    /** Mean host steal over the measured window (null where the host does not report it). */
    hostStealMean: number | null;
    /**
     * The worst single second's steal in the measured window (null as above). A mean of 0.7% can
     * be one second at 25%: the lag and latency tails are made of such seconds.
     */
    hostStealMax: number | null;
  };
  reconnect: ReconnectCurve | null;
  verdict: RigVerdict;
  /** Which slice of the fleet this run drove, and when its t = 0 was; absent in results written before sharding. */
  shard?: ShardFacts;
  /** A merged result (`rmmscale merge`): the shards it was made of. */
  mergedFrom?: MergedShard[];
}

/**
 * A shard's place and clock. `startAtEpochMs` is its t = 0 on its own wall clock; shards that
 * were given one `--start-at` share it. `clockOffsetMs` is this machine's clock minus the
 * reference's (null: not measured), so t = 0 on the reference's clock is startAtEpochMs −
 * clockOffsetMs; `rmmscale merge` aligns the per-second series by that.
 */
export interface ShardFacts {
  index: number;
  count: number;
  startAtEpochMs: number;
  /** The `--start-at` asked for, epoch ms (null: started when ready). */
  startAtRequestedEpochMs: number | null;
  clockOffsetMs: number | null;
  /** What the offset was measured against (a URL), null when not measured. */
  clockReference: string | null;
}

/** One shard of a merged result. */
export interface MergedShard {
  index: number;
  file: string;
  startedAt: string;
  trustworthy: boolean;
}

export interface RigVerdictInput {
  attempted: number;
  completed: number;
  failed: number;
  late: number;
  droppedByCap: number;
  workers: Array<{ cpuMean: number; eldP99MsMax: number; eldMaxMsMax?: number; exitedEarly: boolean }>;
  hostCpuMean: number | null;
  hostStealMean: number | null;
  hostStealMax: number | null;
  lagP99Us: number;
  lateThresholdMs: number;
  maxErrorRate: number;
  interrupted: boolean;
  /** `--rate max`: saturated by design (a lower bound on the target's throughput). */
  closedLoop?: boolean;
  /** Sends the schedule intended (default: attempted + droppedByCap). */
  intended?: number;
  lagMaxUs?: number;
  timeoutMs?: number;
  measuredSec?: number;
  hostCpus?: number;
}

/** Share of sends that may go out late before the generator is called the bottleneck… */
export const LATE_FRACTION_LIMIT = 0.01;
/** …counted only from this many late sends: two late sends out of ninety are noise, not saturation. */
export const LATE_COUNT_MIN = 10;
/** A worker using more than this share of a core cannot keep its schedule reliably. */
export const WORKER_CPU_LIMIT = 0.9;
/**
 * A worker whose event loop stalled this long (the worst per-second p99) held every send and every
 * receipt in it for as long: its latencies describe the generator. Well above a GC pause.
 */
export const ELD_LIMIT_MS = 1000;
/** Host CPU (all cores) above this: the generator and the system under test compete for cores. */
export const HOST_CPU_LIMIT = HOST_CPU_SATURATED;
/**
 * Host steal (the hypervisor running other guests while this one had work) above this share of
 * the machine's time: the generator and the target both stood still for it, in pauses no process
 * here can see, so the latencies are the neighbours' as much as the target's.
 */
export const HOST_STEAL_LIMIT = 0.05;
/**
 * Above this, a warning: a tail percentile beyond the 1 − LATE_FRACTION_LIMIT share of sends can
 * be made of steal alone.
 */
export const HOST_STEAL_WARN = 0.01;

/**
 * Decide whether the numbers can be trusted. Pure: the thresholds above are the whole policy.
 * - generator-bound: sends dropped by the in-flight cap, more than 1% of sends late (and at least
 *   10 of them), a worker above 90% of a core, a worker whose event loop stalled over 1 s, or a
 *   worker that died;
 * - host-bound: the host's CPUs were busy above 95% on average, or the hypervisor stole more than
 *   5% of their time (a warning from 1% on average, or from 5% in any one second);
 * - SUT failed: the error rate exceeded the allowed rate.
 */
export function decideVerdict(v: RigVerdictInput): RigVerdict {
  const reasons: string[] = [];
  const warnings: string[] = [];
  let generatorBound = false;
  if (v.droppedByCap > 0) {
    generatorBound = true;
    reasons.push(`${v.droppedByCap} sends were dropped at the in-flight cap: the generator could not hold the offered load open`);
  }
  const lateFraction = v.attempted > 0 ? v.late / v.attempted : 0;
  if (lateFraction > LATE_FRACTION_LIMIT && v.late >= LATE_COUNT_MIN) {
    generatorBound = true;
    reasons.push(
      `${(lateFraction * 100).toFixed(1)}% of sends left more than ${v.lateThresholdMs} ms after their intended time (limit ${LATE_FRACTION_LIMIT * 100}%); scheduling lag p99 ${(v.lagP99Us / 1000).toFixed(1)} ms`,
    );
  }
  const hot = v.workers.filter((w) => w.cpuMean > WORKER_CPU_LIMIT);
  if (hot.length > 0) {
    generatorBound = true;
    reasons.push(`${hot.length} worker(s) used more than ${WORKER_CPU_LIMIT * 100}% of a core on average: add --workers or lower the load`);
  }
  const stalled = v.workers.filter((w) => w.eldP99MsMax > ELD_LIMIT_MS);
  if (stalled.length > 0) {
    generatorBound = true;
    const worstMs = Math.max(...stalled.map((w) => w.eldP99MsMax));
    reasons.push(`${stalled.length} worker(s) had their event loop stalled for up to ${worstMs.toFixed(0)} ms (limit ${ELD_LIMIT_MS} ms): latencies measured in them include the generator's own delay`);
  }
  const dead = v.workers.filter((w) => w.exitedEarly).length;
  if (dead > 0) {
    generatorBound = true;
    reasons.push(`${dead} worker process(es) exited before the end: their agents stopped sending`);
  }
  const cpuBound = v.hostCpuMean !== null && v.hostCpuMean > HOST_CPU_LIMIT;
  if (cpuBound) {
    reasons.push(`host CPU averaged ${(v.hostCpuMean! * 100).toFixed(0)}% (limit ${HOST_CPU_LIMIT * 100}%): the generator and the system under test competed for cores`);
  }
  const stealPct = v.hostStealMean === null ? '' : (v.hostStealMean * 100).toFixed(1);
  const stolen = v.hostStealMean !== null && v.hostStealMean > HOST_STEAL_LIMIT;
  // A second over the limit is named beside the mean: steal comes in bursts, and so do tails.
  const burst = v.hostStealMax !== null && v.hostStealMax > HOST_STEAL_LIMIT ? (v.hostStealMax * 100).toFixed(1) : null;
  const worst = burst === null ? '' : `, up to ${burst}% in its worst second`;
  if (stolen) {
    reasons.push(`the hypervisor took ${stealPct}% of this machine's CPU time${worst} (steal; limit ${HOST_STEAL_LIMIT * 100}%): the generator and the target stood still for it, so latencies include the neighbours' load`);
  } else if (v.hostStealMean !== null && v.hostStealMean > HOST_STEAL_WARN) {
    warnings.push(`the hypervisor took ${stealPct}% of this machine's CPU time${worst} (steal; over ${HOST_STEAL_WARN * 100}%): tail latencies and scheduling lag may include it`);
  } else if (burst !== null) {
    warnings.push(`the hypervisor took ${burst}% of this machine's CPU time in the worst second (steal; ${stealPct}% over the run): that second's latencies and scheduling lag include it`);
  }
  const hostBound = cpuBound || stolen;
  const finished = v.completed + v.failed;
  const errorRate = finished > 0 ? v.failed / finished : 0;
  const sutFailed = errorRate > v.maxErrorRate;
  if (sutFailed) warnings.push(`error rate ${(errorRate * 100).toFixed(2)}% is above the allowed ${(v.maxErrorRate * 100).toFixed(2)}%`);
  if (v.interrupted) warnings.push('the run was interrupted: partial result');
  const trust = judgeTrust({
    rig: { generatorBound, hostBound, reasons },
    slo: null,
    facts: {
      intended: v.intended ?? v.attempted + v.droppedByCap,
      attempted: v.attempted,
      late: v.late,
      timeouts: 0,
      completed: v.completed,
      failed: v.failed,
      lagP99Us: v.lagP99Us,
      lagMaxUs: v.lagMaxUs ?? v.lagP99Us,
      eventLoopDelayMaxUs: Math.round(Math.max(0, ...v.workers.map((w) => w.eldMaxMsMax ?? w.eldP99MsMax)) * 1000),
      timeoutMs: v.timeoutMs ?? 0,
      measuredSec: v.measuredSec ?? 0,
      hostCpus: v.hostCpus ?? 1,
      hostCpuMean: v.hostCpuMean,
      hostStealMean: v.hostStealMean,
      hostStealMax: v.hostStealMax,
      workersDied: dead,
      closedLoop: v.closedLoop === true,
    },
  });
  if (trust.judgedAs === 'closed-loop') warnings.push(trust.why);
  return { trustworthy: trust.trustworthy, generatorBound, hostBound, sutFailed, reasons, warnings, trust };
}
