import { fork, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { TargetUnreachableError } from '../core/errors.js';
import { HostCpuSampler, hostFacts, openFileLimit } from '../core/host.js';
import { isLoopbackHost } from '../core/loopback.js';
import { describeCheckin } from '../core/units.js';
import { addEncoded, createLatencyHistogram, encodeHistogram, HlogBuilder, summarize, type LatencyHistogram } from '../metrics/histogram.js';
import type { SwarmConfig } from './config.js';
import { readCa, type WorkerHealth, type WorkerMessage, type WorkerPlan } from './engine.js';
import type { RecorderInterval } from './recorder.js';
import { decideVerdict, ELD_LIMIT_MS, HOST_STEAL_WARN, LATE_FRACTION_LIMIT, SWARM_RESULT_SCHEMA, WORKER_CPU_LIMIT, type OpResult, type SeriesPoint, type SwarmResult, type WorkerSummary } from './result.js';
import { StealFreeLagAccumulator } from './steal-free-lag.js';
import { agentsAt, rateAtPerSec } from './schedule.js';
import { toolVersion } from '../core/version.js';
import { runnableModulePath } from '../core/module-path.js';

/**
 * Runs a swarm: sizes and forks the worker processes, starts them on one shared instant, merges
 * their per-second intervals exactly (HDR histograms add without loss), and builds the result.
 * No printing here: progress goes to `onProgress`, the CLI decides how to show it.
 */

export interface SwarmRunOptions {
  config: SwarmConfig;
  onProgress?: (p: ProgressSnapshot) => void;
  /** Called once with the shared t = 0 (epoch ms) the workers were told to start at. */
  onStart?: (startAtEpochMs: number) => void;
  /** Abort = Ctrl-C: workers stop, the partial result is returned with `interrupted: true`. */
  signal?: AbortSignal;
  intervalMs?: number;
}

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
  errors: number;
  late: number;
  dropped: number;
  generatorOk: boolean;
  generatorNote: string;
}

export interface SwarmRunOutput {
  result: SwarmResult;
  hlog: string;
}

/** Sockets one worker may hold: 70% of its open-file limit, leaving room for everything else. */
export function socketBudget(fdLimit: number): number {
  return Math.max(64, Math.floor(fdLimit * 0.7));
}

/**
 * Tunnels one worker may hold: 90% of its open-file limit, less 64 for its own files (stdio, IPC,
 * epoll). A tunnel is exactly one descriptor, closed before its reconnect opens another, so little
 * more is needed. Fewer, fuller workers matter here: every worker costs ~65 MB and a few wake-ups a
 * second before it holds anything (at 20,000 files: 6 workers for 100,000 tunnels, not 9).
 */
export function tunnelBudget(fdLimit: number): number {
  return Math.max(64, Math.floor(fdLimit * 0.9) - 64);
}

/** One worker process holds its schedule to ~2 ms p99 up to about this rate (measured; docs/benchmarks.md). */
export const RATE_PER_WORKER = 8000;
/** Keep sockets per source address well below the ~15k where binding slows connects. */
export const SOCKETS_PER_ADDRESS = 4000;

export interface Sizing {
  workers: number;
  maxInflight: number;
  sourceAddresses: string[];
  peakRatePerSec: number;
  fdLimit: number;
}

