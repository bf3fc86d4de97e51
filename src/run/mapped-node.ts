import { round } from '../core/units.js';
import { bucketIncrease, bucketQuantileUs, counterIncrease, mappedSecond, readMapped, unmatchedSignals, type MappedScrape, type MappingSignals, type SignalName } from '../metrics/mapped-scrape.js';
import type { NodeSecond, ScrapedWindow } from './result-types.js';

/**
 * One node of an external stack (`stack.nodes`), as its scrapes come in: each scrape read through
 * the node's mapping, each second's figures (counter rates, gauges, utilisation) for the timeline,
 * and per window the counters' and histogram buckets' increase between the scrapes at its two
 * edges. Scrapes are a second apart, so a window's edges are those of the scrapes nearest to it
 * (at most a second off); its latency quantiles are PromQL's histogram_quantile over the bucket
 * increase, as precise as the exporter's buckets are.
 */
export class MappedNodeSeries {
  private readonly history: Array<{ tSec: number; scrape: MappedScrape }> = [];
  /** The signals no answer so far had a series for (null until a first answer). */
  unmatched: SignalName[] | null = null;

  constructor(
    readonly signals: MappingSignals,
    readonly mapping: string,
  ) {}

  /** A scrape's text at `atMs` (tSec from the run's start); the second's figures, null for the first scrape. */
  push(text: string, atMs: number, tSec: number): NodeSecond | null {
    const cur = readMapped(text, this.signals, atMs);
    const prev = this.history[this.history.length - 1]?.scrape;
    this.history.push({ tSec, scrape: cur });
    // A counter with no series yet (no request served) is not a typo: only what no scrape ever matched is.
    const missing = unmatchedSignals(this.signals, cur);
    this.unmatched = this.unmatched === null ? missing : this.unmatched.filter((x) => missing.includes(x));
    if (!prev) return null;
    const s = mappedSecond(prev, cur);
    if (!s) return null;
    return {
      tSec,
      requestsPerSec: round(s.requestsPerSec ?? 0, 1),
      routes: {},
      errorsPerSec: round(s.errorsPerSec ?? 0, 1),
      inflight: s.busyWorkers ?? 0,
      busyWorkers: s.busyWorkers,
      queueDepth: s.queueDepth,
      utilization: s.utilization === null ? null : round(s.utilization, 3),
      dbUtilization: null,
      dbQueueDepth: null,
      eventLoopDelayP99Ms: 0,
      cpuCores: 0,
      hostCpu: null,
      hostLimited: false,
    };
  }

  /** The last scrape at or before tSec (else the first after it). */
  private at(tSec: number): MappedScrape | null {
    let found: MappedScrape | null = null;
    for (const h of this.history) {
      if (h.tSec <= tSec) found = h.scrape;
      else return found ?? h.scrape;
    }
    return found;
  }

  /** Requests, errors and latency between the scrapes nearest the window's edges (seconds from the run's start). */
  window(fromSec: number, toSec: number): ScrapedWindow {
    const a = this.at(fromSec);
    const b = this.at(toSec + 0.5);
    const out: ScrapedWindow = { mapping: this.mapping, requests: null, errors: null, latency: null };
    if (!a || !b || a === b) return out;
    const inc = (x: number | null, y: number | null): number | null => (x === null || y === null ? null : Math.round(counterIncrease(x, y)));
    out.requests = inc(a.requestsTotal, b.requestsTotal);
    out.errors = inc(a.errorsTotal, b.errorsTotal);
    if (b.bucketsUs) {
      const d = bucketIncrease(a.bucketsUs, b.bucketsUs);
      const count = d.length ? d[d.length - 1][1] : 0;
      const q = (p: number): number => bucketQuantileUs(d, p) ?? 0;
      if (count > 0) out.latency = { count: Math.round(count), p50Us: q(0.5), p90Us: q(0.9), p95Us: q(0.95), p99Us: q(0.99) };
    }
    return out;
  }
}
