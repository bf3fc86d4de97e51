import { describe, expect, it } from 'vitest';
import { leaseReadingOf, newLeader, takeoverOf, takeoverSettled, unreachable, type LeaseReading, type TakeoverInput } from '../../src/run/takeover.js';
import { NodeMetrics } from '../../src/stack/runtime/node-metrics.js';

/** An app node's reading as its gauges would show it. */
const leader = (node: string, term: number, ledSinceMs: number, leaseUntilMs: number | null = null, leaseTtlMs = 15_000): LeaseReading => ({ node, reachable: true, leader: true, standby: false, term, ledSinceMs, leaseUntilMs, leaseTtlMs });
const standby = (node: string, leaseTtlMs = 15_000): LeaseReading => ({ node, reachable: true, leader: false, standby: true, term: 0, ledSinceMs: null, leaseUntilMs: null, leaseTtlMs });

const FIRED = 1_800_000_000_000;
const input = (over: Partial<TakeoverInput>): TakeoverInput => ({
  action: 'kill',
  node: 'app',
  forMs: null,
  firedAtMs: FIRED,
  // Last renewed 500 ms before the fault: its lease lapses 14.5 s after it.
  before: [leader('app', 3, FIRED - 60_000, FIRED + 14_500), standby('app-standby')],
  after: null,
  afterAtMs: null,
  ...over,
});

describe('leaseReadingOf', () => {
  it("reads the DBAgent's gauges from a node's real /metrics text", () => {
    const m = new NodeMetrics({ name: 'app-standby', role: 'app', tier: 'app', host: '127.0.0.1', port: 0, secret: 's' });
    try {
      m.gauge('dbagent:leader', 1);
      m.gauge('dbagent:standby', 0);
      m.gauge('dbagent:term', 7);
      m.gauge('dbagent:led-since-ms', 1_796_540_000_123);
      m.gauge('dbagent:lease-until-ms', 1_796_540_003_123);
      m.gauge('dbagent:lease-ttl-ms', 3000);
      expect(leaseReadingOf('app-standby', m.prometheus())).toEqual({ node: 'app-standby', reachable: true, leader: true, standby: false, term: 7, ledSinceMs: 1_796_540_000_123, leaseUntilMs: 1_796_540_003_123, leaseTtlMs: 3000 });
      // A standby: no term, no leading time, whatever stale gauges say.
      m.gauge('dbagent:leader', 0);
      m.gauge('dbagent:standby', 1);
      expect(leaseReadingOf('app-standby', m.prometheus())).toMatchObject({ leader: false, standby: true, term: 0, ledSinceMs: null, leaseUntilMs: null });
    } finally {
      m.close();
    }
  });
});

describe('takeoverOf', () => {
  it('the standby that leads under a newer term: its own acquire time minus the fault', () => {
    const after = [unreachable('app'), leader('app-standby', 4, FIRED + 14_612)];
    const t = takeoverOf(input({ after, afterAtMs: FIRED + 14_700 }));
    expect(t).toEqual({ node: 'app-standby', takeoverMs: 14_612, leaseTtlMs: 15_000, afterLapseMs: 112, withinTtl: true, term: 4, previousTerm: 3, reason: null });
    expect(takeoverSettled(input({ after, afterAtMs: FIRED + 14_700 }))).toBe(true);
  });

  it('a takeover later than the TTL is not within it', () => {
    const t = takeoverOf(input({ after: [leader('app-standby', 4, FIRED + 15_090)], afterAtMs: FIRED + 15_200 }));
    expect([t.takeoverMs, t.withinTtl]).toEqual([15_090, false]);
  });

  it('the lowest newer term is the takeover; the old term still showing is not', () => {
    expect(newLeader([leader('app', 3, FIRED - 60_000), leader('b', 6, FIRED + 9000), leader('c', 5, FIRED + 4000)], 3)?.node).toBe('c');
    const t = takeoverOf(input({ after: [leader('app', 3, FIRED - 60_000)], afterAtMs: FIRED + 5000 }));
    expect(t.node).toBeNull();
  });

  it('a fault on a standby: the lease has no reason to move', () => {
    const t = takeoverOf(input({ node: 'app-standby', after: [leader('app', 3, FIRED - 60_000)], afterAtMs: FIRED + 100 }));
    expect(t).toMatchObject({ node: null, takeoverMs: null, withinTtl: null, term: null, previousTerm: 3 });
    expect(t.reason).toBe('app-standby was not the leader (app led, term 3): the lease had no reason to move');
    expect(takeoverSettled(input({ node: 'app-standby' }))).toBe(true);
  });

  it('no standby: null with the reason; a restart of a sole leader is measured (it leads again)', () => {
    const alone = [leader('app', 3, FIRED - 60_000)];
    const t = takeoverOf(input({ before: alone, after: [unreachable('app')], afterAtMs: FIRED + 20_000 }));
    expect(t).toMatchObject({ node: null, takeoverMs: null, withinTtl: null, reason: 'no standby app node: nothing could take the lease from app' });
    expect(takeoverSettled(input({ before: alone }))).toBe(true);
    const r = takeoverOf(input({ action: 'restart', before: alone, after: [leader('app', 4, FIRED + 820)], afterAtMs: FIRED + 900 }));
    expect(r).toMatchObject({ node: 'app', takeoverMs: 820, withinTtl: true, term: 4 });
  });

  it('a pause shorter than the TTL: the leader kept its lease, no takeover due', () => {
    const stop = { action: 'stop' as const, forMs: 5000 };
    // Just after the resume, the old term still showing settles nothing.
    const early = input({ ...stop, after: [leader('app', 3, FIRED - 60_000), standby('app-standby')], afterAtMs: FIRED + 5200 });
    expect(takeoverSettled(early)).toBe(false);
    const kept = input({ ...stop, after: [leader('app', 3, FIRED - 60_000), standby('app-standby')], afterAtMs: FIRED + 6100 });
    expect(takeoverSettled(kept)).toBe(true);
    expect(takeoverOf(kept)).toMatchObject({ node: null, withinTtl: null, reason: 'app kept the lease (term 3) through its 5 s pause' });
  });

  it('a pause past the TTL with a standby and no takeover seen: not within the TTL', () => {
    const t = takeoverOf(input({ action: 'stop', forMs: 20_000, after: [unreachable('app'), standby('app-standby')], afterAtMs: FIRED + 40_000 }));
    expect(t).toMatchObject({ node: null, withinTtl: false, reason: 'no app node took the lease in the 40 s the run watched after the fault' });
  });

  it('the run ended before the TTL was over: no verdict', () => {
    const t = takeoverOf(input({ after: [unreachable('app'), standby('app-standby')], afterAtMs: FIRED + 8000 }));
    expect(t).toMatchObject({ node: null, withinTtl: null, reason: 'no app node took the lease in the 8 s the run watched after the fault' });
  });

  it('no app node answered before the fault', () => {
    expect(takeoverOf(input({ before: [unreachable('app'), unreachable('app-standby')] })).reason).toBe('no app node answered before the fault');
  });
});
