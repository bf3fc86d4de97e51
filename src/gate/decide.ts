/**
 * The gate's decisions, as pure functions of numbers (no result files), so that a benchmark can
 * replay them on measured runs to count false alarms and detections.
 *
 * Relative rules (`checkin.p99 <= +10%`) compare current runs c₁…cₙ with baseline runs b₁…bₘ of one
 * metric through R = mean(c) ÷ mean(b) and a confidence interval on R by Fieller's method (the
 * classical interval for a ratio of two means; it needs no logarithms, so zeros are fine):
 *
 *   the R for which |mean(c) − R·mean(b)| ≤ t · √(Vc + R²·Vb)
 *
 *   Vc, Vb   the variances of the two means:
 *              n ≥ 2 and m ≥ 2  sample variances (s²/n, s²/m), t with Welch–Satterthwaite df
 *              one side single  both sides take the other side's s² (same run-to-run noise), df = k − 1
 *              n = m = 1        no noise estimate: each run is assumed to vary by `noiseCv` (default
 *                               5%) of its value, Vc = (cv·c₁)², Vb = (cv·b₁)², t = z
 *   t        Student's t at (1 + confidence) / 2 (0.975 for 95%)
 *
 * An upper rule (`<`, `<=` bound B) passes when the interval's upper end is within B and fails when
 * its lower end is beyond B; a lower rule (`>`, `>=`) the mirror image; otherwise it is
 * inconclusive. Each one-sided error is thus at most (1 − confidence) / 2. When the interval is
 * unbounded (the baseline mean is within noise of 0) or the baseline is 0 (and the current is not),
 * the rule is inconclusive: a ratio says nothing there.
 *
 *   ratio axis:   0.9      1.0      1.1 (bound of "<= +10%")
 *   pass          [--R--]            |
 *   inconclusive          [----R----]|----]
 *   fail                             | [--R--]
 *
 * Absolute rules (`checkin.p99 < 500ms`) compare the median of the current runs with the limit: with
 * one run that is the run; with several, one outlier run neither fails nor saves the gate.
 */

/** What one relative or absolute rule decided (the JSON field stays `verdict`). */
export type DecisionOutcome = 'pass' | 'fail' | 'inconclusive';
export type BoundOp = '<' | '<=' | '>' | '>=';
export type CompareOp = BoundOp | '==' | '!=';

export interface DecideOptions {
  /** Two-sided confidence of the ratio interval. */
  confidence: number;
  /** Assumed run-to-run coefficient of variation when neither side has two runs. */
  noiseCv: number;
}

export const DEFAULT_DECIDE: DecideOptions = { confidence: 0.95, noiseCv: 0.05 };

export type RatioMethod = 'welch' | 'pooled' | 'assumed-noise' | 'both-zero';

export interface RatioInterval {
  ratio: number;
  lo: number;
  hi: number;
  method: RatioMethod;
  /** Degrees of freedom of t (Infinity: the normal). */
  df: number;
}

export interface RelativeDecision {
  verdict: DecisionOutcome;
  /** mean(current) ÷ mean(baseline); null when the baseline mean is 0 and the current is not. */
  ratio: number | null;
  /** null when unbounded. */
  ci: [number, number] | null;
  method: RatioMethod | 'zero-baseline' | 'unbounded';
  df: number;
  n: number;
  m: number;
  /** One line: the numbers behind the verdict. */
  note: string;
}

export function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample variance (n − 1); 0 for one value. */
export function variance(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const mu = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - mu) ** 2;
  return s / (xs.length - 1);
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

function checkSamples(name: string, xs: readonly number[]): void {
  if (xs.length === 0) throw new RangeError(`${name}: expected at least one value`);
  for (const x of xs) if (!Number.isFinite(x)) throw new RangeError(`${name}: expected finite numbers, got ${x}`);
}

/**
 * Fieller's interval for mean(current) ÷ mean(baseline). Returns null when it is unbounded or the
 * baseline mean is 0 with a non-zero current; `both-zero` (ratio 1) when both means are 0.
 */
export function ratioInterval(current: readonly number[], baseline: readonly number[], o: DecideOptions = DEFAULT_DECIDE): RatioInterval | null {
  checkSamples('current', current);
  checkSamples('baseline', baseline);
  const n = current.length;
  const m = baseline.length;
  const a = mean(current);
  const b = mean(baseline);
  if (b === 0) return a === 0 ? { ratio: 1, lo: 1, hi: 1, method: 'both-zero', df: Infinity } : null;
  const r = a / b;
  let va: number;
  let vb: number;
  let df: number;
  let method: RatioMethod;
  if (n >= 2 && m >= 2) {
    va = variance(current) / n;
    vb = variance(baseline) / m;
    const x = va;
    const y = r * r * vb;
    const den = (x * x) / (n - 1) + (y * y) / (m - 1);
    df = den > 0 ? (x + y) ** 2 / den : Infinity;
    method = 'welch';
  } else if (n >= 2 || m >= 2) {
    const s2 = n >= 2 ? variance(current) : variance(baseline);
    va = s2 / n;
    vb = s2 / m;
    df = Math.max(n, m) - 1;
    method = 'pooled';
  } else {
    va = (o.noiseCv * a) ** 2;
    vb = (o.noiseCv * b) ** 2;
    df = Infinity;
    method = 'assumed-noise';
  }
  const t = studentTQuantile((1 + o.confidence) / 2, df);
  const t2 = t * t;
  const qa = b * b - t2 * vb;
  if (qa <= 0) return null;
  const disc = Math.max(0, t2 * (a * a * vb + b * b * va - t2 * va * vb));
  const root = Math.sqrt(disc);
  return { ratio: r, lo: (a * b - root) / qa, hi: (a * b + root) / qa, method, df };
}

