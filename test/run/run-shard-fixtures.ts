/**
 * TEST INPUTS: the result.json of shard i of 3 of one staged `rmmscale run --shard i/3` against an
 * external target, hand-built on test/gate/fixtures.ts (real HDR histograms), not from a real run.
 */
import type { RunResult } from '../../src/run/result-types.js';
import { latenciesWithP99, runResult } from '../gate/fixtures.js';

export const N = 3;

/** Shard i of N of one staged run against an external target; `ms`: its check-in latencies. */
export function shard(i: number, o: { ms?: number[]; failed?: number; trustworthy?: boolean; clockOffsetMs?: number | null; startedAt?: string; seed?: string } = {}): RunResult {
  const ms = o.ms ?? latenciesWithP99(100 + 50 * i);
  const r = runResult({ ops: { checkin: ms }, failed: o.failed ?? 0, trustworthy: o.trustworthy ?? true, offeredRatePerSec: 10, achievedRatePerSec: 10 });
  const w = r.windows[0];
  // A window that breached the SLO on this shard's own figures says so (as the run judged it).
  const errorRate = w.client.errorRate;
  w.verdict = errorRate > r.slo.errorRate ? { ok: false, breaches: [`errors ${(errorRate * 100).toFixed(2)}% > 1.00%`] } : { ok: true, breaches: [] };
  if (o.trustworthy === false) w.generator.reasons = ['generator-bound: scheduling lag p99 40 ms'];
  const doc: RunResult = {
    ...r,
    scenario: { ...r.scenario, seed: o.seed ?? 'fixture' },
    startedAt: o.startedAt ?? '2025-01-01T00:00:00.000Z',
    stack: { ...r.stack, topology: 'external', profile: 'n/a', target: 'http://127.0.0.1:9' },
    timeline: { 'single-1': [{ tSec: 1, requestsPerSec: 30, routes: {}, errorsPerSec: 0, inflight: 1, busyWorkers: null, queueDepth: null, utilization: 0.4, dbUtilization: null, dbQueueDepth: null, eventLoopDelayP99Ms: 2, cpuCores: 0.3, hostCpu: null, hostLimited: false }] },
    shard: { index: i, count: N, coordinated: false, startAtRequestedEpochMs: null, clockOffsetMs: o.clockOffsetMs ?? null, clockReference: null, clockNote: 'no coordinator' },
  };
  return JSON.parse(JSON.stringify(doc)) as RunResult;
}

