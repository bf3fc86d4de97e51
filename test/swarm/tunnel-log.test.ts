import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/random.js';
import { homeProbeDelayMs, parseReturnHome } from '../../src/swarm/reconnect.js';
import { reconnectAfter, reconnectCurve, reconnectFigures, type TunnelEvent } from '../../src/swarm/tunnel-log.js';

const ev = (kind: TunnelEvent['kind'], agentId: string, relay: number, atMs: number): TunnelEvent => ({ kind, agentId, relay, atMs });
const home = (id: string): number => (id.startsWith('a') ? 0 : 1);

describe('reconnectAfter', () => {
  // Fault at 1,000 on relay 0; four of its agents drop, three come back (on relay 1); b1 on relay 1 drops too (not the fault's).
  const log = [
    ev('drop', 'a1', 0, 1_001),
    ev('drop', 'a2', 0, 1_001),
    ev('drop', 'a3', 0, 1_002),
    ev('drop', 'a4', 0, 1_002),
    ev('drop', 'b1', 1, 1_010),
    ev('back', 'a1', 1, 1_400),
    ev('back', 'b1', 1, 1_500),
    ev('back', 'a2', 1, 2_100),
    ev('back', 'a3', 1, 2_900),
    ev('home', 'a1', 0, 9_000),
    ev('drop', 'a9', 0, 500), // before the fault
  ];
  const q = { fromMs: 1_000, untilMs: 10_000, relay: 0 };

  it('counts the agents the fault dropped, ranks those never back last, and counts connects by second from the fault', () => {
    const d = reconnectAfter(log, q, home);
    expect(reconnectFigures(d)).toEqual({ agents: 4, t50Ms: 1100, t90Ms: null, t99Ms: null, peakConnectsPerSec: 2, returnedHome: 1 });
    expect(d.dropped).toEqual(['a1', 'a2', 'a3', 'a4']);
    expect([...d.back]).toEqual([
      ['a1', [400, 1]],
      ['a2', [1100, 1]],
      ['a3', [1900, 1]],
    ]);
    expect(d.returnedHomeIds).toEqual(['a1']);
  });

  it('a disconnect counts its cuts only; an episode ends where the next fault on the node begins', () => {
    const cuts = [ev('cut', 'a1', 0, 1_000), ev('drop', 'a2', 0, 1_000), ev('back', 'a1', 0, 1_250)];
    expect(reconnectFigures(reconnectAfter(cuts, { fromMs: 1_000, untilMs: 5_000, relay: null }, home))).toEqual({ agents: 1, t50Ms: 250, t90Ms: 250, t99Ms: 250, peakConnectsPerSec: 1, returnedHome: 0 });
    expect(reconnectAfter(log, { ...q, untilMs: 2_000 }, home).back.size).toBe(1);
  });

  it('draws the curve in 250 ms steps: agents back (cumulative) and every connect', () => {
    const d = reconnectAfter(log, { ...q, untilMs: 3_000 }, home);
    expect(reconnectCurve(log, { ...q, untilMs: 3_000 }, d)).toEqual({ stepMs: 250, back: [0, 1, 1, 1, 2, 2, 2, 3], connects: [0, 1, 1, 0, 1, 0, 0, 1] });
  });
});

describe('return home policy', () => {
  it('parses BASE:MAX and off, and names the form otherwise', () => {
    expect(parseReturnHome('--return-home', '5s:60s')).toEqual({ baseMs: 5000, maxMs: 60000 });
    expect(parseReturnHome('--return-home', 'off')).toBeNull();
    for (const v of ['5s', '60s:5s', '0s:1s', 'soon:1s'])
      expect(() => parseReturnHome('--return-home', v)).toThrow(`--return-home: expected "BASE:MAX" (e.g. 5s:60s, BASE above 0 and at most MAX) or "off", got "${v}"`);
  });

  it('waits d·U(½, 1), d doubling from BASE up to MAX', () => {
    const p = { baseMs: 1000, maxMs: 4000 };
    const rng = new Rng('probe');
    for (const [probe, d] of [[0, 1000], [1, 2000], [2, 4000], [9, 4000]] as const) {
      for (let i = 0; i < 200; i++) {
        const ms = homeProbeDelayMs(p, probe, rng);
        expect(ms).toBeGreaterThanOrEqual(d / 2);
        expect(ms).toBeLessThan(d);
      }
    }
  });
});
