/**
 * M/M/c queue (Erlang C): Poisson arrivals at λ, c servers, exponential service with mean 1/μ.
 * Used to sanity-check every node that carries a capacity profile: measured mean response time
 * against the prediction.
 *
 *   a = λ/μ (offered load, Erlangs), ρ = a/c (utilisation, must be < 1)
 *   C(c, a) = (aᶜ/c! · 1/(1−ρ)) / (Σₖ₌₀^{c−1} aᵏ/k! + aᶜ/c! · 1/(1−ρ))   probability of waiting
 *   Wq = C / (cμ − λ)   mean wait,   W = Wq + 1/μ   mean response time
 */

export interface ErlangC {
  utilization: number;
  probWait: number;
  meanWaitMs: number;
  meanResponseMs: number;
  /** Wait-time percentile p (0..1): P(Wq > t) = C·e^{−(cμ−λ)t}. */
  waitPercentileMs(p: number): number;
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
  const drainPerSec = servers * mu - arrivalPerSec;
  const meanWaitMs = (probWait / drainPerSec) * 1000;
  return {
    utilization: rho,
    probWait,
    meanWaitMs,
    meanResponseMs: meanWaitMs + meanServiceMs,
    waitPercentileMs: (p: number) => (p <= 1 - probWait ? 0 : (Math.log(probWait / (1 - p)) / drainPerSec) * 1000),
  };
}
