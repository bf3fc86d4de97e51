import { monitorEventLoopDelay } from 'node:perf_hooks';
import { HostCpuSampler, type HostCpuSample } from '../../core/host.js';
import type { NodeHdrSnapshot } from '../../core/protocol.js';
import { createLatencyHistogram, encodeHistogram, recordUs, type LatencyHistogram } from '../../metrics/histogram.js';
import { PromText } from '../../metrics/prometheus.js';
import type { CapacityLimiter } from '../capacity.js';
import type { NodeMetricsApi, NodeSpec } from '../types.js';

/**
 * Everything a node measures about itself: requests by route and status, exact HDR latency per
 * route, per-second counts, in-flight, the capacity limiter (busy, queued, utilisation), event-loop
 * delay, CPU, RSS, and whether the host rather than the profile limits it.
 */

const BUCKETS_SEC = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const ELD_RESOLUTION_MS = 5;
/** Past these, the node says the host (not its profile) is what limits it. */
export const HOST_LIMIT = { eldP99Ms: 50, hostCpu: 0.9 } as const;

class RouteStats {
  readonly hist: LatencyHistogram = createLatencyHistogram();
  readonly byStatus = new Map<number, number>();
  readonly buckets = new Array<number>(BUCKETS_SEC.length).fill(0);
  sumSec = 0;
  count = 0;
  readonly perSecond = new Map<number, number>();
}

export class NodeMetrics implements NodeMetricsApi {
  private readonly spec: NodeSpec;
  private readonly routes = new Map<string, RouteStats>();
  private readonly counters = new Map<string, number>();
  private readonly gauges = new Map<string, number>();
  private readonly ops = new Map<string, LatencyHistogram>();
  private readonly eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
  private readonly hostCpu = new HostCpuSampler();
  private lastHost: HostCpuSample | null = null;
  private lastEldP99Ms = 0;
  private lastUtilization = 0;
  private sampleTimer: NodeJS.Timeout;
  readonly sinceMs = Date.now();
  inflight = 0;
  limiter: CapacityLimiter | null = null;
  /** The database's model (connections × per-query time), where the database lives. */
  dbLimiter: CapacityLimiter | null = null;
  private lastDbUtilization = 0;

  constructor(spec: NodeSpec) {
    this.spec = spec;
    this.eld.enable();
    // Once a second: host CPU, event-loop delay and limiter utilisation over the last second.
    this.sampleTimer = setInterval(() => this.sample(), 1000);
    this.sampleTimer.unref();
  }

  private sample(): void {
    this.lastHost = this.hostCpu.sample();
    this.lastEldP99Ms = Math.max(0, this.eld.percentile(99) / 1e6 - ELD_RESOLUTION_MS);
    this.eld.reset();
    if (this.limiter) this.lastUtilization = this.limiter.takeUtilization();
    if (this.dbLimiter) this.lastDbUtilization = this.dbLimiter.takeUtilization();
  }

  private route(name: string): RouteStats {
    let r = this.routes.get(name);
    if (!r) this.routes.set(name, (r = new RouteStats()));
    return r;
  }

  request(route: string, status: number, latencyUs: number): void {
    const r = this.route(route);
    recordUs(r.hist, latencyUs);
    r.byStatus.set(status, (r.byStatus.get(status) ?? 0) + 1);
    const sec = latencyUs / 1e6;
    for (let i = 0; i < BUCKETS_SEC.length; i++) if (sec <= BUCKETS_SEC[i]) r.buckets[i]++;
    r.sumSec += sec;
    r.count++;
    const now = Math.floor(Date.now() / 1000);
    r.perSecond.set(now, (r.perSecond.get(now) ?? 0) + 1);
    if (r.perSecond.size > 3700) r.perSecond.delete(r.perSecond.keys().next().value as number);
  }

  count(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }

  gauge(name: string, value: number): void {
    this.gauges.set(name, value);
  }

  observeUs(op: string, valueUs: number): void {
    let h = this.ops.get(op);
    if (!h) this.ops.set(op, (h = createLatencyHistogram()));
    recordUs(h, valueUs);
  }

  /** Whether the host, not the node's profile, is what limits it right now. */
  hostLimited(): { limited: boolean; eldP99Ms: number; hostCpu: number | null; hostSteal: number | null } {
    const hostCpu = this.lastHost?.busy ?? null;
    const limited = this.lastEldP99Ms > HOST_LIMIT.eldP99Ms || (hostCpu !== null && hostCpu > HOST_LIMIT.hostCpu);
    return { limited, eldP99Ms: this.lastEldP99Ms, hostCpu, hostSteal: this.lastHost?.steal ?? null };
  }

  health(): Record<string, unknown> {
    const h = this.hostLimited();
    return {
      ok: true,
      node: this.spec.name,
      role: this.spec.role,
      tier: this.spec.tier,
      pid: process.pid,
      inflight: this.inflight,
      busyWorkers: this.limiter?.busy ?? null,
      queueDepth: this.limiter?.queued ?? null,
      utilization: this.limiter ? this.lastUtilization : null,
      db: this.dbLimiter ? { busyConnections: this.dbLimiter.busy, connections: this.dbLimiter.workers, queueDepth: this.dbLimiter.queued, utilization: this.lastDbUtilization } : null,
      eventLoopDelayP99Ms: h.eldP99Ms,
      hostCpu: h.hostCpu,
      hostSteal: h.hostSteal,
      hostLimited: h.limited,
    };
  }