/** A baseline-relative rule: `op` against `bound` = 1 + change (`<= +10%` → `<=` 1.10). */
export function decideRelative(current: readonly number[], baseline: readonly number[], op: BoundOp, bound: number, o: DecideOptions = DEFAULT_DECIDE): RelativeDecision {
  const ci = ratioInterval(current, baseline, o);
  const n = current.length;
  const m = baseline.length;
  const runs = `${n} vs ${m} run${m === 1 ? '' : 's'}`;
  const pct = `${Math.round(o.confidence * 100)}%`;
  if (!ci) {
    const b = mean(baseline);
    if (b === 0) {
      return { verdict: 'inconclusive', ratio: null, ci: null, method: 'zero-baseline', df: NaN, n, m, note: `the baseline is 0, so a change relative to it is undefined (use an absolute threshold); ${runs}` };
    }
    const r = mean(current) / b;
    return { verdict: 'inconclusive', ratio: r, ci: null, method: 'unbounded', df: NaN, n, m, note: `×${fmt(r)}, but the baseline runs vary too much to bound the ratio; ${runs}` };
  }
  const upper = op === '<' || op === '<=';
  let verdict: DecisionOutcome;
  if (upper) {
    const passes = op === '<' ? ci.hi < bound : ci.hi <= bound;
    const fails = op === '<' ? ci.lo >= bound : ci.lo > bound;
    verdict = passes ? 'pass' : fails ? 'fail' : 'inconclusive';
  } else {
    const passes = op === '>' ? ci.lo > bound : ci.lo >= bound;
    const fails = op === '>' ? ci.hi <= bound : ci.hi < bound;
    verdict = passes ? 'pass' : fails ? 'fail' : 'inconclusive';
  }
  if (ci.method === 'both-zero') {
    return { verdict, ratio: 1, ci: [1, 1], method: ci.method, df: ci.df, n, m, note: `current and baseline are both 0: no change (×1); ${runs}` };
  }
  const how =
    ci.method === 'welch' ? `Welch t, df ${fmt(ci.df)}`
    : ci.method === 'pooled' ? `t, df ${ci.df}, noise from the ${n >= 2 ? 'current' : 'baseline'} runs`
    : `single runs, no noise estimate: assumed ${fmt(o.noiseCv * 100)}% per run`;
  const where =
    verdict === 'pass' ? `within ${fmt(bound)}`
    : verdict === 'fail' ? `beyond ${fmt(bound)}`
    : `the interval straddles ${fmt(bound)}`;
  return { verdict, ratio: ci.ratio, ci: [ci.lo, ci.hi], method: ci.method, df: ci.df, n, m, note: `×${fmt(ci.ratio)} (${pct} CI ${fmt(ci.lo)}–${fmt(ci.hi)}; ${how}; ${runs}): ${where}` };
}

export interface AbsoluteDecision {
  verdict: 'pass' | 'fail';
  /** The median of the current runs: what was compared. */
  value: number;
}

/** An absolute rule on the median of the current runs. */
export function decideAbsolute(current: readonly number[], op: CompareOp, limit: number): AbsoluteDecision {
  checkSamples('current', current);
  const v = median(current);
  return { verdict: compare(v, op, limit) ? 'pass' : 'fail', value: v };
}

export function compare(v: number, op: CompareOp, limit: number): boolean {
  switch (op) {
    case '<':
      return v < limit;
    case '<=':
      return v <= limit;
    case '>':
      return v > limit;
    case '>=':
      return v >= limit;
    case '==':
      return v === limit;
    case '!=':
      return v !== limit;
  }
}

function fmt(x: number): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(3))) : String(x);
}

// --- Student's t quantile -----------------------------------------------------------------------

/** The p-quantile of Student's t with df degrees of freedom (df = Infinity: the normal). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`p: expected 0 < p < 1, got ${p}`);
  if (!(df > 0)) throw new RangeError(`df: expected df > 0, got ${df}`);
  if (!Number.isFinite(df) || df > 1e7) return normalQuantile(p);
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  // Bisection on the CDF: monotone, 200 halvings reach double precision from any bracket.
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let k = 0; k < 200 && hi - lo > 1e-12 * hi; k++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

export function studentTCdf(t: number, df: number): number {
  const x = df / (df + t * t);
  const tail = 0.5 * regularizedBeta(x, df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** I_x(a, b) by its continued fraction (modified Lentz), with the symmetry for fast convergence. */
function regularizedBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const lnFront = lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x);
  if (x > (a + 1) / (a + b + 2)) return 1 - (Math.exp(lnFront) * betaFraction(1 - x, b, a)) / b;
  return (Math.exp(lnFront) * betaFraction(x, a, b)) / a;
}

function betaFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let k = 1; k <= 1000; k++) {
    const m2 = 2 * k;
    let aa = (k * (b - k) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + k) * (a + b + k) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9: ~15 significant digits). */
function lnGamma(x: number): number {
  const g = 7;
  const coef = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
    -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lnGamma(1 - x);
  const xx = x - 1;
  let s = coef[0];
  for (let i = 1; i < g + 2; i++) s += coef[i] / (xx + i);
  const t = xx + g + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (xx + 0.5) * Math.log(t) - t + Math.log(s);
}

/** The standard normal's p-quantile (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const pl = 0.02425;
  let x: number;
  if (p < pl) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - pl) {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  return x;
}
