import { describe, expect, it } from 'vitest';
import { judgeTrust, rigErrorBound, type RigFacts, type RigHealth, type SloMeasurement, type TrustBasis } from '../../src/swarm/generator-trust.js';

// A window of 20 s at 200 check-ins/s: 4,000 intended sends.
const FACTS: RigFacts = {
  intended: 4000,
  attempted: 4000,
  late: 0,
  timeouts: 0,
  completed: 4000,
  failed: 0,
  lagP99Us: 2_000,
  lagMaxUs: 6_000,
  eventLoopDelayMaxUs: 4_000,
  timeoutMs: 30_000,
  measuredSec: 20,
  hostCpus: 2,
  hostCpuMean: 0.4,
  hostStealMean: 0.001,
  hostStealMax: 0,
  workersDied: 0,
  closedLoop: false,
};
const CLEAN: RigHealth = { generatorBound: false, hostBound: false, reasons: [] };
// The case: 1.3% of sends more than 10 ms late, lag p99 12.9 ms.
const LATE: RigHealth = { generatorBound: true, hostBound: false, reasons: ['1.3% of sends left more than 10 ms after their intended time'] };
const LATE_FACTS: RigFacts = { ...FACTS, late: 52, lagP99Us: 12_900, lagMaxUs: 14_000, eventLoopDelayMaxUs: 6_000 };
const STOLEN: RigHealth = { generatorBound: false, hostBound: true, reasons: ['the hypervisor took 5.2%'] };
const SLO = { sloP99Us: 1_000_000, sloErrorRate: 0.01, sloMinAchievedRatio: 0.97 };
const PASS: SloMeasurement = { ...SLO, p99Us: 560_000, errorRate: 0, achievedRatio: 1 };
const BREACH: SloMeasurement = { ...SLO, p99Us: 2_712_000, errorRate: 0, achievedRatio: 0.77 };

describe('GeneratorTrust: the rig error bound', () => {
  it('adds lag max, event-loop max and the steal bound (steal max × CPUs × seconds a p99 request lived)', () => {
    const e = rigErrorBound({ ...LATE_FACTS, hostStealMax: 0.02 }, 2_712_000);
    // 0.02 × 2 CPUs × 3 s = 120 ms
    expect(e.stealBoundUs).toBe(120_000);
    expect(e.latencyBoundUs).toBe(14_000 + 6_000 + 120_000);
    expect(e.lateFraction).toBe(0.013);
    expect(e.deliveredRatio).toBe(1);
  });

  it('adds the stack\'s event-loop delays only when the host was saturated', () => {
    const saturated = judgeTrust({ rig: { ...CLEAN, hostBound: true }, facts: { ...FACTS, hostCpuMean: 0.97 }, slo: BREACH, stackDelayUs: 300_000 });
    expect(saturated.error).toMatchObject({ hostContentionBoundUs: 300_000, latencyBoundUs: 6_000 + 4_000 + 300_000 });
    expect(saturated.why).toContain("the stack's event loops on a saturated host 300 ms");
    const quiet = judgeTrust({ rig: CLEAN, facts: FACTS, slo: BREACH, stackDelayUs: 300_000 });
    expect(quiet.error).toMatchObject({ hostContentionBoundUs: 0, latencyBoundUs: 10_000 });
    // Host-limited nodes count as a saturated host too.
    expect(judgeTrust({ rig: CLEAN, facts: FACTS, slo: BREACH, stackDelayUs: 300_000, hostLimitedNodes: ['db'] }).error.hostContentionBoundUs).toBe(300_000);
  });

  it('never lets the steal bound exceed the latency itself', () => {
    expect(rigErrorBound({ ...FACTS, hostStealMax: 0.5 }, 200_000).stealBoundUs).toBe(200_000);
  });
});

