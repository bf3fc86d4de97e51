import { Rng } from '../core/random.js';
import type { CapacityProfile, ServiceTime } from './types.js';

/**
 * The capacity model that lets a 2-core host show what two web servers do for a stack: each node
 * has `workers` service slots; a request holds one for a sampled service time ON TOP of its real
 * work; up to `queue` more wait in FIFO order; beyond that the node answers 503. The node's
 * utilisation, queue depth and busy workers are exported, and Erlang C predicts its latency
 * (src/analysis/erlang-c.ts), which the tests check against measurement.
 */

/** z for the 99th percentile of the standard normal. */
const Z99 = 2.3263478740408408;

/**
 * Lognormal σ from mean and p99: with μ = ln(mean) − σ²/2, p99 = exp(μ + z·σ), so
 * σ²/2 − z·σ + ln(p99/mean) = 0 and σ = z − √(z² − 2·ln(p99/mean)) (the smaller root).
 */
export function lognormalSigma(meanMs: number, p99Ms: number): number {
  const r = Math.log(p99Ms / meanMs);
  const disc = Z99 * Z99 - 2 * r;
  if (!(r > 0) || disc < 0) throw new RangeError(`lognormal service time: p99Ms must be above meanMs and at most ${(meanMs * Math.exp((Z99 * Z99) / 2)).toFixed(1)} ms, got ${p99Ms}`);
  return Z99 - Math.sqrt(disc);
}

/** A sampler of service times in ms for a profile; deterministic for a seed. */
export function serviceSampler(s: ServiceTime, rng: Rng): () => number {
  switch (s.dist) {
    case 'constant':
      return () => s.meanMs;
    case 'exponential':
      return () => rng.exponential(s.meanMs);
    case 'lognormal': {
      const sigma = lognormalSigma(s.meanMs, s.p99Ms ?? s.meanMs * 3);
      const mu = Math.log(s.meanMs) - (sigma * sigma) / 2;
      return () => Math.exp(mu + sigma * rng.normal());
    }
  }
}

/** A bounded queue is full: answered 503 + retry-after (the runtime, web nodes, the db node). */
export class QueueFullError extends Error {
  constructor(workers: number, queue: number, message?: string) {
    super(message ?? `all ${workers} workers busy and ${queue} queued`);
    this.name = 'QueueFullError';
  }
}

type Waiter = () => void;

export class CapacityLimiter {
  readonly workers: number;
  private readonly queueLimit: number;
  private readonly sample: () => number;
  private readonly waiting: Waiter[] = [];
  private waitHead = 0;
  private busyNow = 0;
  /** Integral of busy workers over time since the last takeUtilization(), in worker·ms. */
  private busyArea = 0;
  private lastChangeMs = performance.now();
  private lastTakeMs = performance.now();
  rejected = 0;
  /**
   * Timer debt, ms: Σ(held − sampled) over past services. Node timers fire up to ~1.5 ms off
   * (early when the loop's cached clock is stale, late under load), and at ρ = 0.75 a 1 ms bias in
   * a 20 ms mean service time moves the mean response by 16%. Each service asks for its sample
   * minus the debt, so the long-run mean service time is the profile's; the debt is clamped so that
   * a long host stall (reported as host-limited) is not repaid with a burst of free service.
   */
  private debtMs = 0;
  private readonly debtLimitMs: number;
  /** A `slow: NODE, by: Nx` fault: service times × factor until untilMs (performance.now()). */
  private slowFactor = 1;
  private slowUntilMs = 0;

  constructor(profile: CapacityProfile, opts: { seed?: string; rng?: Rng } = {}) {
    if (!(profile.workers >= 1)) throw new RangeError(`workers must be at least 1, got ${profile.workers}`);
    this.workers = Math.floor(profile.workers);
    this.queueLimit = Math.max(0, Math.floor(profile.queue));
    this.sample = serviceSampler(profile.service, opts.rng ?? new Rng(opts.seed ?? 'capacity'));
    this.debtLimitMs = Math.max(5, profile.service.meanMs);
  }

  /** A `by: Nx` slow fault: every service time sampled in the next `forMs` is `factor` times as long. */
  slowBy(factor: number, forMs: number): void {
    this.slowFactor = Math.max(1, factor);
    this.slowUntilMs = performance.now() + Math.max(0, forMs);
  }

  get busy(): number {
    return this.busyNow;
  }

  get queued(): number {
    return this.waiting.length - this.waitHead;
  }

  /** Add busy-worker time up to `now` (never backwards: a caller's clock may lag or lead this one). */
  private account(now = performance.now()): void {
    if (now <= this.lastChangeMs) return;
    this.busyArea += this.busyNow * (now - this.lastChangeMs);
    this.lastChangeMs = now;
  }

  /** Busy-worker time as a share of all worker time since the previous call (0..1). */
  takeUtilization(nowMs = performance.now()): number {
    // Up to the caller's `now`, the same instant the span ends at: accounting to a later clock
    // reading counted busy time past the span (a share above 1/4 with 1 of 4 workers busy).
    this.account(nowMs);
    const span = nowMs - this.lastTakeMs;
    const u = span > 0 ? this.busyArea / (span * this.workers) : 0;
    this.busyArea = 0;
    this.lastTakeMs = nowMs;
    return Math.min(1, Math.max(0, u));
  }

  private acquire(): Promise<void> | null {
    if (this.busyNow < this.workers) {
      this.account();
      this.busyNow++;
      return null;
    }
    if (this.queued >= this.queueLimit) {
      this.rejected++;
      throw new QueueFullError(this.workers, this.queueLimit);
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    if (this.queued > 0) {
      // Hand the slot straight to the next waiter: busy count unchanged.
      const next = this.waiting[this.waitHead++];
      if (this.waitHead > 1024 && this.waitHead * 2 > this.waiting.length) {
        this.waiting.splice(0, this.waitHead);
        this.waitHead = 0;
      }
      next();
      return;
    }
    this.account();
    this.busyNow--;
  }

  /**
   * Run `fn` in a worker slot after the sampled service time. Rejects with QueueFullError at once
   * when every worker is busy and the queue is full.
   */
  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    const wait = this.acquire();
    if (wait) await wait;
    try {
      const ms = this.sample() * (this.slowFactor > 1 && performance.now() < this.slowUntilMs ? this.slowFactor : 1);
      const askMs = ms - this.debtMs;
      let heldMs = 0;
      if (askMs > 0) {
        const t0 = performance.now();
        await new Promise((r) => setTimeout(r, askMs));
        heldMs = performance.now() - t0;
      }
      this.debtMs = Math.min(this.debtLimitMs, Math.max(-this.debtLimitMs, this.debtMs + heldMs - ms));
      return await fn();
    } finally {
      this.release();
    }
  }
}
