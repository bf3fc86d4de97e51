import { describe, expect, it } from 'vitest';
import { decodeHistogram } from '../../src/metrics/histogram.js';
import { SwarmRecorder } from '../../src/swarm/recorder.js';

describe('coordinated-omission correction', () => {
  it('measures latency from the intended send time, and keeps the service time beside it', () => {
    const rec = new SwarmRecorder(0, 10);
    // Intended at 0 ms, held back by a stall until 100 ms, answered at 150 ms.
    rec.scheduled();
    rec.sent(100 - 0);
    rec.done('checkin', 0, 100, 150, true);
    // On time: intended 200, sent 200, answered 205.
    rec.scheduled();
    rec.sent(0);
    rec.done('checkin', 200, 200, 205, true);
    const iv = rec.takeInterval(1000);
    const corrected = decodeHistogram(iv.ops.checkin.histograms.corrected);
    const service = decodeHistogram(iv.ops.checkin.histograms.service);
    expect(corrected.maxValue).toBeGreaterThanOrEqual(149_950);
    expect(corrected.maxValue).toBeLessThanOrEqual(150_050); // 150 ms, not the 50 ms a closed-loop tool shows
    expect(service.maxValue).toBeGreaterThanOrEqual(49_975);
    expect(service.maxValue).toBeLessThanOrEqual(50_025);
    expect(corrected.minNonZeroValue).toBe(5000);
    expect(service.minNonZeroValue).toBe(5000);
    expect(iv.late).toBe(1); // 100 ms after intended > 10 ms threshold
    expect(iv.target).toBe(2);
    expect(iv.attempted).toBe(2);
    expect(iv.completed).toBe(2);
  });

  it('a stalled closed-loop sender would report 1 slow request; the corrected view reports every one it delayed', () => {
    // 100/s intended; the generator stalls 1 s, then sends the 100 backlog at once, each answered in 1 ms.
    const rec = new SwarmRecorder(0, 10);
    for (let i = 0; i < 100; i++) {
      const intended = i * 10;
      rec.scheduled();
      rec.sent(1000 - intended);
      rec.done('checkin', intended, 1000, 1001, true);
    }
    const iv = rec.takeInterval(2000);
    const corrected = decodeHistogram(iv.ops.checkin.histograms.corrected);
    const service = decodeHistogram(iv.ops.checkin.histograms.service);
    // Service time says every request took 1 ms; the truth is a median of ~0.5 s.
    expect(service.getValueAtPercentile(99)).toBe(1000);
    expect(corrected.getValueAtPercentile(50)).toBeGreaterThanOrEqual(500_000);
    expect(corrected.getValueAtPercentile(50)).toBeLessThanOrEqual(511_500);
    expect(iv.late).toBe(99); // all but the one intended at 990 ms (10 ms late is not over the threshold)
  });

  it('counts drops separately from failures, with the reason, and resets per interval', () => {
    const rec = new SwarmRecorder(0, 10);
    rec.scheduled();
    rec.drop('inflight-cap');
    rec.scheduled();
    rec.sent(0);
    rec.done('checkin', 0, 0, 3, false, 'http-503');
    const iv = rec.takeInterval(1000);
    expect(iv).toMatchObject({ target: 2, attempted: 1, dropped: 1, failed: 1, completed: 0, errors: { 'dropped:inflight-cap': 1, 'http-503': 1 } });
    const next = rec.takeInterval(2000);
    expect(next).toMatchObject({ target: 0, attempted: 0, dropped: 0, failed: 0, errors: {}, fromMs: 1000, toMs: 2000 });
  });
});
