import { describe, expect, it } from 'vitest';
import { parseSelector } from '../../src/metrics/prom-selector.js';
import { MappedNodeSeries } from '../../src/run/mapped-node.js';

const signals = {
  requests: parseSelector('req_total'),
  errors: parseSelector('req_total{code="500"}'),
  busyWorkers: parseSelector('busy'),
  workers: 4,
  utilization: null,
  queueDepth: parseSelector('queue'),
  latency: { histogram: parseSelector('lat_ms'), unitSec: 0.001 },
};

/** One scrape: `ok` and `failed` requests so far, busy workers, queue, and the latency buckets (≤ 10 ms, ≤ 100 ms, all). */
const text = (ok: number, failed: number, busy: number, queue: number, b: [number, number, number]): string =>
  `req_total{code="200"} ${ok}\nreq_total{code="500"} ${failed}\nbusy ${busy}\nqueue ${queue}\n` +
  `lat_ms_bucket{le="10"} ${b[0]}\nlat_ms_bucket{le="100"} ${b[1]}\nlat_ms_bucket{le="+Inf"} ${b[2]}\n`;

describe('MappedNodeSeries', () => {
  it('turns scrapes into seconds, and a window into the increase between the scrapes at its edges', () => {
    const s = new MappedNodeSeries(signals, 'm.yaml');
    expect(s.push(text(0, 0, 0, 0, [0, 0, 0]), 10_000, 10)).toBeNull();
    expect(s.push(text(100, 2, 3, 5, [60, 100, 102]), 11_000, 11)).toMatchObject({ tSec: 11, requestsPerSec: 102, errorsPerSec: 2, busyWorkers: 3, queueDepth: 5, utilization: 0.75, routes: {} });
    s.push(text(300, 2, 4, 9, [100, 300, 302]), 12_000, 12);
    s.push(text(500, 4, 4, 1, [150, 480, 504]), 13_000, 13);
    expect(s.unmatched).toEqual([]);
    // From the scrape at 11 s to the one at 13 s: 402 requests, 2 errors; buckets +90, +380, +402.
    const w = s.window(11.2, 12.9);
    expect(w).toEqual({
      mapping: 'm.yaml',
      requests: 402,
      errors: 2,
      // p50: rank 201 in (10 ms, 100 ms], 290 of its own above 90 → 10 + 90 × 111/290 = 44.448 ms;
      // p90: rank 361.8 → 10 + 90 × 271.8/290 = 94.352 ms; p95, p99: ranks 381.9, 398 are in +Inf → 100 ms.
      latency: { count: 402, p50Us: 44_448, p90Us: 94_352, p95Us: 100_000, p99Us: 100_000 },
    });
  });

  it('a signal no scrape has matched yet is reported; one matched once is not', () => {
    const s = new MappedNodeSeries(signals, 'm.yaml');
    s.push('req_total{code="200"} 1\n', 0, 0);
    expect(s.unmatched).toEqual(['busyWorkers', 'queueDepth', 'latency']);
    s.push('req_total{code="200"} 2\nbusy 1\n', 1000, 1);
    expect(s.unmatched).toEqual(['queueDepth', 'latency']);
  });
});
