import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AuditSpool, DRAIN_WINDOW } from '../../src/stack/relay/audit-spool.js';
import { StoreUnavailableError } from '../../src/stack/store/errors.js';
import type { NodeMetricsApi, SessionAuditRecord, Store } from '../../src/stack/types.js';

/**
 * The relay's audit spool on its own, against a store whose mood the test sets: up (writes land),
 * down (writes fail at once, as with the db node killed), or hung (writes never answer, as with
 * the db node stopped). The file is real; what the store ends up holding is checked by id.
 */

const dir = mkdtempSync(join(tmpdir(), 'rmmscale-audit-spool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Mood = 'up' | 'down' | 'hung';

/** A store that keeps audit records by id with the database's rule: an ended record never goes back to open. */
class MoodyStore {
  mood: Mood = 'up';
  readonly rows = new Map<string, SessionAuditRecord>();
  writes = 0;
  private readonly hung: Array<() => void> = [];
  auditSession(r: SessionAuditRecord): Promise<void> {
    this.writes++;
    if (this.mood === 'down') return Promise.reject(new StoreUnavailableError('connection refused'));
    const land = (): void => {
      const had = this.rows.get(r.id);
      if (!had || had.outcome === 'open') this.rows.set(r.id, r);
    };
    if (this.mood === 'hung') return new Promise<void>((resolve) => this.hung.push(() => (land(), resolve())));
    land();
    return Promise.resolve();
  }
  /** SIGCONT: every write the hung store held lands now (late), as a woken db node commits them. */
  wake(): void {
    this.mood = 'up';
    for (const f of this.hung.splice(0)) f();
  }
}

const metrics = (): NodeMetricsApi & { counts: Map<string, number>; gauges: Map<string, number> } => {
  const counts = new Map<string, number>();
  const gauges = new Map<string, number>();
  return { counts, gauges, count: (n, by = 1) => counts.set(n, (counts.get(n) ?? 0) + by), gauge: (n, v) => gauges.set(n, v), observeUs: () => undefined, request: () => undefined };
};

let seq = 0;
const record = (outcome = 'open', id = `s-${++seq}`): SessionAuditRecord => ({ id, user: 'ops', agentId: 'a-1', protocol: 'shell', relay: 'relay-1', startedMs: 1000, endedMs: outcome === 'open' ? null : 2000, outcome, status: outcome === 'open' ? null : 200 });

const open: AuditSpool[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});
async function spool(file: string, store: MoodyStore, o: { deadlineMs?: number; maxRecords?: number } = {}): Promise<AuditSpool & { m: ReturnType<typeof metrics> }> {
  const m = metrics();
  const s = Object.assign(new AuditSpool({ file, store: store as unknown as Store, metrics: m, logError: () => undefined, drainEveryMs: 60_000, ...o }), { m });
  await s.load();
  open.push(s);
  return s;
}
const lines = (file: string): string[] => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');

describe('the relay audit spool', () => {
  it('writes straight to the database while it answers, and leaves the file empty', async () => {
    const store = new MoodyStore();
    const file = join(dir, 'up.spool');
    const s = await spool(file, store);
    const r = record();
    await s.write(r);
    await s.write({ ...r, outcome: 'answered', status: 200, endedMs: 3000 });
    expect(store.rows.get(r.id)).toMatchObject({ outcome: 'answered', status: 200 });
    expect(s.size).toBe(0);
    expect(lines(file)).toEqual([]);
  });

  it('a refused write is spooled (fsynced, on disk), later records follow it, and a drain replays them in order, then empties the file', async () => {
    const store = new MoodyStore();
    const file = join(dir, 'down.spool');
    const s = await spool(file, store);
    store.mood = 'down';
    const a = record();
    const b = record();
    await s.write(a);
    store.mood = 'up'; // back already, but the spool is not empty: b and a's end queue behind a
    await s.write(b);
    await s.write({ ...a, outcome: 'timeout', status: 504, endedMs: 4000 });
    expect(store.rows.size).toBe(0);
    expect(lines(file).map((l) => (JSON.parse(l) as SessionAuditRecord).id)).toEqual([a.id, b.id, a.id]);
    expect(s.m.gauges.get('session-audit-spooled')).toBe(3);
    await s.drain();
    expect(store.rows.get(a.id)).toMatchObject({ outcome: 'timeout', status: 504 });
    expect(store.rows.get(b.id)).toMatchObject({ outcome: 'open' });
    expect(s.size).toBe(0);
    expect(lines(file)).toEqual([]);
    expect(s.m.counts.get('session-audit-drained')).toBe(3);
    expect(s.m.gauges.get('session-audit-spooled')).toBe(0);
  });

  it('a hung database: the write is spooled after the deadline; the late commit of the open and the replay store the session once, ended', async () => {
    const store = new MoodyStore();
    const file = join(dir, 'hung.spool');
    const s = await spool(file, store, { deadlineMs: 50 });
    store.mood = 'hung';
    const a = record();
    const t0 = Date.now();
    await s.write(a);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    // The session goes on at once: its end is spooled without waiting out another deadline.
    const t1 = Date.now();
    await s.write({ ...a, outcome: 'answered', status: 200, endedMs: 5000 });
    expect(Date.now() - t1).toBeLessThan(45);
    expect(s.size).toBe(2);
    await s.drain(); // still hung: nothing moves
    expect(s.size).toBe(2);
    // The hung calls land now: the open (from write), and the drain's window, which sent the
    // replayed open and end at once: the session is ended, whatever order they landed in.
    store.wake();
    expect(store.rows.get(a.id)).toMatchObject({ outcome: 'answered' });
    await s.drain();
    expect(s.size).toBe(0);
    expect(store.rows.get(a.id)).toMatchObject({ outcome: 'answered', status: 200 });
    // A replay of the open after the end (a crash mid-drain) does not undo it.
    await store.auditSession(a);
    expect(store.rows.get(a.id)).toMatchObject({ outcome: 'answered' });
  });

  it('a relay restarted on the same file drains what its predecessor spooled', async () => {
    const store = new MoodyStore();
    const file = join(dir, 'restart.spool');
    const first = await spool(file, store);
    store.mood = 'down';
    const a = record();
    await first.write(a);
    await first.write({ ...a, outcome: 'answered', status: 200, endedMs: 6000 });
    await first.close(); // its drain at close failed: the records stay in the file
    open.splice(open.indexOf(first), 1);
    expect(lines(file)).toHaveLength(2);
    store.mood = 'up';
    const second = await spool(file, store);
    expect(second.size).toBe(2);
    await second.drain();
    expect(store.rows.get(a.id)).toMatchObject({ outcome: 'answered' });
    expect(lines(file)).toEqual([]);
  });

  it('a line cut short by a crash mid-append is skipped; the records before it are kept', async () => {
    const store = new MoodyStore();
    const file = join(dir, 'torn.spool');
    const a = record('answered');
    writeFileSync(file, `${JSON.stringify(a)}\n{"id":"s-torn","us`);
    const s = await spool(file, store);
    expect(s.size).toBe(1);
    await s.drain();
    expect([...store.rows.keys()]).toEqual([a.id]);
  });

  it('bounded: past maxRecords a record can be kept nowhere, and the session is refused (StoreUnavailableError: 503)', async () => {
    const store = new MoodyStore();
    const s = await spool(join(dir, 'full.spool'), store, { maxRecords: 3 });
    store.mood = 'down';
    for (let i = 0; i < 3; i++) await s.write(record());
    await expect(s.write(record())).rejects.toThrow(StoreUnavailableError);
    await expect(s.write(record())).rejects.toThrow(/audit spool holds 3 records, its limit/);
    expect(s.m.counts.get('session-audit-spool-full')).toBe(2);
    expect(s.size).toBe(3);
  });

  it('a drain keeps up with a slow-tailed database: DRAIN_WINDOW writes in flight, and a slow one does not hold the rest', async () => {
    // Every 16th write takes 400 ms, the others 20 ms: one at a time that is 9.6 s for 121 records,
    // in waves of 16 (each as slow as its slowest) 3.2 s, with the window sliding past a slow head well under 1.5 s.
    const store = new MoodyStore();
    let inFlight = 0;
    let maxInFlight = 0;
    let n = 0;
    const land = store.auditSession.bind(store);
    store.auditSession = (r) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const ms = n++ % 16 === 0 ? 400 : 20;
      return new Promise<void>((resolve, reject) => setTimeout(() => land(r).then(resolve, reject).finally(() => inFlight--), ms));
    };
    const file = join(dir, 'keep-up.spool');
    const s = await spool(file, store, { deadlineMs: 1000 });
    store.mood = 'down';
    const first = record();
    await s.write(first);
    store.mood = 'up';
    // 60 sessions (an open and an end each) behind it: 121 records.
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      const r = record();
      ids.push(r.id);
      await s.write(r);
      await s.write({ ...r, outcome: 'answered', status: 200, endedMs: 3000 });
    }
    expect(s.size).toBe(121);
    const t0 = Date.now();
    n = 0;
    await s.drain();
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(maxInFlight).toBe(DRAIN_WINDOW);
    expect(s.size).toBe(0);
    expect(lines(file)).toEqual([]);
    // Every session ended as answered, whichever of its two records landed first.
    for (const id of ids) expect(store.rows.get(id)).toMatchObject({ outcome: 'answered', status: 200 });
    expect(s.m.counts.get('session-audit-drained')).toBe(121);
  });

  it('a window with a failure: the records before it leave the spool, it and the rest stay, in order', async () => {
    const store = new MoodyStore();
    const file = join(dir, 'window-fail.spool');
    const s = await spool(file, store);
    store.mood = 'down';
    const recs = Array.from({ length: 5 }, () => record());
    for (const r of recs) await s.write(r);
    store.mood = 'up';
    // The third record's write fails (the database went away mid-window).
    const write = store.auditSession.bind(store);
    store.auditSession = (r) => (r.id === recs[2]!.id ? Promise.reject(new StoreUnavailableError('connection reset')) : write(r));
    await s.drain();
    expect(s.size).toBe(3);
    expect(s.m.counts.get('session-audit-drained')).toBe(2);
    // The file still holds everything until the spool is empty; the next drain finishes the rest.
    store.auditSession = write;
    await s.drain();
    expect(s.size).toBe(0);
    for (const r of recs) expect(store.rows.get(r.id)).toMatchObject({ outcome: 'open' });
    expect(lines(file)).toEqual([]);
  });

  it('one write over the deadline: records spool only until a drain lands one, then go to the database again while the spool drains', async () => {
    const store = new MoodyStore();
    const file = join(dir, 'blip.spool');
    const s = await spool(file, store, { deadlineMs: 400 });
    // One slow write (the database's tail, not an outage): the breaker trips, b follows a.
    store.mood = 'hung';
    const a = record();
    await s.write(a);
    const b = record();
    const t0 = Date.now();
    await s.write(b);
    expect(Date.now() - t0).toBeLessThan(300); // an fsync, not a deadline
    expect(s.size).toBe(2);
    store.wake();
    // The drain lands a, and b's write fails (the database dropped that one call).
    const write = store.auditSession.bind(store);
    store.auditSession = (r) => (r.id === b.id ? Promise.reject(new StoreUnavailableError('connection reset')) : write(r));
    await s.drain();
    expect(s.size).toBe(1);
    store.auditSession = write;
    // The database answered the drain: a new session's record goes to it, not behind b in the spool ...
    const c = record();
    await s.write(c);
    expect(store.rows.get(c.id)).toMatchObject({ outcome: 'open' });
    expect(s.size).toBe(1);
    // ... while b, with a record in the spool, keeps its end there, after its open.
    await s.write({ ...b, outcome: 'answered', status: 200, endedMs: 7000 });
    expect(s.size).toBe(2);
    expect(lines(file).map((l) => (JSON.parse(l) as SessionAuditRecord).id)).toEqual([a.id, b.id, b.id]);
    await s.drain();
    expect(s.size).toBe(0);
    expect(store.rows.get(b.id)).toMatchObject({ outcome: 'answered', status: 200 });
    expect(lines(file)).toEqual([]);
  });
});
