import { Rng } from '../core/random.js';
import { round } from '../core/units.js';

/**
 * Is an operation's median latency during a fault within 10% of its clean median? One ratio of two
 * medians cannot say: with a few hundred samples of a skewed latency (an exponential's median has a
 * relative standard error of 1.44 / √n, 13% at n = 130) a ratio of 1.11 is as likely noise as
 * cost. This gives the ratio a 95% confidence interval and decides from it.
 *
 * The interval is a moving-block bootstrap: each side is a time-ordered list of blocks (one second
 * of one operation's samples); a resample takes runs of CI_RUN_SECONDS consecutive seconds from
 * random starts until it has as many seconds as the side, the medians of the two resamples are
 * divided, 2,000 times, and the interval is the 2.5th and 97.5th percentile of those ratios.
 * Seconds, not samples, and runs of them, are resampled, so that what holds the samples of a few
 * seconds together (a GC pause, a stalled event loop, a relay's audit spool taking the records for
 * a few seconds after one slow write: src/stack/relay/audit-spool.ts) is drawn as a whole, not as
 * many independent draws. Drift slower than a run (a neighbour busy for 20 s) is not covered: that
 * is what control runs are for.
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
  /** Consecutive seconds per resampled run (CI_RUN_SECONDS, fewer on a short side). */
  runSeconds: number;
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
/** Consecutive seconds a resample takes at a time (at most half a side's seconds). */
export const CI_RUN_SECONDS = 5;
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

/**
 * The nearest-rank median (HDR's rule: the first value whose cumulative count reaches ⌈total / 2⌉)
 * of a resample of `blocks`: runs of `run` consecutive blocks from random starts, as many blocks in all.
 */
function resampledMedian(blocks: readonly IndexedBlock[], dense: Float64Array, values: Float64Array, rng: Rng, run: number): number {
  dense.fill(0);
  let total = 0;
  let lo = dense.length;
  let hi = -1;
  let start = 0;
  for (let k = 0; k < blocks.length; k++) {
    if (k % run === 0) start = rng.int(blocks.length - run + 1);
    const b = blocks[start + (k % run)]!;
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
 * The 95% moving-block-bootstrap interval of median(fault) ÷ median(clean); null when either side has
 * fewer than CI_MIN_BLOCKS blocks with samples or CI_MIN_SAMPLES samples.
 */
export function p50RatioCi(clean: readonly SampleBlock[], fault: readonly SampleBlock[], seed: string, opts: { replicates?: number; runSeconds?: number } = {}): RatioCi | null {
  const replicates = opts.replicates ?? CI_REPLICATES;
  const runOf = (blocks: number): number => Math.max(1, Math.min(opts.runSeconds ?? CI_RUN_SECONDS, Math.floor(blocks / 2)));
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
    const mf = resampledMedian(f, dense, values, rng, runOf(f.length));
    const mc = resampledMedian(c, dense, values, rng, runOf(c.length));
    ratios[r] = mf / Math.max(mc, 1e-9);
  }
  ratios.sort();
  const tail = (1 - CI_LEVEL) / 2;
  const low = ratios[Math.floor(tail * replicates)]!;
  const high = ratios[Math.max(0, Math.ceil((1 - tail) * replicates) - 1)]!;
  return { level: CI_LEVEL, low: round(low, 3), high: round(high, 3), replicates, runSeconds: Math.min(runOf(c.length), runOf(f.length)), cleanBlocks: c.length, faultBlocks: f.length };
}

/** held when the whole interval is at or below `bound`, broken when it is all above, else (or no interval) unresolved. */
export function boundVerdict(ci: RatioCi | null, bound = WITHIN_10PCT): BoundVerdict {
  if (!ci) return 'unresolved';
  if (ci.high <= bound) return 'held';
  if (ci.low > bound) return 'broken';
  return 'unresolved';
}
