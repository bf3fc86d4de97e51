import { describe, expect, it } from 'vitest';
import type { HostCpuSample } from '../../src/core/host.js';
import { QUIET_SAMPLES, QUIET_WAIT_MAX_MS, remeasureDecision, waitForQuietHost } from '../../src/run/remeasure.js';

/** A sampler replaying the given steal shares (null: the host cannot be read), and a fake clock. */
function replay(steals: Array<number | null>): { sample: () => HostCpuSample | null; sleep: (ms: number) => Promise<void>; slept: () => number; calls: () => number } {
  let i = 0;
  let sleptMs = 0;
  let calls = 0;
  return {
    sample: () => {
      calls++;
      if (calls === 1) return null; // the priming read gives no interval
      const s = steals[Math.min(i++, steals.length - 1)];
      return s === null ? null : { busy: 0.5, steal: s };
    },
    sleep: async (ms) => {
      sleptMs += ms;
    },
    slept: () => sleptMs,
    calls: () => calls,
  };
}

describe('re-measuring an untrustworthy search window', () => {
  it('gives the generator one more window, and host steal two, each after the host settles', () => {
    // Generator trouble on a quiet host: once more, no wait.
    expect(remeasureDecision(0, 0)).toEqual({ again: true, waitForQuiet: false });
    expect(remeasureDecision(1, 0)).toEqual({ again: false, waitForQuiet: false });
    // A host that does not report steal: the same.
    expect(remeasureDecision(0, null)).toEqual({ again: true, waitForQuiet: false });
    expect(remeasureDecision(1, null).again).toBe(false);
    // Steal above the verdict's 5% limit: twice, waiting each time.
    expect(remeasureDecision(0, 0.122)).toEqual({ again: true, waitForQuiet: true });
    expect(remeasureDecision(1, 0.158)).toEqual({ again: true, waitForQuiet: true });
    expect(remeasureDecision(2, 0.158)).toEqual({ again: false, waitForQuiet: true });
    // Steal between the warning (1%) and the limit: one more, after a wait; exactly 5% is not over.
    expect(remeasureDecision(0, 0.03)).toEqual({ again: true, waitForQuiet: true });
    expect(remeasureDecision(1, 0.05)).toEqual({ again: false, waitForQuiet: true });
    expect(remeasureDecision(0, 0.01).waitForQuiet).toBe(false);
    // A burst: 0.7% over the window but 12% in one second is waited out too, with one re-measure.
    expect(remeasureDecision(0, 0.007, 0.12)).toEqual({ again: true, waitForQuiet: true });
    expect(remeasureDecision(1, 0.007, 0.12).again).toBe(false);
    expect(remeasureDecision(0, 0.007, 0.05).waitForQuiet).toBe(false);
  });

  it('waits until three consecutive seconds are quiet; a noisy second starts the count again', async () => {
    const r = replay([0.2, 0.004, 0.009, 0.15, 0.0, 0.01, 0.002, 0.3]);
    const q = await waitForQuietHost({ sample: r.sample, sleep: r.sleep });
    // Seconds 1–4 break the run at 4; 5, 6, 7 are quiet (1% counts as quiet): settled after 7 s.
    expect(q).toEqual({ settled: true, waitedMs: 7000, lastSteal: 0.002 });
    expect(r.slept()).toBe(7000);
    expect(QUIET_SAMPLES).toBe(3);
  });

  it('gives up at its bound on a host that stays busy, and says how busy', async () => {
    const r = replay([0.08]);
    const q = await waitForQuietHost({ sample: r.sample, sleep: r.sleep, maxMs: 5000 });
    expect(q).toEqual({ settled: false, waitedMs: 5000, lastSteal: 0.08 });
    const d = await waitForQuietHost({ sample: replay([0.08]).sample, sleep: replay([]).sleep });
    expect(d.waitedMs).toBe(QUIET_WAIT_MAX_MS);
    expect(d.settled).toBe(false);
  });

  it('does not wait on a host it cannot read, and stops at once when aborted', async () => {
    const r = replay([null]);
    expect(await waitForQuietHost({ sample: r.sample, sleep: r.sleep })).toEqual({ settled: true, waitedMs: 1000, lastSteal: null });
    const ac = new AbortController();
    const b = replay([0.2]);
    const sleep = async (ms: number): Promise<void> => {
      await b.sleep(ms);
      if (b.slept() >= 2000) ac.abort();
    };
    expect(await waitForQuietHost({ sample: b.sample, sleep, signal: ac.signal })).toEqual({ settled: false, waitedMs: 2000, lastSteal: 0.2 });
  });
});
