import { afterEach, describe, expect, it } from 'vitest';
import { coordinatorKey, CoordinatorClient, ShardCoordinator, type CoordinationTimeouts } from '../../src/run/shard-coordinator.js';
import type { WindowSpec } from '../../src/run/plan-window.js';
import type { SwarmResult } from '../../src/swarm/result.js';

/**
 * The coordinator's control endpoint (src/run/shard-coordinator.ts) on loopback, with real HTTP:
 * its key, its barrier, its bounded waits, and the end the followers hear.
 */

const SECRET = 'coordinator-test-secret';
const FP = 'fingerprint-1';
const FAST: CoordinationTimeouts = { joinMs: 2000, barrierMs: 400, resultMs: 400, unreachableMs: 600, leadMs: 100 };
const SPEC: WindowSpec = { kind: 'step', label: 'step 1', agents: 100, checkin: { kind: 'rate', ratePerSec: 40, text: '40/s' }, warmupMs: 1000, measureMs: 3000 };

let coordinator: ShardCoordinator | null = null;
afterEach(async () => {
  await coordinator?.close();
  coordinator = null;
});

async function start(count = 3): Promise<string> {
  coordinator = new ShardCoordinator({ index: 0, count }, SECRET, FP, FAST);
  return coordinator.listen('127.0.0.1', 0);
}

const follower = (url: string, index: number, secret = SECRET, fp = FP): CoordinatorClient => new CoordinatorClient(url, { index, count: 3 }, secret, fp, FAST);

describe('the coordinator endpoint', () => {
  it('answers 401 to a missing or wrong key, on every path; the right key passes', async () => {
    const url = await start();
    for (const path of ['/v1/join', '/v1/next', '/v1/start', '/v1/result', '/nowhere']) {
      for (const auth of [undefined, 'Bearer wrong', `Bearer ${coordinatorKey('another secret')}`, coordinatorKey(SECRET)]) {
        const res = await fetch(`${url}${path}`, { method: 'POST', headers: auth ? { authorization: auth } : {}, body: '{}' });
        expect(res.status, `${path} ${auth}`).toBe(401);
        await res.text();
      }
    }
    const ok = await fetch(`${url}/v1/join`, { method: 'POST', headers: { authorization: `Bearer ${coordinatorKey(SECRET)}` }, body: JSON.stringify({ index: 1, count: 3, fingerprint: FP }) });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { nowMs: number }).nowMs).toBeGreaterThan(0);
  });

  it('a follower with another secret is refused in one line', async () => {
    const url = await start();
    await expect(follower(url, 1, 'not the stack secret').join()).rejects.toThrow(/^the coordinator at http:\/\/127\.0\.0\.1:\d+ refused this shard's key \(401\): every shard needs the same stack secret$/);
  });

  it('a shard of another run, or the coordinator\'s own index, is refused', async () => {
    const url = await start();
    await expect(follower(url, 1, SECRET, 'other').join()).rejects.toThrow(/refused shard 1\/3: shard 1\/3 is not of this run/);
    await expect(follower(url, 0).join()).rejects.toThrow(/refused shard 0\/3: index: expected a follower shard \(1, 2 of 3\), got 0/);
  });

  it('barrier: the window starts only when every follower is ready, at one time; results come back; the end is heard', async () => {
    const url = await start();
    const f1 = follower(url, 1);
    const f2 = follower(url, 2);
    await Promise.all([f1.join(), f2.join()]);
    // Same host, same clock: the offset is the measurement's error only.
    expect(Math.abs(f1.clockOffsetMs)).toBeLessThan(50);
    coordinator!.announce(0, SPEC);
    expect(await f1.next(0)).toEqual({ action: 'measure', window: 0, spec: SPEC });
    expect(await f2.next(0)).toEqual({ action: 'measure', window: 0, spec: SPEC });
    // The barrier: nobody starts until every swarm is ready; then all at one time.
    const begun = coordinator!.startGate(0);
    let released = false;
    void begun.then(() => (released = true));
    const s1 = f1.start(0);
    await new Promise((r) => setTimeout(r, 100));
    expect(released).toBe(false);
    const s2 = f2.start(0);
    const [startAt, start1, start2] = await Promise.all([begun, s1, s2]);
    expect(start1 - f1.clockOffsetMs).toBe(startAt);
    expect(start2 - f2.clockOffsetMs).toBe(startAt);
    expect(startAt - Date.now()).toBeLessThanOrEqual(FAST.leadMs);
    const swarm = { startedAt: '2026-01-01T00:00:00.000Z' } as unknown as SwarmResult;
    await f1.postWindow({ window: 0, swarm, trustworthy: true, judgedAs: 'clean', why: 'clean' });
    await f2.postWindow({ window: 0, swarm, trustworthy: false, judgedAs: 'rig-bound', why: 'generator-bound' });
    const got = await coordinator!.collect(0);
    expect(got.map((s) => [s.index, s.trustworthy, s.why])).toEqual([
      [1, true, 'clean'],
      [2, false, 'generator-bound'],
    ]);
    const ends = [f1.next(1), f2.next(1)];
    await coordinator!.finish({ search: { outcome: 'found', ceilingLoad: 80, lastGood: 80, firstBad: 120 } });
    for (const e of await Promise.all(ends)) expect(e).toEqual({ action: 'done', window: 1, search: { outcome: 'found', ceilingLoad: 80, lastGood: 80, firstBad: 120 } });
  });

  it('a follower that disappears fails the window in one line naming it; one that never posts its result too', async () => {
    const url = await start();
    const f1 = follower(url, 1);
    const f2 = follower(url, 2);
    await Promise.all([f1.join(), f2.join()]);
    coordinator!.announce(0, SPEC);
    await Promise.all([coordinator!.startGate(0), f1.start(0), f2.start(0)]);
    await f1.postWindow({ window: 0, swarm: {} as SwarmResult, trustworthy: true, judgedAs: 'clean', why: '' });
    await expect(coordinator!.collect(0)).rejects.toThrow(/^shard 2\/3 did not post window 0's result within 0\.4 s of its end: it disappeared$/);
    coordinator!.announce(1, SPEC);
    const pending = f1.start(1).catch((err: Error) => err);
    await expect(coordinator!.startGate(1)).rejects.toThrow(/^shard 2\/3 was not ready for window 1 within 0\.4 s: it disappeared$/);
    // The run ends: the follower waiting at the barrier hears why.
    await coordinator!.finish({ reason: 'shard 2/3 was not ready for window 1' }, 500);
    expect(((await pending) as Error).message).toBe('the coordinator ended the run: shard 2/3 was not ready for window 1');
  });

  it('the coordinator that disappears fails its follower in one line, within the bound', async () => {
    const url = await start();
    const f1 = follower(url, 1);
    await f1.join();
    await coordinator!.close();
    const t0 = Date.now();
    await expect(f1.next(0)).rejects.toThrow(/^the coordinator at http:\/\/127\.0\.0\.1:\d+ did not answer for 1 s \(ECONNREFUSED\): it disappeared or never started$/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});
