import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AnalyticsStore, ALERT_RULE } from '../../src/stack/analytics/analytics-store.js';
import { telemetryCpuPct } from '../../src/swarm/transports/ws-tunnels.js';
import type { TelemetrySample } from '../../src/stack/types.js';

const dir = mkdtempSync(join(tmpdir(), 'rmmscale-analytics-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sample = (agentId: string, seq: number, cpuPct: number, sentMs = 1000 + seq): TelemetrySample => ({ agentId, relay: 'relay-1', atMs: sentMs + 5, cpuPct, memPct: 40, seq, sentMs });

describe('AnalyticsStore', () => {
  it('stores each frame once per key (agent + seq) and raises one alert per stored frame at or over the rule', () => {
    const store = new AnalyticsStore(join(dir, 'a.sqlite'));
    try {
      expect(store.ingest([sample('a', 1, 10), sample('a', 2, 95), sample('b', 1, 99), sample('b', 2, 94)], 5000)).toEqual({ stored: 4, duplicates: 0, alerts: 2 });
      // A resend after a lost ack: the key is stored already, so no second row and no second alert.
      expect(store.ingest([sample('a', 2, 95), sample('a', 3, 100)], 6000)).toEqual({ stored: 1, duplicates: 1, alerts: 1 });
      expect(store.ledgerKeys(0, null, 100)).toEqual([
        { agentId: 'a', seq: 1, copies: 1 },
        { agentId: 'a', seq: 2, copies: 1 },
        { agentId: 'a', seq: 3, copies: 1 },
        { agentId: 'b', seq: 1, copies: 1 },
        { agentId: 'b', seq: 2, copies: 1 },
      ]);
      // Paging: after a key, from a seq.
      expect(store.ledgerKeys(2, { agentId: 'a', seq: 2 }, 2)).toEqual([
        { agentId: 'a', seq: 3, copies: 1 },
        { agentId: 'b', seq: 2, copies: 1 },
      ]);
      // Alerts keep the agent's send time and their own creation time: [id, sentMs, createdMs].
      expect(store.alerts(0, 10)).toEqual([
        [1, 1002, 5000],
        [2, 1001, 5000],
        [3, 1003, 6000],
      ]);
      expect(store.alerts(2, 10)).toEqual([[3, 1003, 6000]]);
    } finally {
      store.close();
    }
  });

  it('a frame without a send time is timed from the relay arrival', () => {
    const store = new AnalyticsStore(join(dir, 'b.sqlite'));
    try {
      store.ingest([{ agentId: 'c', relay: 'relay-2', atMs: 7000, cpuPct: 97, memPct: 1, seq: 1 }], 7300);
      expect(store.alerts(0, 10)).toEqual([[1, 7000, 7300]]);
    } finally {
      store.close();
    }
  });
});

describe('telemetryCpuPct: alert-worthy telemetry, deterministic from the agent and the frame', () => {
  it('the same agent and frame give the same value; about 5% of frames reach the alert rule', () => {
    expect(telemetryCpuPct(123456789, 7)).toBe(telemetryCpuPct(123456789, 7));
    let alerting = 0;
    const seen = new Set<number>();
    const n = 20_000;
    for (let a = 0; a < 200; a++) {
      for (let k = 1; k <= n / 200; k++) {
        const v = telemetryCpuPct((a * 2654435761) >>> 0, k);
        seen.add(v);
        if (v >= ALERT_RULE.cpuPctAtLeast) alerting++;
      }
    }
    // Every whole value 0–99 and nothing else.
    expect([...seen].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    // 5% of 20,000 = 1,000; a binomial's σ is about 31.
    expect(alerting).toBeGreaterThan(850);
    expect(alerting).toBeLessThan(1150);
  });
});
