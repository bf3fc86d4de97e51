import type { CapacityLimiter } from '../capacity.js';
import type { Store } from '../types.js';

/**
 * The database's capacity model: every store operation takes one of `connections` slots for a
 * sampled per-query time on top of its real work (connections × per-query time).
 */
export function limitStore(store: Store, limiter: CapacityLimiter): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function' || prop === 'init' || prop === 'close') return typeof v === 'function' ? v.bind(target) : v;
      return (...args: unknown[]) => limiter.run(() => (v as (...a: unknown[]) => unknown).apply(target, args));
    },
  });
}
