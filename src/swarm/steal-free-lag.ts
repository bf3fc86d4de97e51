import { createLatencyHistogram, summarize, type LatencyHistogram, type LatencySummary } from '../metrics/histogram.js';
import { HOST_STEAL_WARN } from './result.js';

/** Scheduling lag over only the seconds the hypervisor left alone. */
export interface StealFreeLag {
  /** Measured seconds whose steal stayed at or under HOST_STEAL_WARN (1%)… */
  seconds: number;
  /** …of this many measured seconds with a steal sample. */
  ofSeconds: number;
  lag: LatencySummary;
}

/**
 * Adds each measured second's lag histogram to a second accumulator when that second's host steal
 * was at or under 1%. Steal freezes the generator and the target alike, so the seconds it hit
 * measure the neighbours; the rest measure the generator. The run's lag is still judged on every
 * second: this is the figure beside it, not instead of it.
 */
export class StealFreeLagAccumulator {
  private readonly hist: LatencyHistogram = createLatencyHistogram();
  private quiet = 0;
  private sampled = 0;

  /** One measured second: its lag histogram and its steal share (null: the host does not report it). */
  add(secondLag: LatencyHistogram, steal: number | null): void {
    if (steal === null) return;
    this.sampled++;
    if (steal > HOST_STEAL_WARN) return;
    this.quiet++;
    this.hist.add(secondLag);
  }

  /** null where no second had a steal sample (the host does not report steal). */
  result(): StealFreeLag | null {
    if (this.sampled === 0) return null;
    return { seconds: this.quiet, ofSeconds: this.sampled, lag: summarize(this.hist) };
  }
}
