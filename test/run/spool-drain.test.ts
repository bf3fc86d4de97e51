import { describe, expect, it } from 'vitest';
import { spooledOf, waitForSpools, type SpoolReading } from '../../src/run/spool-drain.js';

describe('the run waits for the relays to forward their spooled telemetry before its ledger', () => {
  it('reads telemetry-spooled from a node\'s /metrics text, and null when the node publishes none', () => {
    const text = [
      '# TYPE rmmscale_role_gauge gauge',
      'rmmscale_role_gauge{node="relay-1",gauge="telemetry-buffered"} 12',
      'rmmscale_role_gauge{node="relay-1",gauge="telemetry-spooled"} 340',
    ].join('\n');
    expect(spooledOf(text)).toBe(340);
    expect(spooledOf('rmmscale_role_gauge{node="relay-1",gauge="tunnels-open"} 3')).toBeNull();
  });

  it('polls until every relay reads 0; a relay that does not answer holds nothing it can forward', async () => {
    const script: SpoolReading[][] = [
      [{ node: 'relay-1', spooled: 500 }, { node: 'relay-2', spooled: null }],
      [{ node: 'relay-1', spooled: 20 }, { node: 'relay-2', spooled: null }],
      [{ node: 'relay-1', spooled: 0 }, { node: 'relay-2', spooled: null }],
    ];
    let reads = 0;
    const out = await waitForSpools(async () => script[Math.min(reads++, script.length - 1)], 5000, 1);
    expect(out.drained).toBe(true);
    expect(out.left).toEqual([]);
    expect(reads).toBe(3);
  });

  it('gives up at its limit and says what each relay still held', async () => {
    let t = 0;
    const out = await waitForSpools(async () => [{ node: 'relay-1', spooled: 0 }, { node: 'relay-2', spooled: 77 }], 1000, 1, () => (t += 300));
    expect(out.drained).toBe(false);
    expect(out.left).toEqual([{ node: 'relay-2', spooled: 77 }]);
    expect(out.waitedMs).toBeGreaterThanOrEqual(1000);
  });
});
