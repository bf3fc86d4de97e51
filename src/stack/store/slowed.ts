import type { Store } from '../types.js';

/**
 * A fault: added latency on every query of a node's store, for a while (`slow: db, by: 200ms,
 * for: 60s` in a scenario's `faults:`). The launcher sets it over the node's IPC channel.
 */
export class StoreDelay {
  private byMs = 0;
  private untilMs = 0;

  constructor(private readonly nowMs: () => number = Date.now) {}

  /** Every query from now until `forMs` from now waits `byMs` first. */
  set(byMs: number, forMs: number): void {
    this.byMs = Math.max(0, byMs);
    this.untilMs = this.nowMs() + Math.max(0, forMs);
  }

  /** The delay a query starting now gets (0 when no fault is active). */
  currentMs(): number {
    return this.byMs > 0 && this.nowMs() < this.untilMs ? this.byMs : 0;
  }
}

/** The store, with the delay in front of every method but init and close. */
export function delayStore(store: Store, delay: StoreDelay): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function' || prop === 'init' || prop === 'close') return typeof v === 'function' ? v.bind(target) : v;
      return (...args: unknown[]) => {
        const ms = delay.currentMs();
        const call = (): unknown => (v as (...a: unknown[]) => unknown).apply(target, args);
        return ms > 0 ? new Promise((r) => setTimeout(r, ms)).then(call) : call();
      };
    },
  });
}
