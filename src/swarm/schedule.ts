import { Rng } from '../core/random.js';

/**
 * When every agent fires. No clocks, no I/O: the worker's send loop (engine.ts) asks a
 * `PeriodicSchedule` for the fires due by now, or `nextPoissonMs` for the next arrival, and sends;
 * the tests run the same code (planPeriodic drains a PeriodicSchedule) to the millisecond.
 *
 * The load is a piecewise-linear profile of (agents, per-agent frequency) over time:
 *
 *   agents   ──────╱‾‾‾‾‾‾‾‾‾‾╲____        stage 1: ramp 0 → N; stage 2: hold; stage 3: ramp down
 *   freq/ms  ────────────────────────      (the check-in model fixes the per-agent frequency)
 *            0    t1         t2   t3
 *
 * Periodic arrivals (the default) are drift-free: each agent owns a phase u ∈ [0, 1) and fires when
 * the cumulative cycle count F(t) = ∫₀ᵗ f(s) ds crosses k + u, for k = 0, 1, 2, … With a constant
 * frequency f = 1/period this is exactly `t_k = (k + u) · period`: the k-th fire is computed from
 * the start, never from the previous fire, so long runs do not drift into clumps (Puppet's lesson).
 *
 *   agent A (u=0.25) ──●───────────●───────────●──   period P: fires at 0.25P, 1.25P, 2.25P …
 *   agent B (u=0.70) ───────●───────────●──────────   fires at 0.70P, 1.70P, …
 *
 * Phases come from a seeded low-discrepancy sequence u_i = frac(offset + i·φ⁻¹), so any window of
 * length T sees N·T/P fires to within a couple of agents instead of the ±√N of independent random
 * phases, and the same seed gives the same schedule whatever the number of worker processes.
 *
 * Jitter (± jitterMs, uniform) moves a single fire without moving the grid.
 *
 * Poisson arrivals give each agent its own memoryless clock on the same cycle axis: it fires when
 * F(t) crosses E₁, E₁ + E₂, … (Eₖ exponential with mean 1), so each agent is a Poisson process of
 * rate f(t) and the fleet, their superposition, one of rate A(t)·f(t). Every draw (the Eₖ, the
 * jitter) is a pure function of the seed, the agent's global index and its fire number
 * (core/random.ts drawAt): any split of the fleet, over workers or shards, fires exactly the sends
 * of one process (fleet-schedule.ts runs this).
 */

/** Golden-ratio conjugate: the most evenly spreading irrational step. */
const PHI_INV = 0.6180339887498949;

export interface ProfilePoint {
  /** Time from the run's start, ms. */
  atMs: number;
  /** Active agents at this instant (agents with index < floor(agents) are active). */
  agents: number;
  /** Check-ins per agent per ms. */
  freqPerMs: number;
}

/** Breakpoints of a piecewise-linear load, first at 0, strictly increasing times. */
export interface LoadProfile {
  points: readonly ProfilePoint[];
  /** Cumulative cycles F at each breakpoint (precomputed). */
  cycles: readonly number[];
  durationMs: number;
}

export interface StageTarget {
  durationMs: number;
  agents: number;
  freqPerMs: number;
}

/**
 * Build a profile from a starting point and stages that ramp linearly to their targets (k6's
 * ramping semantics). A stage whose target equals the previous one holds steady.
 */
export function buildProfile(start: { agents: number; freqPerMs: number }, stages: readonly StageTarget[]): LoadProfile {
  const points: ProfilePoint[] = [{ atMs: 0, agents: start.agents, freqPerMs: start.freqPerMs }];
  let t = 0;
  for (const s of stages) {
    if (!(s.durationMs > 0)) continue;
    t += s.durationMs;
    points.push({ atMs: t, agents: s.agents, freqPerMs: s.freqPerMs });
  }
  if (points.length === 1) points.push({ atMs: 0, agents: start.agents, freqPerMs: start.freqPerMs });
  const cycles: number[] = [0];
  for (let j = 1; j < points.length; j++) {
    const a = points[j - 1];
    const b = points[j];
    cycles.push(cycles[j - 1] + ((a.freqPerMs + b.freqPerMs) / 2) * (b.atMs - a.atMs));
  }
  return { points, cycles, durationMs: t };
}

/** A steady load: `agents` agents at `freqPerMs` for `durationMs`. */
export function steadyProfile(agents: number, freqPerMs: number, durationMs: number): LoadProfile {
  return buildProfile({ agents, freqPerMs }, [{ durationMs, agents, freqPerMs }]);
}

