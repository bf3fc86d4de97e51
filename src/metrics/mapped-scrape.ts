import { promSamples } from './prometheus.js';
import { labelsMatch, selects, type Selector } from './prom-selector.js';

/**
 * What a mapping file (src/scenario/mapping.ts) says a node's /metrics series mean, and reading one
 * scrape through it. Every signal is optional; a selector that matches several series is summed
 * (a gauge of busy workers per process, a counter per route), except a utilisation gauge, which
 * takes its busiest series.
 *
 *   requests     counter   → requests per second (rate between scrapes)
 *   errors       counter   → errors per second
 *   busyWorkers  gauge     → busy workers now
 *   workers      gauge or a number → the worker count; busy ÷ workers is the utilisation
 *   utilization  gauge 0..1, or a counter of busy seconds ÷ (seconds × N), N a number or the
 *                number of distinct values of a label (node_cpu_seconds_total{mode!="idle"} over cpu)
 *   queueDepth   gauge     → requests waiting now
 *   latency      histogram → its `_bucket{le=…}` series, per window as quantiles
 */
export interface MappingSignals {
  requests: Selector | null;
  errors: Selector | null;
  busyWorkers: Selector | null;
  workers: Selector | number | null;
  utilization: { gauge: Selector } | { busySeconds: Selector; over: string | number } | null;
  queueDepth: Selector | null;
  /** `unitSec`: what one unit of the histogram's `le` is in seconds (1 for seconds, 0.001 for ms). */
  latency: { histogram: Selector; unitSec: number } | null;
}

/** One scrape read through a mapping: cumulative counters as they are, gauges as they are. Null: no series matched. */
export interface MappedScrape {
  atMs: number;
  requestsTotal: number | null;
  errorsTotal: number | null;
  busyWorkers: number | null;
  workers: number | null;
  utilizationGauge: number | null;
  busySecondsTotal: number | null;
  /** The N busy seconds are divided by (a number, or the distinct values of the label seen). */
  busyOver: number | null;
  queueDepth: number | null;
  /** Cumulative histogram buckets summed over the matched series: upper bound in µs (Infinity for +Inf) → count. */
  bucketsUs: Map<number, number> | null;
}

/** The signal names, for "matched no series" warnings. */
export type SignalName = 'requests' | 'errors' | 'busyWorkers' | 'workers' | 'utilization' | 'queueDepth' | 'latency';

const add = (a: number | null, v: number): number => (a ?? 0) + v;

export function readMapped(text: string, m: MappingSignals, atMs: number): MappedScrape {
  const out: MappedScrape = {
    atMs,
    requestsTotal: null,
    // Exporters often show an error counter only once it has counted one: no series is no error yet.
    errorsTotal: m.errors ? 0 : null,
    busyWorkers: null,
    workers: typeof m.workers === 'number' ? m.workers : null,
    utilizationGauge: null,
    busySecondsTotal: null,
    busyOver: m.utilization && 'busySeconds' in m.utilization && typeof m.utilization.over === 'number' ? m.utilization.over : null,
    queueDepth: null,
    bucketsUs: null,
  };
  const overValues = new Set<string>();
  const overLabel = m.utilization && 'busySeconds' in m.utilization && typeof m.utilization.over === 'string' ? m.utilization.over : null;
  const bucketName = m.latency ? `${m.latency.histogram.name}_bucket` : null;
  for (const s of promSamples(text)) {
    if (!Number.isFinite(s.value)) continue;
    if (m.requests && selects(m.requests, s)) out.requestsTotal = add(out.requestsTotal, s.value);
    if (m.errors && selects(m.errors, s)) out.errorsTotal = add(out.errorsTotal, s.value);
    if (m.busyWorkers && selects(m.busyWorkers, s)) out.busyWorkers = add(out.busyWorkers, s.value);
    if (m.workers && typeof m.workers !== 'number' && selects(m.workers, s)) out.workers = add(out.workers, s.value);
    if (m.queueDepth && selects(m.queueDepth, s)) out.queueDepth = add(out.queueDepth, s.value);
    if (m.utilization && 'gauge' in m.utilization && selects(m.utilization.gauge, s)) out.utilizationGauge = Math.max(out.utilizationGauge ?? 0, s.value);
    if (m.utilization && 'busySeconds' in m.utilization && selects(m.utilization.busySeconds, s)) {
      out.busySecondsTotal = add(out.busySecondsTotal, s.value);
      if (overLabel) overValues.add(s.labels[overLabel] ?? '');
    }
    if (m.latency && s.name === bucketName && s.labels.le !== undefined && labelsMatch(m.latency.histogram, s.labels)) {
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      if (Number.isNaN(le)) continue;
      const us = le === Infinity ? Infinity : Math.round(le * m.latency.unitSec * 1e6);
      out.bucketsUs ??= new Map();
      out.bucketsUs.set(us, (out.bucketsUs.get(us) ?? 0) + s.value);
    }
  }
  if (overLabel && overValues.size > 0) out.busyOver = overValues.size;
  return out;
}

