import { cumulativeCountsAtUs, type LatencyHistogram } from '../metrics/histogram.js';
import { PromText } from '../metrics/prometheus.js';
import type { TrustBasis } from './generator-trust.js';
import type { SeriesPoint } from './result.js';

/**
 * The live view of a generator (`--metrics-port`): what the swarm's coordinator merged each second,
 * kept as Prometheus counters, gauges and histograms, and rendered as exposition text on a scrape.
 *
 * It is fed from the coordinator only (IntervalMerger, once per merged interval, warm-up
 * included), from data the workers send anyway: the send path is untouched. Counters accumulate
 * over every swarm it is given, so `rmmscale run`'s windows make one continuous series. Latency
 * buckets are derived from each second's exact HDR histograms (cumulativeCountsAtUs).
 */

/** Bucket bounds, seconds: the stack nodes' bounds, and 30 s / 60 s for the client's timeouts. */
export const LATENCY_BOUNDS_SEC = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;
const BOUNDS_US = LATENCY_BOUNDS_SEC.map((s) => s * 1e6);

/** Every TrustBasis, so that the trust gauge's series are all there from the first scrape. */
const TRUST_BASES = { clean: 0, 'pass-holds': 0, 'breach-holds': 0, 'could-flip': 0, 'not-delivered': 0, incomplete: 0, 'rig-bound': 0, 'closed-loop': 0 } satisfies Record<TrustBasis, number>;

const COUNTERS = [
  ['offered', 'target', 'Sends the schedule intended (offered load), sent or not.'],
  ['sent', 'attempted', 'Sends that left.'],
  ['completed', 'completed', 'Sends answered successfully (achieved load).'],
  ['failed', 'failed', 'Sends that failed (an error status, a timeout, a reset).'],
  ['late', 'late', 'Sends that left later than the late threshold after their intended time.'],
  ['dropped', 'dropped', 'Intended sends that never left (a concurrency cap, a closed tunnel).'],
  ['connects', 'connects', 'Tunnel connects completed, first connects and reconnects (ws).'],
] as const satisfies ReadonlyArray<readonly [string, keyof SeriesPoint, string]>;

interface OpBuckets {
  cumulative: number[];
  sumSec: number;
  count: number;
}

export class LiveMetrics {
  private readonly totals = new Map<string, number>(COUNTERS.map(([name]) => [name, 0]));
  private readonly ops = new Map<string, OpBuckets>();
  private last: SeriesPoint | null = null;
  private withinLimits = 1;
  private cpuSec = 0;
  private running = 0;
  private readonly trust: Record<TrustBasis, number> = { ...TRUST_BASES };
  private readonly judgedCount = { trustworthy: 0, untrustworthy: 0 };

  /** A swarm started (1) or ended (0). */
  setRunning(running: boolean): void {
    this.running = running ? 1 : 0;
  }

  /**
   * One merged second: its point, each operation's latency histogram (from the intended send
   * time), and whether the generator stayed within its per-worker limits in it.
   */
  interval(point: SeriesPoint, opHists: ReadonlyMap<string, LatencyHistogram>, withinLimits: boolean): void {
    for (const [name, key] of COUNTERS) this.totals.set(name, (this.totals.get(name) ?? 0) + point[key]);
    for (const [op, h] of opHists) {
      if (h.totalCount === 0) continue;
      let b = this.ops.get(op);
      if (!b) this.ops.set(op, (b = { cumulative: new Array<number>(BOUNDS_US.length).fill(0), sumSec: 0, count: 0 }));
      const counts = cumulativeCountsAtUs(h, BOUNDS_US);
      for (let i = 0; i < counts.length; i++) b.cumulative[i] += counts[i];
      b.sumSec += (h.mean * h.totalCount) / 1e6;
      b.count += h.totalCount;
    }
    this.cpuSec += (point.generatorCpuUs + point.coordinatorCpuUs) / 1e6;
    this.withinLimits = withinLimits ? 1 : 0;
    this.last = point;
  }

