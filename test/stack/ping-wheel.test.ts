import { describe, expect, it } from 'vitest';
import { PingWheel } from '../../src/stack/relay/ping-wheel.js';

const tunnels = (n: number): { id: number }[] => Array.from({ length: n }, (_, id) => ({ id }));
const ids = (xs: { id: number }[]): number[] => xs.map((x) => x.id).sort((a, b) => a - b);

describe('PingWheel', () => {
  it('pings each tunnel exactly once per turn, a slot at a time, never all at once', () => {
    const wheel = new PingWheel<{ id: number }>(30);
    const all = tunnels(10_000);
    for (const t of all) wheel.add(t);
    const seen = new Map<number, number>();
    let largest = 0;
    for (let tick = 0; tick < 30; tick++) {
      const { ping, timedOut } = wheel.tick();
      expect(timedOut).toEqual([]);
      largest = Math.max(largest, ping.length);
      for (const t of ping) seen.set(t.id, (seen.get(t.id) ?? 0) + 1);
      for (const t of ping) wheel.answered(t);
    }
    expect(seen.size).toBe(10_000);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    // 10,000 over 30 slots: 334 at most in one tick, where one sweep sent 10,000.
    expect(largest).toBe(334);
  });

  it('drops a tunnel that did not answer by its next turn, and only that one', () => {
    const wheel = new PingWheel<{ id: number }>(3);
    const [a, b, c, d] = tunnels(4) as [{ id: number }, { id: number }, { id: number }, { id: number }];
    for (const t of [a, b, c, d]) wheel.add(t); // slots: a,d → 0; b → 1; c → 2
    expect(ids(wheel.tick().ping)).toEqual([0, 3]);
    wheel.answered(a); // d stays silent
    wheel.tick();
    wheel.tick();
    const turn2 = wheel.tick();
    expect(ids(turn2.timedOut)).toEqual([3]);
    expect(ids(turn2.ping)).toEqual([0]);
    expect(wheel.size).toBe(3);
  });

  it('forgets a closed tunnel, and a late pong for it changes nothing', () => {
    const wheel = new PingWheel<{ id: number }>(2);
    const [a, b] = tunnels(2) as [{ id: number }, { id: number }];
    wheel.add(a);
    wheel.add(b);
    wheel.tick(); // a pinged
    wheel.remove(a);
    wheel.answered(a);
    wheel.tick(); // b pinged
    expect(wheel.tick()).toEqual({ ping: [], timedOut: [] });
    expect(wheel.size).toBe(1);
  });

  it('a tunnel added twice is still pinged once per turn', () => {
    const wheel = new PingWheel<{ id: number }>(2);
    const [a] = tunnels(1) as [{ id: number }];
    wheel.add(a);
    wheel.add(a);
    expect(wheel.tick().ping).toEqual([a]);
    expect(wheel.tick().ping).toEqual([]);
    expect(wheel.size).toBe(1);
  });

  it('refuses a slot count that is not a positive integer', () => {
    expect(() => new PingWheel(0)).toThrow('slotCount must be a positive integer, got 0');
    expect(() => new PingWheel(1.5)).toThrow(RangeError);
  });
});