  snapshot(): NodeHdrSnapshot {
    const histograms: Record<string, string> = {};
    const perSecond: Record<string, Array<{ sec: number; count: number }>> = {};
    for (const [name, r] of this.routes) {
      histograms[name] = encodeHistogram(r.hist);
      perSecond[name] = [...r.perSecond].map(([sec, count]) => ({ sec, count }));
    }
    for (const [name, h] of this.ops) histograms[`op:${name}`] = encodeHistogram(h);
    return { node: this.spec.name, role: this.spec.role, sinceMs: this.sinceMs, histograms, perSecond };
  }

  prometheus(): string {
    const base = { node: this.spec.name, role: this.spec.role, tier: this.spec.tier };
    const p = new PromText();
    const reqs: Array<{ labels: Record<string, string>; value: number }> = [];
    for (const [route, r] of this.routes) for (const [status, n] of r.byStatus) reqs.push({ labels: { ...base, route, status: String(status) }, value: n });
    p.metric('rmmscale_requests_total', 'counter', 'Requests served, by route and status.', reqs);
    p.histogram(
      'rmmscale_request_duration_seconds',
      'Server-side request latency, arrival to response end (queueing in the capacity limiter included).',
      [...this.routes].map(([route, r]) => ({ labels: { ...base, route }, boundsSec: BUCKETS_SEC, cumulative: r.buckets, sumSec: r.sumSec, count: r.count })),
    );
    p.metric('rmmscale_inflight_requests', 'gauge', 'Requests being served now.', [{ labels: base, value: this.inflight }]);
    if (this.limiter) {
      p.metric('rmmscale_busy_workers', 'gauge', 'Capacity-profile workers busy now.', [{ labels: base, value: this.limiter.busy }]);
      p.metric('rmmscale_worker_slots', 'gauge', 'Capacity-profile workers in all.', [{ labels: base, value: this.limiter.workers }]);
      p.metric('rmmscale_queue_depth', 'gauge', 'Requests waiting for a worker.', [{ labels: base, value: this.limiter.queued }]);
      p.metric('rmmscale_utilization', 'gauge', 'Busy share of worker time over the last second.', [{ labels: base, value: this.lastUtilization }]);
      p.metric('rmmscale_rejected_total', 'counter', 'Requests refused with 503 because the queue was full.', [{ labels: base, value: this.limiter.rejected }]);
    }
    if (this.dbLimiter) {
      p.metric('rmmscale_db_busy_connections', 'gauge', 'Database-model connections busy now.', [{ labels: base, value: this.dbLimiter.busy }]);
      p.metric('rmmscale_db_connections', 'gauge', 'Database-model connections in all.', [{ labels: base, value: this.dbLimiter.workers }]);
      p.metric('rmmscale_db_queue_depth', 'gauge', 'Queries waiting for a database connection.', [{ labels: base, value: this.dbLimiter.queued }]);
      p.metric('rmmscale_db_utilization', 'gauge', 'Busy share of database connection time over the last second.', [{ labels: base, value: this.lastDbUtilization }]);
      p.metric('rmmscale_db_rejected_total', 'counter', 'Queries refused because the database queue was full.', [{ labels: base, value: this.dbLimiter.rejected }]);
    }
    const h = this.hostLimited();
    p.metric('rmmscale_event_loop_delay_p99_seconds', 'gauge', 'Event-loop delay p99 over the last second.', [{ labels: base, value: h.eldP99Ms / 1000 }]);
    p.metric('rmmscale_host_cpu_ratio', 'gauge', 'Host CPU busy share over the last second (all cores).', [{ labels: base, value: h.hostCpu ?? NaN }]);
    p.metric('rmmscale_host_steal_ratio', 'gauge', 'Share of all cores\' time the hypervisor ran something else while this host had work, over the last second (steal).', [{ labels: base, value: h.hostSteal ?? NaN }]);
    p.metric('rmmscale_host_limited', 'gauge', '1 when the host (CPU or event loop), not the profile, limits this node.', [{ labels: base, value: h.limited ? 1 : 0 }]);
    const cpu = process.cpuUsage();
    p.metric('process_cpu_seconds_total', 'counter', 'CPU time of this node process.', [{ labels: base, value: (cpu.user + cpu.system) / 1e6 }]);
    p.metric('process_resident_memory_bytes', 'gauge', 'RSS of this node process.', [{ labels: base, value: process.memoryUsage.rss() }]);
    if (this.counters.size) p.metric('rmmscale_events_total', 'counter', 'Role events (loop runs, batches…).', [...this.counters].map(([event, value]) => ({ labels: { ...base, event }, value })));
    if (this.gauges.size) p.metric('rmmscale_role_gauge', 'gauge', 'Role gauges (tunnels open…).', [...this.gauges].map(([gauge, value]) => ({ labels: { ...base, gauge }, value })));
    return p.toString();
  }

  close(): void {
    clearInterval(this.sampleTimer);
    this.eld.disable();
  }
}
