import { describe, expect, it } from 'vitest';
import { errorEpisode, FaultRunner, type FaultTarget } from '../../src/run/faults.js';
import type { ScenarioFault } from '../../src/scenario/types.js';
import { unreachable, type LeaseProbe, type LeaseReading } from '../../src/run/takeover.js';
import { ManualClock } from '../helpers/manual-clock.js';


/** Records what the runner did, in order, with the clock's time. */
function recordingTarget(clock: ManualClock, failRestart = false): { target: FaultTarget; log: string[] } {
  const log: string[] = [];
  const at = (): string => `${(clock.now() - 1_000_000) / 1000}s`;
  return {
    log,
    target: {
      kill: (node, signal) => void log.push(`${at()} ${signal} ${node}`),
      restart: async (node) => {
        log.push(`${at()} restart ${node}`);
        if (failRestart) throw new Error('port 8080 taken');
      },
      slow: async (node, byMs, forMs, factor) => void log.push(`${at()} slow ${node} +${byMs}ms for ${forMs}ms${factor > 1 ? ` x${factor}` : ''}`),
      disconnect: async (fraction) => {
        log.push(`${at()} disconnect ${fraction}`);
        return 42;
      },
    },
  };
}

const fault = (f: Partial<ScenarioFault> & Pick<ScenarioFault, 'action' | 'atInStageMs'>): ScenarioFault => ({
  atMs: f.atInStageMs,
  stageIndex: 0,
  node: 'db',
  forMs: null,
  byMs: null,
  byFactor: null,
  fraction: null,
  ...f,
});

describe('FaultRunner', () => {
  it('runs each fault at its time into its own stage, and resumes a stopped node after `for`', async () => {
    const clock = new ManualClock();
    const { target, log } = recordingTarget(clock);
    const runner = new FaultRunner(
      [
        fault({ action: 'kill', node: 'web-agent-1', atInStageMs: 10_000 }),
        fault({ action: 'stop', node: 'db', atInStageMs: 20_000, forMs: 5_000 }),
        fault({ action: 'slow', node: 'db', atInStageMs: 3_000, stageIndex: 1, forMs: 4_000, byMs: 200 }),
        fault({ action: 'disconnect', node: null, atInStageMs: 1_000, stageIndex: 1, fraction: 0.1 }),
      ],
      target,
      clock.now(),
      30_000,
      clock,
    );
    runner.stageStarted(0, clock.now());
    await clock.advance(40_000);
    // Stage 2 starts later than 40 s in (warm-up, settling): its faults count from then.
    await clock.advance(7_000);
    runner.stageStarted(1, clock.now());
    await clock.advance(10_000);
    expect(log).toEqual(['10s SIGKILL web-agent-1', '20s SIGSTOP db', '25s SIGCONT db', '48s disconnect 0.1', '50s slow db +200ms for 4000ms']);
    expect(runner.expectsExit('web-agent-1')).toBe(true);
    expect(runner.expectsExit('db')).toBe(false);
    const records = runner.records();
    expect(records.map((r) => [r.action, r.outcome, r.firedAtSec])).toEqual([
      ['kill', 'done', 10],
      ['stop', 'done', 20],
      ['slow', 'done', 50],
      ['disconnect', 'done', 48],
    ]);
    expect(records[3]!.dropped).toBe(42);
  });

  it('a restart expects its node to exit only while it restarts; a failed action is recorded, not thrown', async () => {
    const clock = new ManualClock();
    const { target } = recordingTarget(clock, true);
    let expectedDuring = false;
    const spy: FaultTarget = {
      ...target,
      restart: async (node) => {
        expectedDuring = runner.expectsExit(node);
        return target.restart(node);
      },
    };
    const runner = new FaultRunner([fault({ action: 'restart', node: 'relay-2', atInStageMs: 1_000 })], spy, clock.now(), 30_000, clock);
    runner.stageStarted(0, clock.now());
    await clock.advance(2_000);
    expect(expectedDuring).toBe(true);
    expect(runner.expectsExit('relay-2')).toBe(false);
    expect(runner.records()[0]).toMatchObject({ outcome: 'failed', error: 'port 8080 taken', errorsSec: null });
  });

  it('close() cancels what has not run and resumes a node it paused', async () => {
    const clock = new ManualClock();
    const { target, log } = recordingTarget(clock);
    const runner = new FaultRunner(
      [fault({ action: 'stop', node: 'db', atInStageMs: 1_000, forMs: 60_000 }), fault({ action: 'kill', node: 'app', atInStageMs: 30_000 })],
      target,
      clock.now(),
      30_000,
      clock,
    );
    runner.stageStarted(0, clock.now());
    await clock.advance(5_000);
    runner.close();
    await clock.advance(100_000);
    expect(log).toEqual(['1s SIGSTOP db', '5s SIGCONT db']);
    expect(runner.records().map((r) => r.outcome)).toEqual(['done', 'skipped']);
  });

  it('how long clients saw errors after a fault', async () => {
    const clock = new ManualClock();
    const { target } = recordingTarget(clock);
    const t0 = clock.now();
    const runner = new FaultRunner([fault({ action: 'kill', node: 'web-agent-1', atInStageMs: 10_000 })], target, t0, 30_000, clock);
    runner.stageStarted(0, t0);
    // Errors before the fault are not its own; then 2 s of errors right after it.
    for (let s = 1; s <= 20; s++) runner.recordSecond(t0 + s * 1000, s === 3 ? 5 : s === 11 || s === 12 ? 40 : 0);
    await clock.advance(20_000);
    expect(runner.records()[0]).toMatchObject({ errorsSec: 2, errors: 80 });
  });
});