describe('GeneratorTrust: the decision table', () => {
  const rows: Array<[string, RigHealth, Partial<RigFacts>, SloMeasurement | null, boolean, TrustBasis, number?]> = [
    ['clean rig, SLO met', CLEAN, {}, PASS, true, 'clean'],
    ['clean rig, clear breach', CLEAN, {}, BREACH, true, 'clean'],
    ['late sends, SLO met, load delivered', LATE, LATE_FACTS, PASS, true, 'pass-holds'],
    ['late sends, p99 2.7 s against 1 s', LATE, LATE_FACTS, BREACH, true, 'breach-holds'],
    ['late sends, p99 1,010 ms: 20 ms of rig error could hide it', LATE, LATE_FACTS, { ...PASS, p99Us: 1_010_000 }, false, 'could-flip'],
    ['late sends, SLO met, but 2% of sends never left', LATE, { ...LATE_FACTS, attempted: 3920 }, PASS, false, 'not-delivered'],
    ['steal 5.2% (worst second 18%), p99 9 s', STOLEN, { hostStealMean: 0.052, hostStealMax: 0.179 }, { ...BREACH, p99Us: 9_019_000 }, true, 'breach-holds'],
    ['steal worst second 18%, p99 1.4 s: steal could explain 720 ms', STOLEN, { hostStealMean: 0.052, hostStealMax: 0.179 }, { ...BREACH, p99Us: 1_400_000, achievedRatio: 0.99 }, false, 'could-flip'],
    ['host CPU 97% during a breach, the stack\'s event-loop delays unknown', { ...CLEAN, hostBound: true }, { hostCpuMean: 0.97 }, BREACH, false, 'could-flip'],
    ['host CPU 97%, p99 2.7 s, the stack\'s loops 300 ms late along the path', { ...CLEAN, hostBound: true }, { hostCpuMean: 0.97 }, BREACH, true, 'breach-holds', 300_000],
    ['host CPU 97%, p99 1.2 s, the stack\'s loops 300 ms late along the path', { ...CLEAN, hostBound: true }, { hostCpuMean: 0.97 }, { ...BREACH, p99Us: 1_200_000, achievedRatio: 0.99 }, false, 'could-flip', 300_000],
    ['host fine: the stack\'s own slow loops are the stack\'s, not the rig\'s', CLEAN, {}, { ...BREACH, p99Us: 1_200_000, achievedRatio: 0.99 }, true, 'clean', 300_000],
    ['host CPU 97% during a pass', { ...CLEAN, hostBound: true }, { hostCpuMean: 0.97 }, PASS, true, 'pass-holds'],
    ['a worker died', CLEAN, { workersDied: 1 }, PASS, false, 'incomplete'],
    ['no SLO, clean rig', CLEAN, {}, null, true, 'clean'],
    ['no SLO, late sends (a bare swarm that cannot keep up)', LATE, LATE_FACTS, null, false, 'rig-bound'],
    ['closed loop, hot workers', { generatorBound: true, hostBound: false, reasons: ['1 worker(s) used more than 90%'] }, { closedLoop: true }, null, true, 'closed-loop'],
  ];
  it.each(rows)('%s', (_name, rig, facts, slo, trustworthy, judgedAs, stackDelayUs) => {
    const t = judgeTrust({ rig, facts: { ...FACTS, ...facts }, slo, stackDelayUs });
    expect({ trustworthy: t.trustworthy, judgedAs: t.judgedAs }).toEqual({ trustworthy, judgedAs });
    expect(t.why.length).toBeGreaterThan(10);
  });

  it('states the SLO at both ends of the bound, with the numbers', () => {
    const t = judgeTrust({ rig: LATE, facts: LATE_FACTS, slo: BREACH });
    // p99: 2,712 − (14 + 6 + 0) ms; achieved: 0.77 + 1.3% late + 14 ms / 20 s pushed past the end
    expect(t.bounds).toEqual({ p99Us: [2_692_000, 2_712_000], errorRate: [0, 0], achievedRatio: [0.77, 0.77 + 0.013 + 0.0007] });
    expect(t.why).toBe('the breach holds with the rig\'s error removed: p99 2,692 ms > 1,000 ms; achieved 78.4% < 97.0% of offered (rig error: lag max 14 ms, event loop max 6 ms, steal 0 ms)');
  });

  it('an achieved-rate shortfall that late sends explain could flip', () => {
    // 96.5% achieved, but 1.3% of sends left late: up to 97.87% could have completed in time.
    const t = judgeTrust({ rig: LATE, facts: LATE_FACTS, slo: { ...PASS, achievedRatio: 0.965 } });
    expect(t.judgedAs).toBe('could-flip');
    expect(t.bounds?.achievedRatio[1]).toBeCloseTo(0.9787, 4);
  });

  it('discounts timeouts only when the rig error is a real share of the timeout', () => {
    const errs = { ...FACTS, failed: 300, completed: 3700, timeouts: 300 };
    const slo = { ...PASS, errorRate: 0.075 };
    // 20 ms of rig error against a 30 s timeout: the timeouts are the stack's.
    expect(judgeTrust({ rig: LATE, facts: { ...errs, lagMaxUs: 14_000, eventLoopDelayMaxUs: 6_000 }, slo }).judgedAs).toBe('breach-holds');
    // A 3.5 s stall against a 30 s timeout: those timeouts could be the rig's.
    const stalled = judgeTrust({ rig: LATE, facts: { ...errs, lagMaxUs: 3_500_000 }, slo });
    expect(stalled.judgedAs).toBe('could-flip');
    expect(stalled.bounds?.errorRate).toEqual([0, 0.075]);
  });
});
