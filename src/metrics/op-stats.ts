import { addEncoded, createLatencyHistogram, encodeHistogram, summarize, type LatencyHistogram, type LatencySummary } from './histogram.js';

/**
 * One operation's statistics (`checkin`, `heartbeat`, `ws-rtt`, `user-dashboard`…): the one shape
 * from the swarm's result (`ops`) to result.json (a window's `client.ops` and `background.ops`)
 * and the reports. Each is built by `opStats` from an `OpAccumulator`, the live form a recorder
 * keeps; between a swarm worker and its coordinator an operation travels as an `OpInterval`.
 */

/** Exact HDR histograms, base64 HdrHistogram V2 (either encoding: decodeHistogram reads both), µs. */
export interface OpHistograms {
  /** From the intended send time (coordinated omission corrected). */
  corrected: string;
  /** From the actual send time. */
  service: string;
}

export interface OpStats {
  /** Requests counted: those that ended (the swarm), or every intended send, dropped ones included (background traffic). */
  count: number;
  completed: number;
  failed: number;
  /** failed ÷ count. */
  errorRate: number;
  /** From the intended send time (coordinated omission corrected). */
  latency: LatencySummary;
  /** From the actual send time (what most tools report). */
  serviceTime: LatencySummary;
  /** Exact HDR histograms (compressed base64, µs). */
  histograms: OpHistograms;
}

/** One worker's interval of one operation, on its way to the coordinator (histograms in the uncompressed wire form). */
export type OpInterval = Pick<OpStats, 'completed' | 'failed' | 'histograms'>;

/** An operation's live figures: what a recorder adds to as requests end. */
export interface OpAccumulator {
  corrected: LatencyHistogram;
  service: LatencyHistogram;
  completed: number;
  failed: number;
}

export function newOpAccumulator(): OpAccumulator {
  return { corrected: createLatencyHistogram(), service: createLatencyHistogram(), completed: 0, failed: 0 };
}

/** The statistics of what an accumulator holds; `count` defaults to the requests that ended. */
export function opStats(acc: OpAccumulator, count = acc.completed + acc.failed): OpStats {
  return {
    count,
    completed: acc.completed,
    failed: acc.failed,
    errorRate: count > 0 ? acc.failed / count : 0,
    latency: summarize(acc.corrected),
    serviceTime: summarize(acc.service),
    histograms: { corrected: encodeHistogram(acc.corrected), service: encodeHistogram(acc.service) },
  };
}

/** What a latency table shows for a row: one operation's OpStats, or every operation's (a window's ClientStats). */
export type OpStatsRow = Pick<OpStats, 'count' | 'errorRate' | 'latency'>;

/**
 * Several processes' statistics of one operation as one: counts summed, histograms added bucket for
 * bucket (exact: the merged percentiles are those of one histogram holding every request).
 */
export function mergeOpStats(parts: readonly OpStats[]): OpStats {
  const acc = newOpAccumulator();
  let count = 0;
  for (const p of parts) {
    addEncoded(acc.corrected, p.histograms.corrected);
    addEncoded(acc.service, p.histograms.service);
    acc.completed += p.completed;
    acc.failed += p.failed;
    count += p.count;
  }
  return opStats(acc, count);
}
