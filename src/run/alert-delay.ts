import type { AlertTiming } from '../stack/analytics/analytics-store.js';
import { createLatencyHistogram, recordedCounts, recordUs, type LatencyHistogram } from '../metrics/histogram.js';
import { round } from '../core/units.js';
import { boundVerdict, p50RatioCi, type BoundVerdict, type RatioCi, type SampleBlock } from '../analysis/ratio-ci.js';

/**
 * Alert delay (the analytics plane, seed 004: "alerts may delay"): for each alert the analytics
 * node raised, its creation time minus the agent's send time of the frame that raised it. The
 * agent and the stack run on one host (a stack rmmscale starts), so both are the same clock.
 */
export interface AlertDelaySummary {
  alerts: number;
  /** Nearest-rank percentiles of the delays, ms (exact: every alert is kept). */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** A time span, epoch ms, start included, end excluded. */
export interface Span {
  fromMs: number;
  toMs: number;
}

/** The nearest-rank percentile of ascending `sorted` (q in 0..100). */
function rank(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1))]!;
}

/**
 * The delays of the alerts whose frame was sent inside `within` (every alert when absent) and
 * outside every span of `without`; null when no alert qualifies. Delays below 0 (a clock step) count as 0.
 */
export function alertDelay(alerts: readonly AlertTiming[], within?: Span, without: readonly Span[] = []): AlertDelaySummary | null {
  const delays: number[] = [];
  for (const [, sentMs, createdMs] of alerts) {
    if (within && (sentMs < within.fromMs || sentMs >= within.toMs)) continue;
    if (without.some((s) => sentMs >= s.fromMs && sentMs < s.toMs)) continue;
    delays.push(Math.max(0, createdMs - sentMs));
  }
  if (delays.length === 0) return null;
  delays.sort((a, b) => a - b);
  return { alerts: delays.length, p50Ms: round(rank(delays, 50), 1), p99Ms: round(rank(delays, 99), 1), maxMs: round(delays[delays.length - 1]!, 1) };
}

/** The alerts of one second, by the second their frame was sent. */
export interface AlertDelaySecond {
  /** Seconds from the run's start to the start of that second. */
  tSec: number;
  alerts: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * The alert delay per second of the run, by the agent's send time of each alert's frame (so a
 * fault's effect lands at the time the frames were sent, as on the other timelines): only seconds
 * with alerts, in order. Nearest-rank percentiles, as alertDelay.
 */
export function alertDelayPerSecond(alerts: readonly AlertTiming[], runStartMs: number): AlertDelaySecond[] {
  const bySec = new Map<number, number[]>();
  for (const [, sentMs, createdMs] of alerts) {
    const t = Math.floor((sentMs - runStartMs) / 1000);
    if (t < 0) continue;
    let d = bySec.get(t);
    if (!d) bySec.set(t, (d = []));
    d.push(Math.max(0, createdMs - sentMs));
  }
  return [...bySec]
    .sort((a, b) => a[0] - b[0])
    .map(([tSec, d]) => {
      d.sort((a, b) => a - b);
      return { tSec, alerts: d.length, p50Ms: round(rank(d, 50), 1), p99Ms: round(rank(d, 99), 1) };
    });
}

/** One operation's latency during a fault against the clean part of the run. */
export interface LatencyVsClean {
  op: string;
  cleanCount: number;
  faultCount: number;
  cleanP50Ms: number | null;
  faultP50Ms: number | null;
  cleanP99Ms: number | null;
  faultP99Ms: number | null;
  /** fault ÷ clean (null when either side has no sample). */
  p50Ratio: number | null;
  p99Ratio: number | null;
  /**
   * The 95% interval of p50Ratio, a moving-block bootstrap over the seconds of each side
   * (src/analysis/ratio-ci.ts); null with fewer than 5 seconds or 20 samples on a side. Absent in older results.
   */
  p50RatioCi?: RatioCi | null;
  /** Whether the fault kept the op's p50 within 10% of clean: held (interval ≤ 1.10), broken (interval > 1.10), else unresolved. Absent in older results. */
  within10pct?: BoundVerdict;
}

/**
 * A percentile in ms, unrounded (the histogram's own precision: 3 significant digits, so 1 µs at a
 * tunnel ping's 0.1 ms). Rounded only where it is written: a ratio of p50s rounded to 0.01 ms first
 * moved by up to 8% at 0.13 ms (0.26 / 0.14 = 1.86 for a true 0.255 / 0.145 = 1.76).
 */
const pctRaw = (h: LatencyHistogram | undefined, q: number): number | null => (h && h.totalCount > 0 ? h.getValueAtPercentile(q) / 1000 : null);
const ms = (v: number | null): number | null => (v === null ? null : round(v, 3));
const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b <= 0 ? null : round(a / b, 3));

/**
 * Each operation's samples second by second, as blocks for the p50 ratio's interval: a second of
 * the swarm's (its histogram), or the operator requests that ended in one wall-clock second.
 */
export class SecondBlocks {
  private readonly blocks = new Map<string, SampleBlock[]>();
  /** Operator requests: op → epoch second → latencies (µs). */
  private readonly samples = new Map<string, Map<number, number[]>>();