  /** GeneratorTrust's judgement of a window (run) or of the whole swarm. */
  judged(basis: TrustBasis, trustworthy: boolean): void {
    for (const k of Object.keys(this.trust) as TrustBasis[]) this.trust[k] = k === basis ? 1 : 0;
    this.judgedCount[trustworthy ? 'trustworthy' : 'untrustworthy']++;
  }

  render(): string {
    const p = new PromText();
    for (const [name, , help] of COUNTERS) p.metric(`rmmscale_generator_${name}_total`, 'counter', help, [{ value: this.totals.get(name) ?? 0 }]);
    p.histogram(
      'rmmscale_generator_latency_seconds',
      'Client latency per operation, from the intended send time (coordinated omission corrected), warm-up included.',
      [...this.ops].map(([op, b]) => ({ labels: { op }, boundsSec: LATENCY_BOUNDS_SEC, cumulative: b.cumulative, sumSec: b.sumSec, count: b.count })),
    );
    const l = this.last;
    const gauge = (name: string, help: string, value: number | null | undefined): void => {
      p.metric(name, 'gauge', help, [{ value: value ?? NaN }]);
    };
    gauge('rmmscale_generator_running', '1 while a swarm runs.', this.running);
    gauge('rmmscale_generator_connected_tunnels', 'Tunnels open at the end of the last second (ws).', l?.connected ?? 0);
    gauge('rmmscale_generator_active_agents', 'Agents the load profile had active in the last second.', l?.activeAgents ?? 0);
    gauge('rmmscale_generator_offered_rate_per_second', "The load profile's intended send rate in the last second.", l?.targetRatePerSec ?? 0);
    gauge('rmmscale_generator_achieved_rate_per_second', 'Sends completed per second in the last second.', l?.achievedRatePerSec ?? 0);
    gauge('rmmscale_generator_workers', 'Worker processes that reported the last second.', l?.workersReported ?? 0);
    gauge('rmmscale_generator_scheduling_lag_p99_seconds', 'Scheduling lag p99 (actual − intended send) over all workers in the last second.', l ? l.lagP99Us / 1e6 : 0);
    gauge('rmmscale_generator_event_loop_delay_p99_seconds', "The worst worker's event-loop delay p99 in the last second.", l ? l.eldP99MsMax / 1000 : 0);
    gauge('rmmscale_generator_worker_cpu_max_ratio', "The busiest worker's share of one core in the last second.", l?.generatorCpuMax ?? 0);
    p.metric('rmmscale_generator_cpu_seconds_total', 'counter', 'CPU time of the workers and the coordinator.', [{ value: this.cpuSec }]);
    gauge('rmmscale_generator_resident_memory_bytes', 'RSS of all workers together at the end of the last second.', l?.generatorRssBytes ?? 0);
    gauge('rmmscale_generator_host_cpu_ratio', 'Host CPU busy share over the last second (all cores).', l ? l.hostCpu : NaN);
    gauge('rmmscale_generator_host_steal_ratio', "Share of all cores' time the hypervisor took over the last second (steal).", l ? l.hostSteal : NaN);
    gauge('rmmscale_generator_within_limits', '1 when the last second kept the per-worker limits (CPU, late sends, event-loop delay).', this.withinLimits);
    p.metric(
      'rmmscale_generator_trust',
      'gauge',
      'GeneratorTrust: 1 for how the last judged window (run) or swarm was judged.',
      (Object.keys(this.trust) as TrustBasis[]).map((basis) => ({ labels: { basis }, value: this.trust[basis] })),
    );
    p.metric('rmmscale_generator_judged_total', 'counter', 'Windows (run) or swarms judged, by whether they could be trusted.', [
      { labels: { trustworthy: 'true' }, value: this.judgedCount.trustworthy },
      { labels: { trustworthy: 'false' }, value: this.judgedCount.untrustworthy },
    ]);
    return p.toString();
  }
}