/** Decide workers, in-flight caps and source addresses from the load and the open-file limit. */
export function sizeRun(cfg: SwarmConfig, fdLimit: number): Sizing {
  const budget = socketBudget(fdLimit);
  let peak = 0;
  for (const p of cfg.profile.points) peak = Math.max(peak, p.agents * p.freqPerMs * 1000);
  const holdsSockets = cfg.mode === 'ws' || cfg.connection === 'keepalive';
  // Keep-alive HTTP leaves a fifth of its budget for requests in flight beside the held sockets.
  const bySockets = cfg.mode === 'ws' ? Math.ceil(cfg.agents / tunnelBudget(fdLimit)) : holdsSockets ? Math.ceil(cfg.agents / (budget * 0.8)) : 1;
  const byRate = Math.ceil(peak / RATE_PER_WORKER);
  const workers = cfg.workers ?? Math.max(1, bySockets, byRate);
  const agentsPerWorker = Math.ceil(cfg.agents / workers);
  // Pool mode: the pool's connections are the cap, so undici never queues a send out of sight.
  const maxInflight = cfg.connection === 'pool' && cfg.mode === 'http' ? cfg.poolConnections : holdsSockets ? Math.max(16, budget - agentsPerWorker) : budget;
  const totalSockets = holdsSockets ? cfg.agents : Math.min(workers * maxInflight, Math.ceil(peak * 2) + 64);
  const loopback4 = cfg.targets.every((t) => {
    const h = new URL(t).hostname;
    return isLoopbackHost(h) && !h.includes(':') && h !== '[::1]';
  });
  const n = cfg.sourceAddresses ?? (loopback4 ? Math.min(250, Math.ceil(totalSockets / SOCKETS_PER_ADDRESS)) : 1);
  const sourceAddresses = loopback4 && n > 1 ? Array.from({ length: n }, (_, i) => `127.0.0.${i + 2}`) : [];
  return { workers, maxInflight, sourceAddresses, peakRatePerSec: peak, fdLimit };
}

