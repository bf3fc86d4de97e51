import { describe, expect, it } from 'vitest';
import { ClosedLoop, type ClosedLoopPorts } from '../../src/swarm/closed-loop.js';

/** A hand-driven clock and timer list: the loop's behaviour by event order, with no wall clock. */
function rig(o: { connections: number; agentCount: number; endMs: number; startAtMs: number }) {
  let nowMs = o.startAtMs;
  const timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  const inflight: Array<{ slot: number; atMs: number; next: () => void }> = [];
  const sent: Array<{ slot: number; atMs: number }> = [];
  let ended = 0;
  const ports: ClosedLoopPorts = {
    connections: o.connections,
    agentCount: o.agentCount,
    endMs: o.endMs,
    now: () => nowMs,
    send: (slot, atMs, next) => {
      sent.push({ slot, atMs });
      inflight.push({ slot, atMs, next });
    },
    end: () => ended++,
    setTimer: (fn, ms) => {
      const t = { at: nowMs + ms, fn, live: true };
      timers.push(t);
      return t as unknown as NodeJS.Timeout;
    },
    clearTimer: (t) => {
      (t as unknown as { live: boolean }).live = false;
    },
  };
  const advance = (toMs: number): void => {
    nowMs = toMs;
    for (const t of timers) {
      if (t.live && t.at <= nowMs) {
        t.live = false;
        t.fn();
      }
    }
  };
  /** The oldest request in flight ends now. */
  const complete = (): void => inflight.shift()!.next();
  return { loop: new ClosedLoop(ports), advance, complete, inflight, sent, ended: () => ended };
}

describe('closed loop (--rate max)', () => {
  it('waits for t = 0, then keeps exactly one request in flight per connection, agents taking turns', () => {
    const r = rig({ connections: 3, agentCount: 5, endMs: 1000, startAtMs: -20 });
    r.loop.start();
    expect(r.sent).toEqual([]); // before the profile's start
    r.advance(0);
    expect(r.sent.map((s) => s.slot)).toEqual([0, 1, 2]);
    expect(r.inflight).toHaveLength(3);
    r.advance(10);
    r.complete();
    r.complete();
    // Each completion sends the next turn at once, intended when it leaves (latency = service time).
    expect(r.sent.slice(3)).toEqual([
      { slot: 3, atMs: 10 },
      { slot: 4, atMs: 10 },
    ]);
    expect(r.inflight).toHaveLength(3);
    r.complete();
    expect(r.sent[5].slot).toBe(0); // wraps round the agents
  });

  it('sends nothing after the end and ends once, even with every connection hung', () => {
    const r = rig({ connections: 2, agentCount: 10, endMs: 1000, startAtMs: 0 });
    r.loop.start();
    expect(r.sent).toHaveLength(2);
    r.advance(999);
    expect(r.ended()).toBe(0);
    r.advance(1000); // nothing completed: the end timer ends it
    expect(r.ended()).toBe(1);
    r.complete(); // a late completion starts no new request
    r.complete();
    expect(r.sent).toHaveLength(2);
    expect(r.ended()).toBe(1);
  });

  it('ends from a completion at or after the end, without sending', () => {
    const r = rig({ connections: 1, agentCount: 1, endMs: 100, startAtMs: 0 });
    r.loop.start();
    r.advance(50);
    r.complete();
    expect(r.sent).toHaveLength(2);
    r.advance(100);
    expect(r.ended()).toBe(1);
    r.complete();
    expect(r.sent).toHaveLength(2);
    expect(r.ended()).toBe(1);
  });

  it('stops on Ctrl-C: no further sends, and no end of its own', () => {
    const r = rig({ connections: 2, agentCount: 4, endMs: 1000, startAtMs: 0 });
    r.loop.start();
    r.loop.stop();
    r.complete();
    r.advance(2000);
    expect(r.sent).toHaveLength(2);
    expect(r.ended()).toBe(0);
  });
});
