import { Agent, request } from 'undici';
import type { NodeHdrSnapshot } from '../core/protocol.js';
import { round } from '../core/units.js';
import { decodeHistogram, encodeHistogram, summarize, type LatencyHistogram } from '../metrics/histogram.js';
import { promSamples } from '../metrics/prometheus.js';
import { parseHaproxyMetrics, type HaproxyScrape } from '../stack/proxy/haproxy-metrics.js';
import type { MappingSignals } from '../metrics/mapped-scrape.js';
import { MappedNodeSeries } from './mapped-node.js';
import type { NodeSecond, RouteStats, TierName } from './result-types.js';

/**
 * Every second, from every node: its /healthz (in-flight, busy workers, queue depth, utilisation,
 * the database model's gauges, event-loop delay, host CPU) and its /metrics counters (requests by
 * route and status, process CPU), turned into per-second rates. At window edges, the node's exact
 * server-side histograms (/admin/hdr), so a window's histogram is end − start, never an estimate.
 *
 * An external proxy (HAProxy) has no /healthz or /admin/hdr: its rate comes from its exporter. A
 * node of an external stack (`stack.nodes`) is only scraped at its /metrics, read through its
 * mapping (mapped-node.ts).
 * A node that does not answer in time records nothing for that second (a gap, not a zero).
 */

export interface CollectedNode {
  name: string;
  role: string;
  tier: TierName;
  url: string;
  metricsUrl: string;
  /** A node of an external stack (`stack.nodes`): its /metrics read through this mapping, nothing else asked. */
  mapped?: { signals: MappingSignals; mapping: string };
}

interface Health {
  inflight?: number;
  busyWorkers?: number | null;
  queueDepth?: number | null;
  utilization?: number | null;
  db?: { busyConnections: number; connections: number; queueDepth: number; utilization: number } | null;
  eventLoopDelayP99Ms?: number;
  hostCpu?: number | null;
  hostLimited?: boolean;
}

interface Counters {
  atMs: number;
  /** route → status → count */
  requests: Map<string, Map<number, number>>;
  cpuSec: number;
  /** Tunnels the node accepted since it started (a relay's `tunnel-opened` event count); null for other roles. */
  tunnelsOpened: number | null;
}

/** The counters the run needs from a node's Prometheus text. */
export function parseNodeMetrics(text: string, atMs: number): Counters {
  const requests = new Map<string, Map<number, number>>();
  let cpuSec = 0;
  let tunnelsOpened: number | null = null;
  for (const s of promSamples(text)) {
    if (s.name === 'rmmscale_requests_total') {
      const route = s.labels.route ?? '';
      let byStatus = requests.get(route);
      if (!byStatus) requests.set(route, (byStatus = new Map()));
      byStatus.set(Number(s.labels.status), s.value);
    } else if (s.name === 'process_cpu_seconds_total') cpuSec = s.value;
    else if (s.name === 'rmmscale_events_total' && s.labels.event === 'tunnel-opened') tunnelsOpened = s.value;
  }
  return { atMs, requests, cpuSec, tunnelsOpened };
}

function total(c: Counters, errorsOnly: boolean): number {
  let n = 0;
  for (const byStatus of c.requests.values()) for (const [status, count] of byStatus) if (!errorsOnly || status >= 500) n += count;
  return n;
}

function routeTotals(c: Counters): Map<string, number> {
  const out = new Map<string, number>();
  for (const [route, byStatus] of c.requests) out.set(route, [...byStatus.values()].reduce((a, b) => a + b, 0));
  return out;
}

/** Rounded for the result file: 3 decimals for ratios, 1 for rates. */

/**
 * A relay's accepted tunnels per second since the last scrape. A restarted relay counts from 0
 * again: a count below the last one is all new (as Prometheus reads a counter reset).
 */
function tunnelOpens(c: Counters, prev: Counters, dt: number): { tunnelOpensPerSec?: number } {
  if (c.tunnelsOpened === null && prev.tunnelsOpened === null) return {};
  const now = c.tunnelsOpened ?? 0;
  const before = prev.tunnelsOpened ?? 0;
  return { tunnelOpensPerSec: round((now >= before ? now - before : now) / dt, 1) };
}

/** `spread`: each node at its own phase of the second; `aligned`: all at one instant. */
export type ScrapeSchedule = 'spread' | 'aligned';

/** When in each second node i of n is scraped, ms: evenly spread, the first at 0. */
export function scrapePhaseMs(i: number, n: number): number {
  return Math.round((i * 1000) / Math.max(1, n));
}

