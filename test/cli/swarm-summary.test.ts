import { describe, expect, it } from 'vitest';
import { renderSummary } from '../../src/cli/commands/swarm.js';
import { createLatencyHistogram, recordUs, summarize, type LatencySummary } from '../../src/metrics/histogram.js';
import type { OpStats } from '../../src/metrics/op-stats.js';
import type { SwarmResult } from '../../src/swarm/result.js';

/**
 * TEST INPUT: a hand-built swarm result carrying only what `renderSummary` reads. Latencies go
 * through a real HDR histogram: 1..1000 ms, one each, so every percentile is known (p95 = 950 ms,
 * within the histogram's 0.1%).
 */
function latency(): LatencySummary {
  const h = createLatencyHistogram();
  for (let ms = 1; ms <= 1000; ms++) recordUs(h, ms * 1000);
  return summarize(h);
}

function swarmResult(l: LatencySummary): SwarmResult {
  const op: OpStats = { count: 1000, completed: 1000, failed: 0, errorRate: 0, latency: l, serviceTime: l, histograms: { corrected: '', service: '' } };
  const partial = {
    config: { closedLoop: false },
    summary: { targetRatePerSec: 100, achievedRatePerSec: 100, intended: 1000, attempted: 1000, completed: 1000, failed: 0, late: 0, dropped: 0, errorRate: 0, latency: l, serviceTime: l },
    ops: { checkin: op },
    errors: {},
    generator: { workers: [], schedulingLag: l, schedulingLagStealFree: null, hostCpuMean: null, hostStealMean: null, hostStealMax: null },
    reconnect: null,
    verdict: { trustworthy: true, generatorBound: false, hostBound: false, sutFailed: false, reasons: [], warnings: [] },
  };
  return partial as unknown as SwarmResult;
}

describe('rmmscale swarm: the summary table', () => {
  it('prints p50, p90, p95, p99, p99.9 and max per operation, then the service-time p99', () => {
    const lines = renderSummary(swarmResult(latency())).split('\n');
    expect(lines).toContain('operation       count    failed  p50      p90      p95      p99      p99.9    max      service p99');
    expect(lines).toContain('checkin         1000     0       500ms    900ms    950ms    990ms    999ms    1.00s    990ms');
  });

  it('a summary without p95Us (written before p95 was recorded) shows "–" there', () => {
    const { p95Us: _dropped, ...old } = latency();
    const lines = renderSummary(swarmResult(old)).split('\n');
    expect(lines).toContain('checkin         1000     0       500ms    900ms    –        990ms    999ms    1.00s    990ms');
  });
});