function segmentAt(p: LoadProfile, tMs: number): number {
  const pts = p.points;
  let lo = 0;
  let hi = pts.length - 2;
  if (hi < 0) return 0;
  if (tMs >= pts[hi].atMs) return hi;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (pts[mid].atMs <= tMs) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function lerp(a: number, b: number, x: number): number {
  return a + (b - a) * x;
}

function frac(a: ProfilePoint, b: ProfilePoint, tMs: number): number {
  const d = b.atMs - a.atMs;
  if (d <= 0) return 1;
  const x = (tMs - a.atMs) / d;
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

export function agentsAt(p: LoadProfile, tMs: number): number {
  const j = segmentAt(p, tMs);
  const a = p.points[j];
  const b = p.points[j + 1] ?? a;
  return lerp(a.agents, b.agents, frac(a, b, tMs));
}

export function freqAt(p: LoadProfile, tMs: number): number {
  const j = segmentAt(p, tMs);
  const a = p.points[j];
  const b = p.points[j + 1] ?? a;
  return lerp(a.freqPerMs, b.freqPerMs, frac(a, b, tMs));
}

/** Aggregate intended rate at t, per second. */
export function rateAtPerSec(p: LoadProfile, tMs: number): number {
  return agentsAt(p, tMs) * freqAt(p, tMs) * 1000;
}

/** F(t): cycles every agent has gone through by t (per-agent frequency integrated). */
export function cyclesAt(p: LoadProfile, tMs: number): number {
  if (tMs <= 0) return 0;
  const j = segmentAt(p, tMs);
  const a = p.points[j];
  const b = p.points[j + 1] ?? a;
  const d = b.atMs - a.atMs;
  const tau = Math.min(tMs, p.durationMs) - a.atMs;
  const slope = d > 0 ? (b.freqPerMs - a.freqPerMs) / d : 0;
  return p.cycles[j] + a.freqPerMs * tau + (slope / 2) * tau * tau;
}

/**
 * Inverse of F: the earliest t with F(t) = c, or Infinity when the profile ends first. Within a
 * segment F is quadratic, F_j + f_j·τ + (s/2)·τ², solved in the cancellation-free form
 * τ = 2Δ / (f_j + √(f_j² + 2sΔ)).
 */
export function timeAtCycles(p: LoadProfile, c: number): number {
  if (c <= 0) return 0;
  const cy = p.cycles;
  const last = cy.length - 1;
  if (c > cy[last]) return Infinity;
  let lo = 0;
  let hi = last;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (cy[mid] < c) lo = mid;
    else hi = mid;
  }
  const a = p.points[lo];
  const b = p.points[lo + 1];
  const d = b.atMs - a.atMs;
  const s = d > 0 ? (b.freqPerMs - a.freqPerMs) / d : 0;
  const delta = c - cy[lo];
  const disc = a.freqPerMs * a.freqPerMs + 2 * s * delta;
  const denom = a.freqPerMs + Math.sqrt(disc > 0 ? disc : 0);
  if (denom <= 0) return b.atMs;
  return a.atMs + Math.min(d, (2 * delta) / denom);
}

/** The phase of agent `index` for this seed: evenly spread, deterministic. */
export function phaseOf(seed: string, index: number): number {
  const offset = new Rng(`${seed}\0phase`).next();
  const x = offset + index * PHI_INV;
  return x - Math.floor(x);
}

/** Phase offset for a seed, so hot loops can compute phases without re-hashing. */
export function phaseOffset(seed: string): number {
  return new Rng(`${seed}\0phase`).next();
}

export function phaseFrom(offset: number, index: number): number {
  const x = offset + index * PHI_INV;
  return x - Math.floor(x);
}

/**
 * The k-th intended fire time of an agent with phase u (k = 0, 1, …), before jitter. Infinity
 * once the profile has ended.
 */
export function periodicFireMs(p: LoadProfile, phase: number, k: number): number {
  return timeAtCycles(p, k + phase);
}

/** First cycle index k whose fire time is at or after tMs (used when an agent joins mid-run). */
export function firstCycleAtOrAfter(p: LoadProfile, phase: number, tMs: number): number {
  const k = Math.ceil(cyclesAt(p, tMs) - phase - 1e-12);
  return k <= 0 ? 0 : k;
}

/** Which agents a process holds: local slot s is fleet agent `first + s · stride` (a worker's stripe of its shard's stripe: shard.ts). */
export interface FleetShare {
  first: number;
  stride: number;
}

/** The whole fleet, in one process. */
export const WHOLE_FLEET: FleetShare = { first: 0, stride: 1 };

/** Slots a share holds out of `agents`. */
export function shareCount(agents: number, share: FleetShare): number {
  return Math.max(0, Math.ceil((agents - share.first) / share.stride));
}
