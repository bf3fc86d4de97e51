/**
 * Finding the ceiling: step the load up until an SLO breaks, then bisect between the last good and
 * the first bad step to the requested precision. The search is pure logic over an injected
 * `measure(load)`; `rmmscale run` passes a function that drives the swarm (warm-up, then a measured
 * window) and reads every node, tests pass a simulated system with a known knee.
 *
 *   load ─►  s0 ──► s1 ──► s2 ──► s3 ✗            step up (×factor) until a breach
 *                          good    bad
 *                           └─ b1 ✓ ─ b2 ✗ ─ b3 ✓ bisect until (bad − good)/good ≤ precision
 *                                            ceiling = last good
 */

export interface StepMeasurement {
  offeredRatePerSec: number;
  achievedRatePerSec: number;
  p99Us: number;
  errorRate: number;
  /** False when the generator or host saturated: such a step proves nothing about the stack. */
  trustworthy: boolean;
}

export interface Slo {
  /** p99 latency bound, µs. */
  p99Us: number;
  /** Highest acceptable error rate (0..1). */
  errorRate: number;
  /** Achieved ÷ offered below this means the stack is not keeping up (e.g. 0.97). */
  minAchievedRatio: number;
}

export interface SearchOptions {
  startLoad: number;
  maxLoad: number;
  /** Geometric step: next = load × factor (e.g. 1.5). */
  stepFactor: number;
  /** Stop bisecting when (firstBad − lastGood) / lastGood ≤ precision (e.g. 0.05). */
  precision: number;
  slo: Slo;
  /** Hard bound on measurements, steps and bisections together. */
  maxMeasurements: number;
  /** Loads are rounded to this grain (agents: 100; rates: 1). */
  grain: number;
}

/** A window against the scenario's SLO (not the rig's RigVerdict, nor a gate's DecisionOutcome). */
export interface SloVerdict {
  ok: boolean;
  breaches: string[];
}

export interface SearchStep {
  load: number;
  phase: 'step' | 'bisect';
  measurement: StepMeasurement;
  verdict: SloVerdict;
}

export type SearchOutcome =
  | 'found' // a ceiling between lastGood and firstBad, to the precision asked
  | 'below-start' // the first step already broke the SLO
  | 'above-max' // maxLoad held: the ceiling is higher than searched
  | 'untrustworthy' // the generator or host saturated before the stack did
  | 'budget'; // maxMeasurements ran out

export interface SearchResult {
  outcome: SearchOutcome;
  /** The highest load that met the SLO (null when none did or the search could not tell). */
  ceilingLoad: number | null;
  lastGood: number | null;
  firstBad: number | null;
  steps: SearchStep[];
}

export function judgeStep(m: StepMeasurement, slo: Slo): SloVerdict {
  const breaches: string[] = [];
  if (m.p99Us > slo.p99Us) breaches.push(`p99 ${(m.p99Us / 1000).toFixed(1)} ms > ${(slo.p99Us / 1000).toFixed(1)} ms`);
  if (m.errorRate > slo.errorRate) breaches.push(`errors ${(m.errorRate * 100).toFixed(2)}% > ${(slo.errorRate * 100).toFixed(2)}%`);
  const ratio = m.offeredRatePerSec > 0 ? m.achievedRatePerSec / m.offeredRatePerSec : 1;
  if (ratio < slo.minAchievedRatio) {
    breaches.push(`achieved ${m.achievedRatePerSec.toFixed(1)}/s < ${(slo.minAchievedRatio * 100).toFixed(0)}% of offered ${m.offeredRatePerSec.toFixed(1)}/s`);
  }
  return { ok: breaches.length === 0, breaches };
}

const roundTo = (x: number, grain: number): number => Math.max(grain, Math.round(x / grain) * grain);

export async function searchCeiling(measure: (load: number) => Promise<StepMeasurement>, o: SearchOptions): Promise<SearchResult> {
  const steps: SearchStep[] = [];
  let lastGood: number | null = null;
  let firstBad: number | null = null;

  const probe = async (load: number, phase: SearchStep['phase']): Promise<SearchStep | null> => {
    if (steps.length >= o.maxMeasurements) return null;
    const measurement = await measure(load);
    const step: SearchStep = { load, phase, measurement, verdict: judgeStep(measurement, o.slo) };
    steps.push(step);
    return step;
  };
  const done = (outcome: SearchOutcome): SearchResult => ({
    outcome,
    ceilingLoad: outcome === 'found' || outcome === 'above-max' || outcome === 'budget' ? lastGood : null,
    lastGood,
    firstBad,
    steps,
  });

  // Step up.
  let load = roundTo(o.startLoad, o.grain);
  for (;;) {
    const s = await probe(load, 'step');
    if (!s) return done('budget');
    if (!s.measurement.trustworthy) return done('untrustworthy');
    if (!s.verdict.ok) {
      firstBad = load;
      break;
    }
    lastGood = load;
    if (load >= o.maxLoad) return done('above-max');
    load = Math.min(o.maxLoad, roundTo(load * o.stepFactor, o.grain));
    if (load <= lastGood) load = lastGood + o.grain;
  }
  if (lastGood === null) return done('below-start');

  // Bisect.
  while ((firstBad - lastGood) / lastGood > o.precision && firstBad - lastGood > o.grain) {
    const mid = roundTo((lastGood + firstBad) / 2, o.grain);
    if (mid <= lastGood || mid >= firstBad) break;
    const s = await probe(mid, 'bisect');
    if (!s) return done('budget');
    if (!s.measurement.trustworthy) return done('untrustworthy');
    if (s.verdict.ok) lastGood = mid;
    else firstBad = mid;
  }
  return done('found');
}
