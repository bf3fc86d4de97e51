import { describe, expect, it } from 'vitest';
import { PromText } from '../../src/metrics/prometheus.js';
import { parseNodeMetrics } from '../../src/run/collector.js';

describe('parseNodeMetrics', () => {
  it('keeps requests by route and status and the process CPU, and nothing else', () => {
    const base = { node: 'web-1', role: 'web', tier: 'web-agent' };
    const text = new PromText()
      .metric('rmmscale_requests_total', 'counter', 'h', [
        { labels: { ...base, route: 'checkin', status: '200' }, value: 40 },
        { labels: { ...base, route: 'checkin', status: '503' }, value: 4 },
        { labels: { ...base, route: 'proxy:agent', status: '200' }, value: 2 },
      ])
      .metric('process_cpu_seconds_total', 'counter', 'h', [{ labels: base, value: 1.5 }])
      .metric('rmmscale_inflight', 'gauge', 'h', [{ labels: base, value: 9 }])
      .toString();
    const c = parseNodeMetrics(text, 1234);
    expect(c.atMs).toBe(1234);
    expect(c.cpuSec).toBe(1.5);
    expect([...c.requests].map(([route, byStatus]) => [route, [...byStatus]])).toEqual([
      ['checkin', [[200, 40], [503, 4]]],
      ['proxy:agent', [[200, 2]]],
    ]);
  });
});