export class NodeCollector {
  /** Every second of the run, per node. */
  readonly timeline = new Map<string, NodeSecond[]>();
  private readonly last = new Map<string, Counters>();
  private readonly lastHaproxy = new Map<string, HaproxyScrape>();
  /** The external stack's nodes (`stack.nodes`), by name. */
  readonly mapped = new Map<string, MappedNodeSeries>();
  private timers: NodeJS.Timeout[] = [];
  private readonly ticking = new Set<string>();
  private readonly dispatcher = new Agent({ connections: 4, headersTimeout: 900, bodyTimeout: 900, connect: { rejectUnauthorized: false } });

  /** `adminKey`: the stack's admin key, which /admin/hdr asks for (`authorization: Bearer`). */
  constructor(
    readonly nodes: CollectedNode[],
    private readonly runStartMs: number,
    private readonly adminKey?: string,
  ) {
    for (const n of nodes) {
      this.timeline.set(n.name, []);
      if (n.mapped) this.mapped.set(n.name, new MappedNodeSeries(n.mapped.signals, n.mapped.mapping));
    }
  }

  /** What the run should say about the external nodes' scrapes: one that never answered, a signal that no scrape matched. */
  scrapeWarnings(): string[] {
    const out: string[] = [];
    for (const n of this.nodes) {
      const m = this.mapped.get(n.name);
      if (!m) continue;
      if (m.unmatched === null) out.push(`node ${n.name}: ${n.metricsUrl} never answered with status 200: nothing was measured on it`);
      else if (m.unmatched.length > 0) out.push(`node ${n.name}: no series in ${n.metricsUrl} matched the mapping's ${m.unmatched.join(', ')} (${n.mapped!.mapping})`);
    }
    return out;
  }

  /**
   * Scrape each node once a second, at its own phase: node i of n at i/n of the second. Scraped all
   * at one instant, six or seven node processes and this one woke together on two cores every
   * second, and the swarm's sends due in the next few milliseconds went out late (a third of
   * its sends more than 2 ms late fell within 25 ms of that instant; docs/benchmarks.md).
   * `aligned` keeps the old single instant, for the benchmark that compares the two.
   */
  start(schedule: ScrapeSchedule = 'spread'): void {
    if (this.timers.length > 0) return;
    const n = this.nodes.length;
    this.nodes.forEach((node, i) => {
      const phaseMs = schedule === 'spread' ? scrapePhaseMs(i, n) : 0;
      this.timers.push(
        setTimeout(() => {
          void this.tick(node);
          this.timers.push(setInterval(() => void this.tick(node), 1000));
        }, phaseMs),
      );
    });
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    await this.dispatcher.close();
  }

  private isExternal(n: CollectedNode): boolean {
    return n.mapped !== undefined || n.metricsUrl !== `${n.url}/metrics`;
  }

  private async get(url: string): Promise<string | null> {
    try {
      const headers = this.adminKey ? { authorization: `Bearer ${this.adminKey}` } : undefined;
      const r = await request(url, { dispatcher: this.dispatcher, headers });
      const text = await r.body.text();
      return r.statusCode === 200 ? text : null;
    } catch {
      return null;
    }
  }

  private async tick(n: CollectedNode): Promise<void> {
    if (this.ticking.has(n.name)) return; // a slow scrape skips a second rather than piling up
    this.ticking.add(n.name);
    try {
      await this.scrape(n);
    } finally {
      this.ticking.delete(n.name);
    }
  }