/**
 * Two app nodes on a simulated lease (TTL 15 s, renewed every 5 s): `app` leads under term 1 and
 * renewed it last at 58 s; killed, it answers no more, and the standby takes the lease the first
 * time it polls (every 0.5 s) after the lease lapsed, stamping that moment as its own.
 */
function simulatedLease(clock: ManualClock, t0: number): { probe: LeaseProbe; target: FaultTarget; reads: () => number } {
  let killedAt: number | null = null;
  let reads = 0;
  const lastRenew = t0 + 58_000;
  const standbyLedAt = (): number | null => {
    if (killedAt === null) return null;
    const lapse = lastRenew + 15_000;
    const at = t0 + Math.ceil((lapse - t0) / 500) * 500;
    return clock.now() >= at ? at : null;
  };
  const reading = (node: string, leads: number | null, term: number, untilMs: number | null): LeaseReading => ({ node, reachable: true, leader: leads !== null, standby: leads === null, term: leads !== null ? term : 0, ledSinceMs: leads, leaseUntilMs: leads !== null ? untilMs : null, leaseTtlMs: 15_000 });
  return {
    reads: () => reads,
    probe: {
      nodes: ['app', 'app-standby'],
      read: async () => {
        reads++;
        const app: LeaseReading = killedAt === null ? reading('app', t0 + 1000, 1, lastRenew + 15_000) : unreachable('app');
        const led = standbyLedAt();
        return [app, reading('app-standby', led, 2, led === null ? null : led + 15_000)];
      },
    },
    target: {
      kill: (node) => {
        if (node === 'app') killedAt = clock.now();
      },
      restart: async () => undefined,
      slow: async () => undefined,
      disconnect: async () => 0,
    },
  };
}

describe('FaultRunner: the DBAgent takeover after a fault on an app node', () => {
  it('times the standby from the fault to its own acquire, and stops watching once it leads', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const { probe, target, reads } = simulatedLease(clock, t0);
    const runner = new FaultRunner([fault({ action: 'kill', node: 'app', atInStageMs: 60_000 }), fault({ action: 'kill', node: 'web-agent-1', atInStageMs: 61_000 })], target, t0, 30_000, clock, probe);
    runner.stageStarted(0, t0);
    await clock.advance(80_000);
    const [app, web] = runner.records();
    // Lease lapses at 58 + 15 = 73 s; the standby's poll at 73 s takes it: 13 s after the kill at 60 s.
    expect(app!.takeover).toEqual({ node: 'app-standby', takeoverMs: 13_000, leaseTtlMs: 15_000, afterLapseMs: 0, withinTtl: true, term: 2, previousTerm: 1, reason: null });
    expect(web!.takeover).toBeNull();
    // One read before the kill, then one per 100 ms until 73 s, then none.
    const n = reads();
    expect(n).toBeGreaterThanOrEqual(120);
    expect(n).toBeLessThanOrEqual(135);
    await clock.advance(10_000);
    expect(reads()).toBe(n);
    runner.close();
  });

  it('a run that ends before the takeover: one last reading at the end, and no verdict before the TTL', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const { probe, target } = simulatedLease(clock, t0);
    const runner = new FaultRunner([fault({ action: 'kill', node: 'app', atInStageMs: 60_000 })], target, t0, 30_000, clock, probe);
    runner.stageStarted(0, t0);
    await clock.advance(66_000);
    runner.close();
    await runner.finishTakeovers();
    expect(runner.records()[0]!.takeover).toMatchObject({ node: null, takeoverMs: null, withinTtl: null, reason: 'no app node took the lease in the 6 s the run watched after the fault' });
  });
});

describe('errorEpisode', () => {
  const sec = (endS: number, n: number): [number, number] => [endS * 1000, n];
  it('none after the fault: 0', () => {
    expect(errorEpisode([sec(5, 3), sec(11, 0)], 10_000, 60_000)).toEqual({ seconds: 0, errors: 0 });
  });
  it('joins gaps under 5 s and stops at a longer one', () => {
    expect(errorEpisode([sec(11, 1), sec(14, 2), sec(18, 3), sec(30, 9)], 10_000, 60_000)).toEqual({ seconds: 8, errors: 6 });
  });
  it('an episode that starts after the horizon is not this fault’s', () => {
    expect(errorEpisode([sec(80, 4)], 10_000, 60_000)).toEqual({ seconds: 0, errors: 0 });
  });
  it('counts from the fault, not from the start of the second it fell in', () => {
    expect(errorEpisode([sec(11, 4)], 10_500, 60_000)).toEqual({ seconds: 0.5, errors: 4 });
  });
});
