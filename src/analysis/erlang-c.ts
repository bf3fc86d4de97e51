/**
 * M/M/c queue (Erlang C): Poisson arrivals at λ, c servers, exponential service with mean 1/μ.
 * Used to sanity-check every node that carries a capacity profile (measured mean response time
 * against the prediction) and to calibrate the built-in profiles (docs/stack.md).
 *
 *   a = λ/μ (offered load, Erlangs), ρ = a/c (utilisation, must be < 1)
 *   C(c, a) = (aᶜ/c! · 1/(1−ρ)) / (Σₖ₌₀^{c−1} aᵏ/k! + aᶜ/c! · 1/(1−ρ))   probability of waiting
 *   Wq = C / (cμ − λ)   mean wait,   W = Wq + 1/μ   mean response time
 *
 * Response-time tail: with θ = cμ − λ, the wait is 0 with probability 1 − C and Exp(θ) otherwise,
 * and the response is the wait plus an Exp(μ) service, so
 *   P(T > t) = (1 − C)·e^{−μt} + C·(θ·e^{−μt} − μ·e^{−θt}) / (θ − μ)      (θ ≠ μ)
 *   P(T > t) = (1 − C)·e^{−μt} + C·(1 + μt)·e^{−μt}                        (θ = μ)
 */

export interface ErlangC {
  utilization: number;
  probWait: number;
  meanWaitMs: number;
  meanResponseMs: number;
  /** Wait-time percentile p (0..1): P(Wq > t) = C·e^{−(cμ−λ)t}. */
  waitPercentileMs(p: number): number;
  /** Response-time (wait + service) percentile p (0..1), from the tail above. */
  responsePercentileMs(p: number): number;
}

/** Bisection for a decreasing function f on [lo, hi]: the x with f(x) = target (to ~1e-9 relative). */
function solveDecreasing(f: (x: number) => number, target: number, lo: number, hi: number): number {
  while (f(hi) > target) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-12 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (f(mid) > target) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

export function erlangC(arrivalPerSec: number, servers: number, meanServiceMs: number): ErlangC {
  const mu = 1000 / meanServiceMs; // per second
  const a = arrivalPerSec / mu;
  const rho = a / servers;
  if (!(rho < 1)) {
    return {
      utilization: rho,
      probWait: 1,
      meanWaitMs: Infinity,
      meanResponseMs: Infinity,
      waitPercentileMs: () => Infinity,
      responsePercentileMs: () => Infinity,
    };
  }
  // Terms aᵏ/k! computed iteratively (stable for c in the hundreds).
  let term = 1;
  let sum = 0;
  for (let k = 0; k < servers; k++) {
    sum += term;
    term *= a / (k + 1);
  }
  const top = term / (1 - rho); // aᶜ/c! · 1/(1−ρ)
  const probWait = top / (sum + top);
  const drainPerSec = servers * mu - arrivalPerSec; // θ
  const meanWaitMs = (probWait / drainPerSec) * 1000;
  const tail = (tSec: number): number => {
    const eMu = Math.exp(-mu * tSec);
    const both = Math.abs(drainPerSec - mu) < 1e-9 * mu ? (1 + mu * tSec) * eMu : (drainPerSec * eMu - mu * Math.exp(-drainPerSec * tSec)) / (drainPerSec - mu);
    return (1 - probWait) * eMu + probWait * both;
  };
  return {
    utilization: rho,
    probWait,
    meanWaitMs,
    meanResponseMs: meanWaitMs + meanServiceMs,
    waitPercentileMs: (p: number) => (p <= 1 - probWait ? 0 : (Math.log(probWait / (1 - p)) / drainPerSec) * 1000),
    responsePercentileMs: (p: number) => (p <= 0 ? 0 : p >= 1 ? Infinity : solveDecreasing(tail, 1 - p, 0, meanServiceMs / 1000) * 1000),
  };
}

/**
 * The highest arrival rate (per second) at which c servers with exponential service of the given
 * mean keep the response-time percentile p at or under sloMs; 0 when even one request alone breaks
 * it (the service time itself is over the SLO). Divide by c·μ for the utilisation where the SLO breaks.
 */
export function maxArrivalForSlo(servers: number, meanServiceMs: number, p: number, sloMs: number): number {
  const capacityPerSec = (servers * 1000) / meanServiceMs;
  const over = (rate: number): number => erlangC(rate, servers, meanServiceMs).responsePercentileMs(p) - sloMs;
  if (over(capacityPerSec * 1e-9) > 0) return 0;
  let lo = 0;
  let hi = capacityPerSec * (1 - 1e-12);
  for (let i = 0; i < 200 && hi - lo > 1e-9 * capacityPerSec; i++) {
    const mid = (lo + hi) / 2;
    if (over(mid) > 0) hi = mid;
    else lo = mid;
  }
  return lo;
}
