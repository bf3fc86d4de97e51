import type { Store } from '../types.js';

/**
 * A fault: a node slowed for a while (`slow: db, by: 200ms, for: 60s`, or `by: 10x`, in a
 * scenario's `faults:`). The launcher sets it over the node's IPC channel. `byMs` is latency added
 * before each query; `factor` makes each query take that many times as long as it did (the query,
 * then (factor − 1) × its own duration).
 */
export class StoreDelay {
  private byMs = 0;
  private factor = 1;
  private untilMs = 0;

  constructor(private readonly nowMs: () => number = Date.now) {}

  /** Every query from now until `forMs` from now waits `byMs` first and takes `factor` times as long. */
  set(byMs: number, forMs: number, factor = 1): void {
    this.byMs = Math.max(0, byMs);
    this.factor = Math.max(1, factor);
    this.untilMs = this.nowMs() + Math.max(0, forMs);
  }

  private active(): boolean {
    return this.nowMs() < this.untilMs;
  }

  /** The delay a query starting now gets (0 when no fault is active). */
  currentMs(): number {
    return this.byMs > 0 && this.active() ? this.byMs : 0;
  }

  /** The slowdown factor now (1 when no fault is active). */
  currentFactor(): number {
    return this.factor > 1 && this.active() ? this.factor : 1;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The store, with the delay in front of every method but init and close. */
export function delayStore(store: Store, delay: StoreDelay): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function' || prop === 'init' || prop === 'close') return typeof v === 'function' ? v.bind(target) : v;
      return (...args: unknown[]) => {
        const ms = delay.currentMs();
        const factor = delay.currentFactor();
        const call = (): unknown => (v as (...a: unknown[]) => unknown).apply(target, args);
        if (ms <= 0 && factor <= 1) return call();
        const run = async (): Promise<unknown> => {
          if (ms > 0) await sleep(ms);
          const t0 = performance.now();
          const out = await call();
          if (factor > 1) await sleep((factor - 1) * (performance.now() - t0));
          return out;
        };
        return run();
      };
    },
  });
}
