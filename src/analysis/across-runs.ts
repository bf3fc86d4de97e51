import { round } from '../core/units.js';
import type { BoundVerdict } from './ratio-ci.js';

/**
 * "Within 10%" across repeated runs. One run's verdict (ratio-ci.ts) can be `unresolved` when what
 * it measures drifts over tens of seconds: a 0.1 ms tunnel ping moved ±15% between windows of the
 * same load on a 2-core host. Repeated runs are independent replicates, so their p50 ratios give
 * an interval of their own: a Student-t 95% interval of the mean of the log ratios, turned back
 * into a ratio (a geometric mean). The same rule as one run's: `held` when the whole interval is at
 * or below 1.10, `broken` when all of it is above, else `unresolved`; below MIN_RUNS runs, no
 * interval (unresolved).
 */

export const MIN_RUNS = 3;
export const BOUND = 1.1;

/** t(0.975, df) for df 1–30; above 30, the normal 1.96 (within 2%). */
const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

export function t975(df: number): number {
  return df >= 1 && df <= T975.length ? T975[df - 1]! : 1.96;
}

export interface AcrossRuns {
  runs: number;
  /** The geometric mean of the runs' ratios (null without runs). */
  geoMean: number | null;
  /** The 95% interval of the geometric mean (null below MIN_RUNS runs). */
  low: number | null;
  high: number | null;
  within10pct: BoundVerdict;
}

/** Pool per-run ratios (each > 0) into one interval and verdict. */
export function acrossRuns(ratios: readonly number[]): AcrossRuns {
  const logs = ratios.filter((r) => Number.isFinite(r) && r > 0).map(Math.log);
  const n = logs.length;
  if (n === 0) return { runs: 0, geoMean: null, low: null, high: null, within10pct: 'unresolved' };
  const mean = logs.reduce((a, b) => a + b, 0) / n;
  const geoMean = round(Math.exp(mean), 3);
  if (n < MIN_RUNS) return { runs: n, geoMean, low: null, high: null, within10pct: 'unresolved' };
  const sd = Math.sqrt(logs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const half = (t975(n - 1) * sd) / Math.sqrt(n);
  const low = Math.exp(mean - half);
  const high = Math.exp(mean + half);
  const within10pct: BoundVerdict = high <= BOUND ? 'held' : low > BOUND ? 'broken' : 'unresolved';
  return { runs: n, geoMean, low: round(low, 3), high: round(high, 3), within10pct };
}