  private async scrape(n: CollectedNode): Promise<void> {
    const now = Date.now();
    const tSec = round((now - this.runStartMs) / 1000, 1);
    const mapped = this.mapped.get(n.name);
    if (mapped) {
      const text = await this.get(n.metricsUrl);
      const second = text === null ? null : mapped.push(text, now, tSec);
      if (second) this.timeline.get(n.name)!.push(second);
      return;
    }
    if (this.isExternal(n)) {
      const text = await this.get(n.metricsUrl);
      if (text === null) return;
      const prev = this.lastHaproxy.get(n.name);
      const s = parseHaproxyMetrics(text, now, prev);
      this.lastHaproxy.set(n.name, s);
      if (!prev) return;
      const dt = (now - prev.atMs) / 1000;
      const sum = (x: HaproxyScrape, cls?: string): number => x.servers.reduce((a, v) => a + (cls ? (v.responsesByClass[cls] ?? 0) : v.requests), 0);
      const routes: Record<string, number> = {};
      for (const v of s.servers) if (v.ratePerSec !== null && v.ratePerSec > 0) routes[`${v.backend}/${v.server}`] = round(v.ratePerSec, 1);
      this.timeline.get(n.name)!.push({
        tSec,
        requestsPerSec: round((sum(s) - sum(prev)) / dt, 1),
        routes,
        errorsPerSec: round((sum(s, '5xx') - sum(prev, '5xx')) / dt, 1),
        inflight: 0,
        busyWorkers: null,
        queueDepth: null,
        utilization: null,
        dbUtilization: null,
        dbQueueDepth: null,
        eventLoopDelayP99Ms: 0,
        cpuCores: 0,
        hostCpu: null,
        hostLimited: false,
      });
      return;
    }
    const [healthText, metricsText] = await Promise.all([this.get(`${n.url}/healthz`), this.get(n.metricsUrl)]);
    if (healthText === null || metricsText === null) return;
    let h: Health;
    try {
      h = JSON.parse(healthText) as Health;
    } catch {
      return;
    }
    const c = parseNodeMetrics(metricsText, now);
    const prev = this.last.get(n.name);
    this.last.set(n.name, c);
    if (!prev) return;
    const dt = (c.atMs - prev.atMs) / 1000;
    if (dt <= 0) return;
    const routes: Record<string, number> = {};
    const before = routeTotals(prev);
    for (const [route, count] of routeTotals(c)) {
      const d = count - (before.get(route) ?? 0);
      if (d > 0) routes[route] = round(d / dt, 1);
    }
    this.timeline.get(n.name)!.push({
      tSec,
      requestsPerSec: round((total(c, false) - total(prev, false)) / dt, 1),
      routes,
      errorsPerSec: round((total(c, true) - total(prev, true)) / dt, 1),
      inflight: h.inflight ?? 0,
      busyWorkers: h.busyWorkers ?? null,
      queueDepth: h.queueDepth ?? null,
      utilization: h.utilization === null || h.utilization === undefined ? null : round(h.utilization, 3),
      dbUtilization: h.db ? round(h.db.utilization, 3) : null,
      dbQueueDepth: h.db ? h.db.queueDepth : null,
      eventLoopDelayP99Ms: round(h.eventLoopDelayP99Ms ?? 0, 1),
      cpuCores: round((c.cpuSec - prev.cpuSec) / dt, 3),
      hostCpu: h.hostCpu === null || h.hostCpu === undefined ? null : round(h.hostCpu, 3),
      hostLimited: h.hostLimited ?? false,
      ...tunnelOpens(c, prev, dt),
    });
  }

  /** Request counters of every in-process node now. */
  async counters(): Promise<CounterSnapshot> {
    const out: CounterSnapshot = new Map();
    await Promise.all(
      this.nodes
        .filter((n) => !this.isExternal(n))
        .map(async (n) => {
          const text = await this.get(n.metricsUrl);
          if (text !== null) out.set(n.name, parseNodeMetrics(text, Date.now()).requests);
        }),
    );
    return out;
  }

  /** Exact histograms of every node now (cumulative since the node started). */
  async histograms(): Promise<Map<string, NodeHdrSnapshot>> {
    const out = new Map<string, NodeHdrSnapshot>();
    await Promise.all(
      this.nodes
        .filter((n) => !this.isExternal(n))
        .map(async (n) => {
          const text = await this.get(`${n.url}/admin/hdr`);
          if (text === null) return;
          try {
            out.set(n.name, JSON.parse(text) as NodeHdrSnapshot);
          } catch {
            // a node that answers garbage has no histogram for this window
          }
        }),
    );
    return out;
  }
}

/** end − start for one route: the requests of the window alone. */
export function windowHistogram(start: NodeHdrSnapshot | undefined, end: NodeHdrSnapshot, key: string): LatencyHistogram | null {
  const e = end.histograms[key];
  if (!e) return null;
  const h = decodeHistogram(e);
  const s = start?.histograms[key];
  if (s) h.subtract(decodeHistogram(s));
  return h;
}

/** Counters of every in-process node now: route → status → count, for a window's error counts. */
export type CounterSnapshot = Map<string, Map<string, Map<number, number>>>;

/** Per-route server-side stats of one node over a window: histograms end − start, 5xx from counters. */
export function routeStatsForWindow(
  start: NodeHdrSnapshot | undefined,
  end: NodeHdrSnapshot,
  countersStart: Map<string, Map<number, number>> | undefined,
  countersEnd: Map<string, Map<number, number>> | undefined,
  windowSec: number,
): Record<string, RouteStats> {
  const errorsOf = (c: Map<string, Map<number, number>> | undefined, route: string): number => {
    let n = 0;
    for (const [status, count] of c?.get(route) ?? []) if (status >= 500) n += count;
    return n;
  };
  const out: Record<string, RouteStats> = {};
  for (const key of Object.keys(end.histograms)) {
    if (key.startsWith('op:')) continue;
    const h = windowHistogram(start, end, key);
    if (!h || h.totalCount === 0) continue;
    const errors = Math.max(0, errorsOf(countersEnd, key) - errorsOf(countersStart, key));
    out[key] = { count: h.totalCount, errors, ratePerSec: round(h.totalCount / windowSec, 1), latency: summarize(h), histogram: encodeHistogram(h) };
  }
  return out;
}