  /** One second of `op` (a histogram of that second only). */
  addSecond(op: string, h: LatencyHistogram): void {
    if (h.totalCount === 0) return;
    let list = this.blocks.get(op);
    if (!list) this.blocks.set(op, (list = []));
    list.push(recordedCounts(h));
  }

  /** One request of `op` that ended at `endEpochMs`. */
  addSample(op: string, endEpochMs: number, latencyUs: number): void {
    let bySecond = this.samples.get(op);
    if (!bySecond) this.samples.set(op, (bySecond = new Map()));
    const second = Math.floor(endEpochMs / 1000);
    let list = bySecond.get(second);
    if (!list) bySecond.set(second, (list = []));
    list.push(latencyUs);
  }

  /** `op`'s blocks: its swarm seconds, then its requests' seconds (each through a histogram, to the same bucket values). */
  of(op: string): SampleBlock[] {
    const out = [...(this.blocks.get(op) ?? [])];
    const bySecond = this.samples.get(op);
    if (bySecond) {
      const h = createLatencyHistogram();
      for (const values of bySecond.values()) {
        h.reset();
        for (const v of values) recordUs(h, v);
        out.push(recordedCounts(h));
      }
    }
    return out;
  }
}

/**
 * Each operation seen on either side, during against clean, by name; with each side's seconds,
 * the p50 ratio's interval and whether it is within 10%.
 */
export function compareLatency(
  clean: ReadonlyMap<string, LatencyHistogram>,
  during: ReadonlyMap<string, LatencyHistogram>,
  cleanSeconds?: SecondBlocks,
  duringSeconds?: SecondBlocks,
): LatencyVsClean[] {
  const ops = [...new Set([...clean.keys(), ...during.keys()])].sort();
  return ops.map((op) => {
    const c = clean.get(op);
    const d = during.get(op);
    const cleanP50 = pctRaw(c, 50);
    const faultP50 = pctRaw(d, 50);
    const cleanP99 = pctRaw(c, 99);
    const faultP99 = pctRaw(d, 99);
    const ci = cleanSeconds && duringSeconds ? p50RatioCi(cleanSeconds.of(op), duringSeconds.of(op), op) : null;
    return {
      op,
      cleanCount: c?.totalCount ?? 0,
      faultCount: d?.totalCount ?? 0,
      cleanP50Ms: ms(cleanP50),
      faultP50Ms: ms(faultP50),
      cleanP99Ms: ms(cleanP99),
      faultP99Ms: ms(faultP99),
      p50Ratio: ratio(faultP50, cleanP50),
      p99Ratio: ratio(faultP99, cleanP99),
      p50RatioCi: ci,
      within10pct: boundVerdict(ci),
    };
  });
}

/** Add `h` into `into[op]` (created on first use). */
export function addOp(into: Map<string, LatencyHistogram>, op: string, h: LatencyHistogram): void {
  let t = into.get(op);
  if (!t) into.set(op, (t = createLatencyHistogram()));
  t.add(h);
}

/** Record one sample (µs) into `into[op]`. */
export function recordOp(into: Map<string, LatencyHistogram>, op: string, valueUs: number): void {
  let t = into.get(op);
  if (!t) into.set(op, (t = createLatencyHistogram()));
  recordUs(t, valueUs);
}
