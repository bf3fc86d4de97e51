/**
 * The Universal Scalability Law (Gunther): throughput at load N is
 *
 *   X(N) = λ·N / (1 + σ·(N − 1) + κ·N·(N − 1))
 *
 * λ: throughput of one unit of load in isolation; σ: contention (the serial fraction, Amdahl);
 * κ: coherency (crosstalk that makes throughput fall past a peak). With κ > 0 the peak is at
 * N* = √((1 − σ)/κ), X* = X(N*).
 *
 * Fitted by Levenberg–Marquardt (damped Gauss–Newton) on the squared residuals, with σ and κ kept
 * non-negative, from several starting points; goodness of fit is R² on throughput.
 */

export interface UslParams {
  lambda: number;
  sigma: number;
  kappa: number;
}

export interface UslFit extends UslParams {
  /** Load at peak throughput; Infinity when κ = 0 (throughput only flattens). */
  nMax: number;
  /** Peak throughput (the asymptote λ/σ when κ = 0). */
  xMax: number;
  r2: number;
  points: number;
  iterations: number;
}

export interface LoadPoint {
  load: number;
  throughput: number;
}

export function uslThroughput(p: UslParams, n: number): number {
  return (p.lambda * n) / (1 + p.sigma * (n - 1) + p.kappa * n * (n - 1));
}

export function uslPeak(p: UslParams): { nMax: number; xMax: number } {
  if (p.kappa <= 0) return { nMax: Infinity, xMax: p.sigma > 0 ? p.lambda / p.sigma : Infinity };
  const nMax = Math.sqrt(Math.max(0, 1 - p.sigma) / p.kappa);
  return { nMax, xMax: uslThroughput(p, nMax) };
}

function sse(p: UslParams, pts: readonly LoadPoint[]): number {
  let s = 0;
  for (const { load, throughput } of pts) {
    const r = throughput - uslThroughput(p, load);
    s += r * r;
  }
  return s;
}

/** Solve the 3×3 system A·x = b (Gaussian elimination with partial pivoting); null if singular. */
function solve3(a: number[][], b: number[]): number[] | null {
  const m = a.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < 3; c++) {
    let piv = c;
    for (let r = c + 1; r < 3; r++) if (Math.abs(m[r][c]) > Math.abs(m[piv][c])) piv = r;
    if (Math.abs(m[piv][c]) < 1e-300) return null;
    [m[c], m[piv]] = [m[piv], m[c]];
    for (let r = 0; r < 3; r++) {
      if (r === c) continue;
      const f = m[r][c] / m[c][c];
      for (let k = c; k < 4; k++) m[r][k] -= f * m[c][k];
    }
  }
  return [m[0][3] / m[0][0], m[1][3] / m[1][1], m[2][3] / m[2][2]];
}

/** Levenberg–Marquardt from one start; parameters scaled to their start values for conditioning. */
function lm(pts: readonly LoadPoint[], start: UslParams, maxIter: number): { p: UslParams; iterations: number } {
  let p = { ...start };
  let cost = sse(p, pts);
  let mu = 1e-3;
  let it = 0;
  for (; it < maxIter; it++) {
    // Jacobian of the model w.r.t. (λ, σ, κ).
    const jtj = [
      [0, 0, 0],
      [0, 0, 0],
      [0, 0, 0],
    ];
    const jtr = [0, 0, 0];
    for (const { load: n, throughput: y } of pts) {
      const d = 1 + p.sigma * (n - 1) + p.kappa * n * (n - 1);
      const x = (p.lambda * n) / d;
      const j = [n / d, (-x * (n - 1)) / d, (-x * n * (n - 1)) / d];
      const r = y - x;
      for (let a = 0; a < 3; a++) {
        jtr[a] += j[a] * r;
        for (let b = 0; b < 3; b++) jtj[a][b] += j[a] * j[b];
      }
    }
    let improved = false;
    for (let tries = 0; tries < 30; tries++) {
      const a = jtj.map((row, i) => row.map((v, k) => (i === k ? v * (1 + mu) + 1e-300 : v)));
      const step = solve3(a, jtr);
      if (!step) {
        mu *= 10;
        continue;
      }
      const cand: UslParams = {
        lambda: Math.max(1e-12, p.lambda + step[0]),
        sigma: Math.min(1, Math.max(0, p.sigma + step[1])),
        kappa: Math.max(0, p.kappa + step[2]),
      };
      const c = sse(cand, pts);
      if (c < cost) {
        const rel = (cost - c) / Math.max(cost, 1e-300);
        p = cand;
        cost = c;
        mu = Math.max(mu / 10, 1e-12);
        improved = true;
        if (rel < 1e-15) return { p, iterations: it + 1 };
        break;
      }
      mu *= 10;
    }
    if (!improved) break;
  }
  return { p, iterations: it };
}

/** Fit the USL to measured (load, throughput) points. Needs at least 3 points with load > 0. */
export function fitUsl(points: readonly LoadPoint[]): UslFit {
  const pts = points.filter((p) => p.load > 0 && Number.isFinite(p.throughput));
  if (pts.length < 3) throw new RangeError(`the USL fit needs at least 3 points with load > 0, got ${pts.length}`);
  // λ starts from the best throughput-per-unit at low load.
  const sorted = [...pts].sort((a, b) => a.load - b.load);
  const lambda0 = Math.max(...sorted.slice(0, Math.max(1, Math.ceil(sorted.length / 3))).map((p) => p.throughput / p.load));
  const starts: UslParams[] = [];
  for (const sigma of [0, 0.01, 0.1, 0.5]) for (const kappa of [0, 1e-6, 1e-4, 1e-2]) starts.push({ lambda: lambda0, sigma, kappa });
  let best: { p: UslParams; iterations: number } | null = null;
  let bestCost = Infinity;
  for (const s of starts) {
    const r = lm(pts, s, 500);
    const c = sse(r.p, pts);
    if (c < bestCost) {
      bestCost = c;
      best = r;
    }
  }
  const p = best!.p;
  const mean = pts.reduce((a, q) => a + q.throughput, 0) / pts.length;
  const sst = pts.reduce((a, q) => a + (q.throughput - mean) ** 2, 0);
  const r2 = sst > 0 ? 1 - bestCost / sst : 1;
  const { nMax, xMax } = uslPeak(p);
  return { ...p, nMax, xMax, r2, points: pts.length, iterations: best!.iterations };
}
