import { Rng } from '../core/random.js';
import { round } from '../core/units.js';

/**
 * Is an operation's median latency during a fault within 10% of its clean median? One ratio of two
 * medians cannot say: with a few hundred samples of a skewed latency (an exponential's median has a
 * relative standard error of 1.44 / √n, 13% at n = 130) a ratio of 1.11 is as likely noise as
 * cost. This gives the ratio a 95% confidence interval and decides from it.
 *
 * The interval is a block bootstrap: each side is a list of blocks (one second of one operation's
 * samples), resampled with replacement (as many blocks as the side has), the medians of the two
 * resamples divided, 2,000 times; the interval is the 2.5th and 97.5th percentile of those ratios.
 * Seconds, not samples, are resampled so that what hits every sample of a second at once (a GC
 * pause, a stalled event loop) counts once per second, not as many independent draws. Drift slower
 * than a second (a neighbour busy for 20 s) is not covered: that is what control runs are for.
 *
 * The medians are nearest-rank over the blocks' values (the HDR histograms' bucket values), so
 * on the original blocks they are the histograms' own p50. Seeded (the caller's seed string, e.g.
 * the operation's name), so the same samples give the same interval on every run and host.
 */

/** One block of samples, values ascending (µs) with their counts. */
export interface SampleBlock {
  valuesUs: readonly number[];
  counts: readonly number[];
}

export interface RatioCi {
  /** The confidence level (0.95). */
  level: number;
  low: number;
  high: number;
  /** Bootstrap resamples drawn. */
  replicates: number;
  /** Blocks (seconds with samples) on each side. */
  cleanBlocks: number;
  faultBlocks: number;
}

/** held: the interval lies at or below the bound; broken: above it; unresolved: it straddles it (or too few samples). */
export type BoundVerdict = 'held' | 'broken' | 'unresolved';

export const CI_LEVEL = 0.95;
export const CI_REPLICATES = 2000;
/** Fewer blocks, or fewer samples, on either side: no interval (unresolved). */
export const CI_MIN_BLOCKS = 5;
export const CI_MIN_SAMPLES = 20;
/** "Within 10%": the fault's median at most 1.10 × the clean one. */
export const WITHIN_10PCT = 1.1;

interface IndexedBlock {
  idx: Int32Array;
  counts: Float64Array;
}

/** The blocks with samples, their values replaced by indexes into `values` (ascending, distinct). */
function indexBlocks(blocks: readonly SampleBlock[], indexOf: ReadonlyMap<number, number>): IndexedBlock[] {
  const out: IndexedBlock[] = [];
  for (const b of blocks) {
    const idx = new Int32Array(b.valuesUs.length);
    const counts = new Float64Array(b.valuesUs.length);
    let total = 0;
    for (let j = 0; j < b.valuesUs.length; j++) {
      idx[j] = indexOf.get(b.valuesUs[j]!)!;
      counts[j] = b.counts[j]!;
      total += b.counts[j]!;
    }
    if (total > 0) out.push({ idx, counts });
  }
  return out;
}

const totalOf = (blocks: readonly SampleBlock[]): number => blocks.reduce((s, b) => s + b.counts.reduce((a, n) => a + n, 0), 0);

/** The nearest-rank median (HDR's rule: the first value whose cumulative count reaches ⌈total / 2⌉) of as many blocks as there are, drawn by `draw` (with replacement). */
function resampledMedian(blocks: readonly IndexedBlock[], dense: Float64Array, values: Float64Array, draw: () => number): number {
  dense.fill(0);
  let total = 0;
  let lo = dense.length;
  let hi = -1;
  for (let k = 0; k < blocks.length; k++) {
    const b = blocks[draw()]!;
    for (let j = 0; j < b.idx.length; j++) {
      const i = b.idx[j]!;
      dense[i]! += b.counts[j]!;
      total += b.counts[j]!;
      if (i < lo) lo = i;
      if (i > hi) hi = i;
    }
  }
  const target = Math.max(1, Math.ceil(total / 2));
  let acc = 0;
  for (let i = lo; i <= hi; i++) {
    acc += dense[i]!;
    if (acc >= target) return values[i]!;
  }
  return values[hi]!;
}

/**
 * The 95% block-bootstrap interval of median(fault) ÷ median(clean); null when either side has
 * fewer than CI_MIN_BLOCKS blocks with samples or CI_MIN_SAMPLES samples.
 */
export function p50RatioCi(clean: readonly SampleBlock[], fault: readonly SampleBlock[], seed: string, replicates = CI_REPLICATES): RatioCi | null {
  const distinct = new Set<number>();
  for (const b of [...clean, ...fault]) for (const v of b.valuesUs) distinct.add(v);
  const values = Float64Array.from([...distinct].sort((a, b) => a - b));
  const indexOf = new Map<number, number>();
  values.forEach((v, i) => indexOf.set(v, i));
  const c = indexBlocks(clean, indexOf);
  const f = indexBlocks(fault, indexOf);
  if (c.length < CI_MIN_BLOCKS || f.length < CI_MIN_BLOCKS || totalOf(clean) < CI_MIN_SAMPLES || totalOf(fault) < CI_MIN_SAMPLES) return null;
  const rng = new Rng(`p50-ratio-ci:${seed}`);
  const dense = new Float64Array(values.length);
  const ratios = new Float64Array(replicates);
  for (let r = 0; r < replicates; r++) {
    const mf = resampledMedian(f, dense, values, () => rng.int(f.length));
    const mc = resampledMedian(c, dense, values, () => rng.int(c.length));
    ratios[r] = mf / Math.max(mc, 1e-9);
  }
  ratios.sort();
  const tail = (1 - CI_LEVEL) / 2;
  const low = ratios[Math.floor(tail * replicates)]!;
  const high = ratios[Math.max(0, Math.ceil((1 - tail) * replicates) - 1)]!;
  return { level: CI_LEVEL, low: round(low, 3), high: round(high, 3), replicates, cleanBlocks: c.length, faultBlocks: f.length };
}

/** held when the whole interval is at or below `bound`, broken when it is all above, else (or no interval) unresolved. */
export function boundVerdict(ci: RatioCi | null, bound = WITHIN_10PCT): BoundVerdict {
  if (!ci) return 'unresolved';
  if (ci.high <= bound) return 'held';
  if (ci.low > bound) return 'broken';
  return 'unresolved';
}