/** The signals a mapping names that this scrape found no series for (`errors` never: no series is no error yet). */
export function unmatchedSignals(m: MappingSignals, s: MappedScrape): SignalName[] {
  const out: SignalName[] = [];
  if (m.requests && s.requestsTotal === null) out.push('requests');
  if (m.busyWorkers && s.busyWorkers === null) out.push('busyWorkers');
  if (m.workers !== null && s.workers === null) out.push('workers');
  if (m.utilization && s.utilizationGauge === null && s.busySecondsTotal === null) out.push('utilization');
  if (m.queueDepth && s.queueDepth === null) out.push('queueDepth');
  if (m.latency && s.bucketsUs === null) out.push('latency');
  return out;
}

/** A counter's increase from `a` to `b`: a counter that went down was reset, and counts from 0 (as PromQL's rate does). */
export function counterIncrease(a: number, b: number): number {
  return b >= a ? b - a : b;
}

/** One second's figures between two scrapes of the same node. */
export interface MappedSecond {
  requestsPerSec: number | null;
  errorsPerSec: number | null;
  busyWorkers: number | null;
  queueDepth: number | null;
  /** The gauge, else busy seconds ÷ (seconds × N), else busy ÷ workers; null when the mapping gives none. */
  utilization: number | null;
}

export function mappedSecond(prev: MappedScrape, cur: MappedScrape): MappedSecond | null {
  const dt = (cur.atMs - prev.atMs) / 1000;
  if (dt <= 0) return null;
  const rate = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : counterIncrease(a, b) / dt);
  let utilization: number | null = cur.utilizationGauge;
  if (utilization === null && cur.busySecondsTotal !== null && prev.busySecondsTotal !== null && cur.busyOver) {
    utilization = counterIncrease(prev.busySecondsTotal, cur.busySecondsTotal) / dt / cur.busyOver;
  }
  if (utilization === null && cur.busyWorkers !== null && cur.workers) utilization = cur.busyWorkers / cur.workers;
  return {
    requestsPerSec: rate(prev.requestsTotal, cur.requestsTotal),
    errorsPerSec: rate(prev.errorsTotal, cur.errorsTotal),
    busyWorkers: cur.busyWorkers,
    queueDepth: cur.queueDepth,
    utilization,
  };
}

/** Bucket counts of `end` minus `start` (a bucket that went down: reset, counted from 0), sorted by bound. */
export function bucketIncrease(start: Map<number, number> | null, end: Map<number, number>): Array<[number, number]> {
  return [...end.entries()].map(([le, n]): [number, number] => [le, counterIncrease(start?.get(le) ?? 0, n)]).sort((a, b) => a[0] - b[0]);
}

/**
 * The q-quantile of cumulative buckets ([upper bound µs, count ≤ it], sorted), as PromQL's
 * histogram_quantile computes it: the bucket where the rank q × total falls, interpolated linearly
 * between its lower and upper bound (the first bucket's lower bound is 0). A rank in the +Inf
 * bucket returns the highest finite bound. Null without observations.
 */
export function bucketQuantileUs(buckets: ReadonlyArray<readonly [number, number]>, q: number): number | null {
  if (buckets.length === 0) return null;
  const total = buckets[buckets.length - 1][1];
  if (!(total > 0)) return null;
  const rank = q * total;
  let lowerUs = 0;
  let lowerCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return lowerUs;
      if (count === lowerCount) return le;
      return Math.round(lowerUs + ((le - lowerUs) * (rank - lowerCount)) / (count - lowerCount));
    }
    lowerUs = le === Infinity ? lowerUs : le;
    lowerCount = count;
  }
  return lowerUs;
}