/** Fail fast, with a clear line, when nothing listens at the target. */
export async function probeTarget(target: string, timeoutMs = 3000): Promise<void> {
  const url = new URL(target);
  const port = Number(url.port) || (url.protocol === 'https:' || url.protocol === 'wss:' ? 443 : 80);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  await new Promise<void>((resolve, reject) => {
    const sock = connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new TargetUnreachableError(target, `no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.end();
      resolve();
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = err.code === 'ECONNREFUSED' ? 'connection refused (is the stack running?)' : `${err.code ?? err.message}`;
      reject(new TargetUnreachableError(target, why));
    });
  });
}

interface OpAccumulator {
  corrected: LatencyHistogram;
  service: LatencyHistogram;
  completed: number;
  failed: number;
}

interface WorkerState {
  proc: ChildProcess;
  pid: number;
  agents: number;
  done: boolean;
  exitedEarly: boolean;
  cpu: number[];
  eldMax: number;
  /** The worst single event-loop delay in the measured window (not a percentile). */
  eldMaxAbs: number;
  rssMax: number;
}

/** Time between `go` and t = 0: pools connect and code warms up before the first intended send. */
const START_DELAY_MS = 400;

const WORKER_PATH = runnableModulePath(import.meta.url, './worker.js');

export async function runSwarm(opts: SwarmRunOptions): Promise<SwarmRunOutput> {
  const cfg = opts.config;
  const intervalMs = opts.intervalMs ?? 1000;
  for (const t of cfg.targets) await probeTarget(t);

  const fd = openFileLimit();
  const sizing = sizeRun(cfg, fd.soft ?? 1024);
  const caPem = readCa(cfg.caFile);
  const host = hostFacts();
  const hostCpu = new HostCpuSampler();
  const startedAt = new Date();

  const workers: WorkerState[] = [];
  const pending = new Map<number, Map<number, { interval: RecorderInterval; health: WorkerHealth }>>();
  const ops = new Map<string, OpAccumulator>();
  const errors: Record<string, number> = {};
  const lag = createLatencyHistogram();
  const lagStealFree = new StealFreeLagAccumulator();
  const series: SeriesPoint[] = [];
  const hostCpuSamples: number[] = [];
  const hostStealSamples: number[] = [];
  let droppedByCap = 0;
  let startAtEpochMs = 0;
  let interrupted = false;
  const totals = { target: 0, attempted: 0, completed: 0, failed: 0, late: 0, dropped: 0 };
  let completedInWindow = 0;
  const hlogComment = `rmmscale swarm: ${cfg.agents} agents, ${describeCheckin(cfg.checkin)}, ${cfg.targets.join(',')}`;
  // Created at the shared start instant, so the log's StartTime is the profile's t = 0.
  let hlog: HlogBuilder | null = null;

  let coordinatorCpuPrev = process.cpuUsage();
  const merge = (index: number, parts: Array<{ interval: RecorderInterval; health: WorkerHealth }>): void => {
    const coordinatorCpu = process.cpuUsage(coordinatorCpuPrev);
    coordinatorCpuPrev = process.cpuUsage();
    // Warm-up intervals are shown in the series but kept out of every total, histogram and verdict.
    const warm = (index + 1) * intervalMs <= cfg.warmupMs;
    const opHists = new Map<string, LatencyHistogram>();
    const point: SeriesPoint = {
      tSec: ((index + 1) * intervalMs) / 1000,
      warmup: warm,
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
      workersReported: parts.length,
      generatorCpuMax: 0,
      generatorCpuSum: 0,
      generatorCpuUs: 0,
      coordinatorCpuUs: coordinatorCpu.user + coordinatorCpu.system,
      generatorRssBytes: 0,
      eldP99MsMax: 0,
      lagP99Us: 0,
      hostCpu: null,
      hostSteal: null,
    };
    let fromMs = Infinity;
    let toMs = 0;
    const intervalLag = createLatencyHistogram();
    for (const { interval: iv, health } of parts) {
      fromMs = Math.min(fromMs, iv.fromMs);
      toMs = Math.max(toMs, iv.toMs);
      point.target += iv.target;
      point.attempted += iv.attempted;
      point.completed += iv.completed;
      point.failed += iv.failed;
      point.late += iv.late;
      point.dropped += iv.dropped;
      point.connected += iv.gauges.connected ?? 0;
      point.generatorCpuMax = Math.max(point.generatorCpuMax, health.cpu);
      point.generatorCpuSum += health.cpu;
      point.generatorCpuUs += health.cpuUs;
      point.generatorRssBytes += health.rssBytes;
      point.eldP99MsMax = Math.max(point.eldP99MsMax, health.eldP99Ms);
      if (!warm) {
        for (const [code, n] of Object.entries(iv.errors)) {
          errors[code] = (errors[code] ?? 0) + n;
          if (code === 'dropped:inflight-cap') droppedByCap += n;
        }
      }
      // An idle worker ships '' (no sends): nothing to decode.
      addEncoded(intervalLag, iv.lag);
      for (const [name, o] of Object.entries(iv.ops)) {
        if (!warm) {
          let acc = ops.get(name);
          if (!acc) {
            acc = { corrected: createLatencyHistogram(), service: createLatencyHistogram(), completed: 0, failed: 0 };
            ops.set(name, acc);
          }
          addEncoded(acc.corrected, o.corrected);
          addEncoded(acc.service, o.service);
          acc.completed += o.completed;
          acc.failed += o.failed;
        }
        if (name === 'ws-connect') point.connects += o.completed;
        let h = opHists.get(name);
        if (!h) opHists.set(name, (h = createLatencyHistogram()));
        addEncoded(h, o.corrected);
      }
    }
    if (!warm) lag.add(intervalLag);
    point.lagP99Us = intervalLag.totalCount ? intervalLag.getValueAtPercentile(99) : 0;
    const all = createLatencyHistogram();
    for (const [name, h] of opHists) {
      if (!name.startsWith('ws-connect') && !name.startsWith('ws-reconnect')) all.add(h);
      if (!warm) hlog?.addInterval(name, h, startAtEpochMs + fromMs, startAtEpochMs + Math.max(toMs, fromMs));
    }
    const spanSec = Math.max(0.001, (Math.max(toMs, fromMs + 1) - fromMs) / 1000);
    point.achievedRatePerSec = round1(point.completed / spanSec);
    // The interval after the profile's end only drains in-flight requests: no target there.
    const drain = index * intervalMs >= cfg.profile.durationMs;
    point.targetRatePerSec = drain ? 0 : round1(rateAtPerSec(cfg.profile, index * intervalMs + intervalMs / 2));
    point.p50Us = all.totalCount ? all.getValueAtPercentile(50) : 0;
    point.p99Us = all.totalCount ? all.getValueAtPercentile(99) : 0;
    const hc = hostCpu.sample();
    point.hostCpu = hc === null ? null : round3(hc.busy);
    point.hostSteal = hc === null ? null : round3(hc.steal);
    if (hc !== null && !warm && index * intervalMs < cfg.profile.durationMs) {
      hostCpuSamples.push(hc.busy);
      hostStealSamples.push(hc.steal);
      lagStealFree.add(intervalLag, point.hostSteal); // the published (rounded) figure, as in the series
    }
    if (!warm) for (const k of ['target', 'attempted', 'completed', 'failed', 'late', 'dropped'] as const) totals[k] += point[k];
    // Throughput counts completions inside the measured window only: a backlog that drains after
    // the window ends is in the counts above, but must not lift the achieved rate past capacity.
    if (!warm && index * intervalMs < cfg.profile.durationMs) completedInWindow += point.completed;
    series.push(point);
    if (drain) return;
    opts.onProgress?.({
      elapsedSec: Math.min(point.tSec, cfg.profile.durationMs / 1000),
      totalSec: cfg.profile.durationMs / 1000,
      activeAgents: point.activeAgents,
      connected: point.connected,
      targetRatePerSec: point.targetRatePerSec,
      achievedRatePerSec: point.achievedRatePerSec,
      p50Us: point.p50Us,
      p99Us: point.p99Us,
      errors: totals.failed,
      late: totals.late,
      dropped: totals.dropped,
      warmup: warm,
      // The verdict's per-worker limits, applied to this second alone.
      generatorOk: point.generatorCpuMax <= WORKER_CPU_LIMIT && point.late <= Math.max(1, point.attempted * LATE_FRACTION_LIMIT) && point.eldP99MsMax <= ELD_LIMIT_MS,
      generatorNote:
        `cpu ${(point.generatorCpuMax * 100).toFixed(0)}% eld ${point.eldP99MsMax.toFixed(1)}ms` +
        // Steal is the host's, not the generator's: shown once it could matter, never judged per second.
        (point.hostSteal !== null && point.hostSteal > HOST_STEAL_WARN ? ` steal ${(point.hostSteal * 100).toFixed(0)}%` : ''),
    });
  };

  const flushReady = (force: boolean): void => {
    const keys = [...pending.keys()].sort((a, b) => a - b);
    for (const index of keys) {
      const parts = pending.get(index)!;
      // An interval is complete when every worker has reported it or has finished for good.
      if (!force && !workers.every((w, i) => parts.has(i) || w.done)) break;
      pending.delete(index);
      merge(index, [...parts.values()]);
    }
  };

  const allDone = new Promise<void>((resolveAll) => {
    let readyCount = 0;
    const checkAllDone = (): void => {
      if (workers.every((w) => w.done)) resolveAll();
    };
    for (let i = 0; i < sizing.workers; i++) {
      const plan: WorkerPlan = {
        workerIndex: i,
        workerCount: sizing.workers,
        config: cfg,
        localAddresses: sizing.sourceAddresses,
        maxInflight: sizing.maxInflight,
        intervalMs,
        caPem,
      };
      // HTTP: a larger young generation means fewer scavenges interrupting the send loop. Tunnels:
      // an idle fleet allocates little, so a small young generation. V8's --optimize-for-size
      // cuts marginal RSS per tunnel to ~5.5 KB but its extra GCs cost far more idle CPU
      // (docs/benchmarks.md): CPU matters more on a host shared with the system under test.
      // --expose-gc: tunnel workers compact their heap when a wave of connects settles
      // (compact.ts). That is the memory reducer's job done at the right moment, so the reducer is
      // off: its rounds of full GCs after a compaction found nothing to return and cost an idle
      // fleet of 100,000 about 2.5% of a core while they ran (docs/benchmarks.md).
      const execArgv = cfg.mode === 'http' ? ['--max-semi-space-size=32'] : ['--max-semi-space-size=1', '--expose-gc', '--no-memory-reducer'];
      const proc = fork(WORKER_PATH, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
      const st: WorkerState = { proc, pid: proc.pid ?? -1, agents: 0, done: false, exitedEarly: false, cpu: [], eldMax: 0, eldMaxAbs: 0, rssMax: 0 };
      workers.push(st);
      proc.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') {
          st.agents = m.agents;
          if (++readyCount === sizing.workers) {
            // Workers connect pools and warm up before the shared t = 0.
            startAtEpochMs = Date.now() + START_DELAY_MS;
            hlog = new HlogBuilder(startAtEpochMs, hlogComment);
            for (const w of workers) w.proc.send({ type: 'go', startAtEpochMs });
            opts.onStart?.(startAtEpochMs);
          }
        } else if (m.type === 'interval') {
          const measured = m.index * intervalMs >= cfg.warmupMs && m.index * intervalMs < cfg.profile.durationMs;
          if (measured) {
            st.cpu.push(m.health.cpu);
            st.eldMax = Math.max(st.eldMax, m.health.eldP99Ms);
            st.eldMaxAbs = Math.max(st.eldMaxAbs, m.health.eldMaxMs);
          }
          st.rssMax = Math.max(st.rssMax, m.health.rssBytes);
          let parts = pending.get(m.index);
          if (!parts) pending.set(m.index, (parts = new Map()));
          parts.set(m.worker, { interval: m.interval, health: m.health });
          flushReady(false);
        } else if (m.type === 'done') {
          st.done = true;
          flushReady(false);
          checkAllDone();
        } else if (m.type === 'error') {
          errors[`worker:${m.code}`] = (errors[`worker:${m.code}`] ?? 0) + 1;
          process.stderr.write(`rmmscale: worker ${m.worker}: ${m.message}\n`);
        }
      });
      proc.on('exit', () => {
        if (!st.done) {
          st.done = true;
          st.exitedEarly = !interrupted;
          flushReady(false);
          checkAllDone();
        }
      });
      proc.send({ type: 'prepare', plan });
    }
  });

  const onAbort = (): void => {
    interrupted = true;
    for (const w of workers) if (!w.done && w.proc.connected) w.proc.send({ type: 'stop' });
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // Hard bound: the profile, the drain and a margin. Nothing runs forever.
  const hardMs = cfg.profile.durationMs + Math.min(cfg.timeoutMs, 10_000) + 30_000 + cfg.agents * 0.05;
  const hard = setTimeout(() => {
    for (const w of workers) if (!w.done) w.proc.kill('SIGKILL');
  }, hardMs);
  try {
    await allDone;
  } finally {
    clearTimeout(hard);
    opts.signal?.removeEventListener('abort', onAbort);
    for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGTERM');
  }
  flushReady(true);

  const opResults: Record<string, OpResult> = {};
  const overall = createLatencyHistogram();
  const overallService = createLatencyHistogram();
  for (const [name, acc] of ops) {
    opResults[name] = {
      count: acc.completed + acc.failed,
      completed: acc.completed,
      failed: acc.failed,
      latency: summarize(acc.corrected),
      serviceTime: summarize(acc.service),
      histograms: { corrected: encodeHistogram(acc.corrected), service: encodeHistogram(acc.service) },
    };
    if (!name.startsWith('ws-connect') && !name.startsWith('ws-reconnect')) {
      overall.add(acc.corrected);
      overallService.add(acc.service);
    }
  }
  const workerSummaries: WorkerSummary[] = workers.map((w, i) => ({
    worker: i,
    pid: w.pid,
    agents: w.agents,
    cpuMean: round3(mean(w.cpu)),
    cpuMax: round3(Math.max(0, ...w.cpu)),
    eldP99MsMax: round3(w.eldMax),
    eldMaxMsMax: round3(w.eldMaxAbs),
    rssBytesMax: w.rssMax,
    exitedEarly: w.exitedEarly,
  }));
  const measuredIntervals = series.filter((p) => !p.warmup).length;
  const measuredSec = Math.max(0.001, Math.min(measuredIntervals * intervalMs, cfg.durationMs) / 1000);
  const hostCpuMean = hostCpuSamples.length > 0 ? round3(mean(hostCpuSamples)) : null;
  const hostStealMean = hostStealSamples.length > 0 ? round3(mean(hostStealSamples)) : null;
  const hostStealMax = hostStealSamples.length > 0 ? round3(Math.max(...hostStealSamples)) : null;
  const lagSummary = summarize(lag);
  const verdict = decideVerdict({
    attempted: totals.attempted,
    completed: totals.completed,
    failed: totals.failed,
    late: totals.late,
    droppedByCap,
    workers: workerSummaries,
    hostCpuMean,
    hostStealMean,
    hostStealMax,
    lagP99Us: lagSummary.p99Us,
    lagMaxUs: lagSummary.maxUs,
    lateThresholdMs: cfg.lateThresholdMs,
    maxErrorRate: cfg.maxErrorRate,
    interrupted,
    closedLoop: cfg.closedLoop,
    intended: totals.target,
    timeoutMs: cfg.timeoutMs,
    measuredSec,
    hostCpus: host.cpus,
  });
  const reconnectOp = opResults['ws-reconnect'];
  const result: SwarmResult = {
    schema: SWARM_RESULT_SCHEMA,
    tool: { name: 'rmmscale', version: toolVersion() },
    host,
    startedAt: startedAt.toISOString(),
    endedAt: new Date().toISOString(),
    complete: !interrupted && !workerSummaries.some((w) => w.exitedEarly),
    interrupted,
    config: {
      targets: cfg.targets,
      agents: cfg.agents,
      checkin: describeCheckin(cfg.checkin),
      arrival: cfg.arrival,
      mode: cfg.mode,
      connection: cfg.connection,
      closedLoop: cfg.closedLoop,
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
    },
    summary: {
      targetRatePerSec: round1(totals.target > 0 ? intendedRate(cfg) : 0),
      achievedRatePerSec: round1(completedInWindow / measuredSec),
      intended: totals.target,
      attempted: totals.attempted,
      completed: totals.completed,
      failed: totals.failed,
      late: totals.late,
      dropped: totals.dropped,
      errorRate: totals.completed + totals.failed > 0 ? round6(totals.failed / (totals.completed + totals.failed)) : 0,
      latency: summarize(overall),
      serviceTime: summarize(overallService),
    },
    ops: opResults,
    errors,
    series,
    generator: { workers: workerSummaries, schedulingLag: lagSummary, schedulingLagStealFree: lagStealFree.result(), hostCpuMean, hostStealMean, hostStealMax },
    reconnect:
      reconnectOp || errors['ws:tunnel-dropped']
        ? {
            disconnects: errors['ws:tunnel-dropped'] ?? 0,
            reconnected: reconnectOp?.completed ?? 0,
            t50Ms: reconnectOp ? round3(reconnectOp.latency.p50Us / 1000) : null,
            t90Ms: reconnectOp ? round3(reconnectOp.latency.p90Us / 1000) : null,
            t99Ms: reconnectOp ? round3(reconnectOp.latency.p99Us / 1000) : null,
            peakConnectsPerSec: Math.max(0, ...series.map((p) => p.connects / (intervalMs / 1000))),
          }
        : null,
    verdict,
  };
  const log = hlog as HlogBuilder | null;
  return { result, hlog: log ? log.toString() : '' };
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
const round1 = (x: number): number => Math.round(x * 10) / 10;
const round3 = (x: number): number => Math.round(x * 1000) / 1000;
const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;
