import { describe, expect, it } from 'vitest';
import { decideVerdict, type RigVerdictInput } from '../../src/swarm/result.js';

const OK: RigVerdictInput = {
  attempted: 10_000,
  completed: 10_000,
  failed: 0,
  late: 0,
  droppedByCap: 0,
  workers: [{ cpuMean: 0.4, eldP99MsMax: 1.2, exitedEarly: false }],
  hostCpuMean: 0.5,
  hostStealMean: 0.002,
  hostStealMax: 0.01,
  lagP99Us: 1500,
  lateThresholdMs: 10,
  maxErrorRate: 0.01,
  interrupted: false,
};

describe('the verdict', () => {
  it('trusts a run that kept its schedule', () => {
    const { trust, ...rest } = decideVerdict(OK);
    expect(rest).toEqual({ trustworthy: true, generatorBound: false, hostBound: false, sutFailed: false, reasons: [], warnings: [] });
    expect(trust).toMatchObject({ trustworthy: true, judgedAs: 'clean', bounds: null });
    expect(trust?.error).toMatchObject({ lagP99Us: 1500, latencyBoundUs: 1500 + 1200, deliveredRatio: 1 });
  });

  it.each([
    [{ droppedByCap: 1 }, '1 sends were dropped at the in-flight cap: the generator could not hold the offered load open'],
    [{ late: 101, lagP99Us: 25_000 }, '1.0% of sends left more than 10 ms after their intended time (limit 1%); scheduling lag p99 25.0 ms'],
    [{ workers: [{ cpuMean: 0.95, eldP99MsMax: 3, exitedEarly: false }] }, '1 worker(s) used more than 90% of a core on average: add --workers or lower the load'],
    [{ workers: [{ cpuMean: 0.2, eldP99MsMax: 1, exitedEarly: true }] }, '1 worker process(es) exited before the end: their agents stopped sending'],
    [
      // A stall with too few sends to trip the late-send rule (the swarm's first second at 2,000 connects/s).
      { late: 6, attempted: 6, lagP99Us: 3_200_000, workers: [{ cpuMean: 0.5, eldP99MsMax: 4609.5, exitedEarly: false }, { cpuMean: 0.5, eldP99MsMax: 999, exitedEarly: false }] },
      "1 worker(s) had their event loop stalled for up to 4610 ms (limit 1000 ms): latencies measured in them include the generator's own delay",
    ],
  ] as Array<[Partial<RigVerdictInput>, string]>)('calls %j generator-bound, saying why', (change, reason) => {
    const v = decideVerdict({ ...OK, ...change });
    expect(v.generatorBound).toBe(true);
    expect(v.trustworthy).toBe(false);
    expect(v.reasons).toEqual([reason]);
  });

  it('trusts a closed loop (--rate max) as a lower bound, even with its workers saturated, and says so', () => {
    const v = decideVerdict({ ...OK, closedLoop: true, workers: [{ cpuMean: 0.99, eldP99MsMax: 3, exitedEarly: false }] });
    expect(v).toMatchObject({ trustworthy: true, generatorBound: true });
    expect(v.trust?.judgedAs).toBe('closed-loop');
    expect(v.warnings).toEqual([
      'closed loop (--rate max): saturated by design; the achieved rate is a lower bound on what the target served, and the generator may have been the limit',
    ]);
    // …but not when a worker died: its agents stopped sending.
    expect(decideVerdict({ ...OK, closedLoop: true, workers: [{ cpuMean: 0.5, eldP99MsMax: 3, exitedEarly: true }] }).trustworthy).toBe(false);
  });

  it('needs both more than 1% and at least 10 late sends', () => {
    expect(decideVerdict({ ...OK, attempted: 90, completed: 90, late: 2 }).generatorBound).toBe(false); // 2.2%, but 2
    expect(decideVerdict({ ...OK, late: 100 }).generatorBound).toBe(false); // exactly 1%
    expect(decideVerdict({ ...OK, attempted: 500, completed: 500, late: 10 }).generatorBound).toBe(true); // 2%, 10
  });

  it('calls a saturated host host-bound, and an erroring target failed, separately', () => {
    const host = decideVerdict({ ...OK, hostCpuMean: 0.97 });
    expect(host).toMatchObject({ trustworthy: false, hostBound: true, generatorBound: false });
    const sut = decideVerdict({ ...OK, completed: 9800, failed: 200 });
    expect(sut).toMatchObject({ trustworthy: true, sutFailed: true, warnings: ['error rate 2.00% is above the allowed 1.00%'] });
  });

  it('calls a host whose hypervisor stole over 5% host-bound, warns from 1%, and says nothing below', () => {
    const stolen = decideVerdict({ ...OK, hostStealMean: 0.083 });
    expect(stolen).toMatchObject({ trustworthy: false, hostBound: true, generatorBound: false, warnings: [] });
    expect(stolen.reasons).toEqual([
      "the hypervisor took 8.3% of this machine's CPU time (steal; limit 5%): the generator and the target stood still for it, so latencies include the neighbours' load",
    ]);
    const some = decideVerdict({ ...OK, hostStealMean: 0.05 }); // exactly the limit: a warning
    expect(some).toMatchObject({ trustworthy: true, hostBound: false, reasons: [] });
    expect(some.warnings).toEqual(["the hypervisor took 5.0% of this machine's CPU time (steal; over 1%): tail latencies and scheduling lag may include it"]);
    expect(decideVerdict({ ...OK, hostStealMean: 0.01 }).warnings).toEqual([]);
    const { trust: _t1, ...noSteal } = decideVerdict({ ...OK, hostStealMean: null, hostStealMax: null });
    const { trust: _t2, ...ok } = decideVerdict(OK);
    expect(noSteal).toEqual(ok);
  });

  it('names the worst second when it went over 5%, and warns of it on its own when the mean stayed low', () => {
    // 0.7% over the run, 25% in one second: trustworthy, but that second's tail is the neighbours'.
    const burst = decideVerdict({ ...OK, hostStealMean: 0.007, hostStealMax: 0.25 });
    expect(burst).toMatchObject({ trustworthy: true, hostBound: false, reasons: [] });
    expect(burst.warnings).toEqual([
      "the hypervisor took 25.0% of this machine's CPU time in the worst second (steal; 0.7% over the run): that second's latencies and scheduling lag include it",
    ]);
    // Exactly 5% in the worst second: nothing.
    expect(decideVerdict({ ...OK, hostStealMean: 0.007, hostStealMax: 0.05 }).warnings).toEqual([]);
    // Beside a warning or a reason, the worst second joins that line rather than adding one.
    expect(decideVerdict({ ...OK, hostStealMean: 0.02, hostStealMax: 0.12 }).warnings).toEqual([
      "the hypervisor took 2.0% of this machine's CPU time, up to 12.0% in its worst second (steal; over 1%): tail latencies and scheduling lag may include it",
    ]);
    expect(decideVerdict({ ...OK, hostStealMean: 0.083, hostStealMax: 0.3 }).reasons).toEqual([
      "the hypervisor took 8.3% of this machine's CPU time, up to 30.0% in its worst second (steal; limit 5%): the generator and the target stood still for it, so latencies include the neighbours' load",
    ]);
  });
});
