import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/random.js';
import { parseReconnectPolicy, reconnectDelayMs } from '../../src/swarm/reconnect.js';

describe('reconnect policies', () => {
  it('parses the three forms', () => {
    expect(parseReconnectPolicy('--reconnect', 'exponential:1s:60s')).toEqual({ kind: 'exponential', baseMs: 1000, maxMs: 60_000 });
    expect(parseReconnectPolicy('--reconnect', 'fixed:2s')).toEqual({ kind: 'fixed', delayMs: 2000 });
    expect(parseReconnectPolicy('--reconnect', 'linear:500ms:30s')).toEqual({ kind: 'linear', stepMs: 500, maxMs: 30_000 });
  });

  it.each(['exponential:1s', 'fixed', 'linear:1s:2s:3s', 'random:1s', 'fixed:soon'])('rejects %s with the whole allowed form', (v) => {
    expect(() => parseReconnectPolicy('--reconnect', v)).toThrow(
      `--reconnect: expected "exponential:BASE:MAX" (e.g. exponential:1s:60s), "fixed:DELAY" (fixed:2s) or "linear:STEP:MAX" (linear:500ms:30s), got "${v}"`,
    );
  });

  it('fixed and linear are exact; linear caps at MAX', () => {
    const rng = new Rng('r');
    expect([0, 1, 5].map((a) => reconnectDelayMs({ kind: 'fixed', delayMs: 2000 }, a, rng))).toEqual([2000, 2000, 2000]);
    expect([0, 1, 2, 100].map((a) => reconnectDelayMs({ kind: 'linear', stepMs: 500, maxMs: 30_000 }, a, rng))).toEqual([500, 1000, 1500, 30_000]);
  });

  it('exponential uses full jitter: uniform under min(MAX, BASE·2^attempt)', () => {
    const rng = new Rng('jitter');
    const p = { kind: 'exponential', baseMs: 1000, maxMs: 60_000 } as const;
    for (const [attempt, cap] of [
      [0, 1000],
      [3, 8000],
      [10, 60_000],
    ]) {
      const xs = Array.from({ length: 20_000 }, () => reconnectDelayMs(p, attempt, rng));
      expect(Math.max(...xs)).toBeLessThanOrEqual(cap);
      expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      expect(Math.abs(mean - cap / 2) / (cap / 2)).toBeLessThan(0.02); // U(0, cap) has mean cap/2
    }
  });
});
