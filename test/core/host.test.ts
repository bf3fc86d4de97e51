import { describe, expect, it } from 'vitest';
import { HostCpuSampler, parseProcStatCpu } from '../../src/core/host.js';

// user nice system idle iowait irq softirq steal guest guest_nice
const STAT_A = 'cpu  1000 0 500 8000 100 0 100 300 50 0\ncpu0 500 0 250 4000 50 0 50 150 25 0\nintr 1\n';
const STAT_B = 'cpu  1600 0 700 8400 100 0 100 1100 90 0\ncpu0 800 0 350 4200 50 0 50 550 45 0\nintr 2\n';

describe('host CPU accounting from /proc/stat', () => {
  it('reads busy, steal and total from the aggregate line, guest time not counted twice', () => {
    // total = 1000+0+500+8000+100+0+100+300 = 10,000; idle+iowait = 8,100.
    expect(parseProcStatCpu(STAT_A)).toEqual({ busy: 1900, steal: 300, total: 10_000 });
  });

  it('reads a kernel without the steal field as no steal', () => {
    expect(parseProcStatCpu('cpu  10 0 10 80 0 0 0\n')).toEqual({ busy: 20, steal: 0, total: 100 });
  });

  it('gives null for text that is not /proc/stat', () => {
    expect(parseProcStatCpu(null)).toBeNull();
    expect(parseProcStatCpu('intr 1\n')).toBeNull();
    expect(parseProcStatCpu('cpu  a b c d\n')).toBeNull();
  });

  it('samples shares of the interval between two reads', () => {
    const texts = [STAT_A, STAT_B, STAT_B];
    const sampler = new HostCpuSampler(() => texts.shift() ?? null);
    // Δtotal = 2,000 (user 600, system 200, idle 400, steal 800); busy = 1,600.
    expect(sampler.sample()).toEqual({ busy: 0.8, steal: 0.4 });
    // No time passed: no sample rather than 0/0.
    expect(sampler.sample()).toBeNull();
    // Nothing to read: null.
    expect(sampler.sample()).toBeNull();
  });
});
