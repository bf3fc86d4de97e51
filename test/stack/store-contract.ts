import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CheckinRequest } from '../../src/core/protocol.js';
import { LeaseFencedError } from '../../src/stack/store/errors.js';
import { OFFLINE_AFTER_MS } from '../../src/stack/store/schema.js';
import type { Store, TelemetrySample } from '../../src/stack/types.js';

/**
 * One test table for every Store: SQLite, PostgreSQL, and the remote store over a db node. Each
 * case gets a fresh database from the backend factory. `scalar` reads through a connection of its
 * own, so a row it sees was committed, not merely written.
 */
export interface StoreBackend {
  store: Store;
  /** A second, independent Store on the same database (another process, in production). */
  another(): Promise<Store>;
  scalar(sql: string): Promise<number>;
  commitStats?(): { commits: number; writes: number };
  close(): Promise<void>;
}

export const MIN = 60_000;

export function agentReq(i: number, over: Partial<CheckinRequest> = {}): CheckinRequest {
  return {
    agentId: `agt-${String(i).padStart(16, '0')}`,
    hostname: `HOST-${i}`,
    os: 'windows',
    agentVersion: '2025.3.1',
    client: 'c1',
    seq: 1,
    status: { cpuPct: 10, memPct: 50, diskFreePct: 70, uptimeSec: 100, loggedOnUser: null },
    ...over,
  };
}

const idOf = (i: number): string => agentReq(i).agentId;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Four agents: two online on windows (c1, c2), one offline linux, one long-gone macos (c1). */
async function seedFleet(store: Store, nowMs: number): Promise<void> {
  await Promise.all([
    store.checkin(agentReq(0, { os: 'windows', client: 'c1' }), nowMs),
    store.checkin(agentReq(1, { os: 'windows', client: 'c2' }), nowMs),
    store.checkin(agentReq(2, { os: 'linux', client: 'c1' }), nowMs - 20 * MIN),
    store.checkin(agentReq(3, { os: 'macos', client: 'c1' }), nowMs - 60 * MIN),
  ]);
}

export function storeContract(name: string, open: () => Promise<StoreBackend>, opts: { skip?: boolean } = {}): void {
  describe.skipIf(!!opts.skip)(`Store contract: ${name}`, () => {
    let b: StoreBackend;
    const extra: Store[] = [];
    beforeEach(async () => {
      b = await open();
    });
    afterEach(async () => {
      for (const s of extra.splice(0)) await s.close();
      await b?.close();
    });

    it('creates the schema on init, idempotently, and starts empty', async () => {
      await b.store.init();
      expect(await b.store.countCheckins()).toBe(0);
      expect(await b.scalar('SELECT COUNT(*) AS n FROM agents')).toBe(0);
    });

    it('a check-in upserts the agent row and inserts a check-in record, committed when it resolves', async () => {
      const t = 1_700_000_000_000;
      expect(await b.store.checkin(agentReq(0), t)).toEqual([]);
      await b.store.checkin(agentReq(0, { seq: 2, hostname: 'RENAMED' }), t + 1000);
      await b.store.checkin(agentReq(1), t + 2000);
      expect(await b.scalar('SELECT COUNT(*) AS n FROM agents')).toBe(2);
      expect(await b.scalar('SELECT COUNT(*) AS n FROM checkins')).toBe(3);
      expect(await b.scalar(`SELECT checkins AS n FROM agents WHERE id = '${idOf(0)}'`)).toBe(2);
      expect(await b.store.countCheckins()).toBe(3);
      const rows = await b.store.listAgents({ limit: 10 }, t + 2000);
      expect(rows.map((r) => [r.id, r.hostname, r.lastSeenMs, r.online])).toEqual([
        [idOf(0), 'RENAMED', t + 1000, true],
        [idOf(1), 'HOST-1', t + 2000, true],
      ]);
    });

    it('commands: unknown agent → null; a queued command is handed out oldest first until its result acknowledges it', async () => {
      expect(await b.store.createCommand(idOf(9), 'script', {}, 'alice')).toBeNull();
      expect(await b.scalar('SELECT COUNT(*) AS n FROM commands')).toBe(0);
      const t = Date.now();
      await b.store.checkin(agentReq(0), t);
      const first = await b.store.createCommand(idOf(0), 'script', { n: 1, text: 'Get-Service' }, 'alice');
      await sleep(3);
      const second = await b.store.createCommand(idOf(0), 'reboot', {}, 'bob');
      expect(first).toMatch(/^[0-9a-f-]{36}$/);
      expect(await b.store.checkin(agentReq(1), t + 1)).toEqual([]);
      expect(await b.store.checkin(agentReq(0, { seq: 2 }), t + 2)).toEqual([
        { id: first, kind: 'script', args: { n: 1, text: 'Get-Service' } },
        { id: second, kind: 'reboot', args: {} },
      ]);
      // That response may never reach the agent (a kill, a timeout, a 502): the next check-in carries both again.
      expect((await b.store.checkin(agentReq(0, { seq: 3 }), t + 3)).map((c) => c.id)).toEqual([first, second]);
      expect(await b.scalar('SELECT COUNT(*) AS n FROM commands WHERE delivered_ms IS NOT NULL')).toBe(0);
      await b.store.commandResults(idOf(0), [{ commandId: first!, exitCode: 0, output: 'Running', durationMs: 12 }], t + 4);
      // A result naming another agent's command changes nothing.
      await b.store.commandResults(idOf(1), [{ commandId: second!, exitCode: 1, output: 'x', durationMs: 1 }], t + 5);
      expect(await b.scalar('SELECT COUNT(*) AS n FROM commands WHERE result_exit IS NOT NULL')).toBe(1);
      // Acknowledged: delivered at its result, and no longer handed out; the other one still is.
      expect(await b.scalar(`SELECT delivered_ms AS n FROM commands WHERE id = '${first}'`)).toBe(t + 4);
      expect((await b.store.checkin(agentReq(0, { seq: 4 }), t + 6)).map((c) => c.id)).toEqual([second]);
      // A second result for the same command keeps the first acknowledgement's time.
      await b.store.commandResults(idOf(0), [{ commandId: first!, exitCode: 0, output: 'again', durationMs: 1 }], t + 7);
      expect(await b.scalar(`SELECT delivered_ms AS n FROM commands WHERE id = '${first}'`)).toBe(t + 4);
    });

    it('dashboard reads: online/offline, by client and OS, limits, and aggregates', async () => {
      const now = Date.now();
      await seedFleet(b.store, now);
      const ids = async (f: Parameters<Store['listAgents']>[0]): Promise<string[]> => (await b.store.listAgents(f, now)).map((r) => r.id);
      expect(await ids({ status: 'online', limit: 10 })).toEqual([idOf(0), idOf(1)]);
      expect(await ids({ status: 'offline', limit: 10 })).toEqual([idOf(2), idOf(3)]);
      expect(await ids({ client: 'c1', limit: 10 })).toEqual([idOf(0), idOf(2), idOf(3)]);
      expect(await ids({ client: 'c1', os: 'windows', limit: 10 })).toEqual([idOf(0)]);
      expect(await ids({ limit: 3 })).toEqual([idOf(0), idOf(1), idOf(2)]);
      expect(await b.store.statsBy('os')).toEqual([
        { key: 'linux', agents: 1, online: 0 },
        { key: 'macos', agents: 1, online: 0 },
        { key: 'windows', agents: 2, online: 2 },
      ]);
      expect(await b.store.statsBy('client')).toEqual([
        { key: 'c1', agents: 3, online: 1 },
        { key: 'c2', agents: 1, online: 1 },
      ]);
    });

    it('integration sync pages through every agent once, in id order', async () => {
      const t = Date.now();
      await Promise.all([4, 0, 3, 1, 2].map((i) => b.store.checkin(agentReq(i), t)));
      const pages: string[][] = [];
      let after: string | null = null;
      do {
        const page: { agents: Array<{ id: string }>; next: string | null } = await b.store.syncAgents(after, 2);
        pages.push(page.agents.map((a) => a.id));
        after = page.next;
      } while (after !== null && pages.length < 10);
      expect(pages).toEqual([[idOf(0), idOf(1)], [idOf(2), idOf(3)], [idOf(4)]]);
    });

    it('heartbeat moves last-seen for a known agent and creates nothing for an unknown one', async () => {
      await b.store.checkin(agentReq(0), 1_000_000);
      await b.store.heartbeat(idOf(0), 1_005_000);
      await b.store.heartbeat(idOf(7), 1_005_000);
      expect((await b.store.listAgents({ limit: 10 }, 1_005_000)).map((r) => [r.id, r.lastSeenMs])).toEqual([[idOf(0), 1_005_000]]);
    });

    it('inventory keeps the latest document per agent', async () => {
      await b.store.inventory(idOf(0), { software: ['a'] }, 1000);
      await b.store.inventory(idOf(0), { software: ['a', 'b'] }, 2000);
      expect(await b.scalar('SELECT COUNT(*) AS n FROM inventory')).toBe(1);
      expect(await b.scalar('SELECT at_ms AS n FROM inventory')).toBe(2000);
    });

    it('idempotency keys: a check-in, inventory or command result sent twice under one (agent, seq) is stored once; the ledger reads every key', async () => {
      const t = 1_700_000_000_000;
      const base = 5_000_000_000_000;
      await b.store.checkin(agentReq(0, { seq: base + 1 }), t);
      const cmd = await b.store.createCommand(idOf(0), 'script', {}, 'alice');
      // A retry of a committed check-in (its response was lost) stores nothing more but still hands out the command.
      expect((await b.store.checkin(agentReq(0, { seq: base + 1, hostname: 'RETRY' }), t + 1)).map((c) => c.id)).toEqual([cmd]);
      expect(await b.scalar('SELECT COUNT(*) AS n FROM checkins')).toBe(1);
      expect(await b.scalar(`SELECT checkins AS n FROM agents WHERE id = '${idOf(0)}'`)).toBe(1);
      await b.store.inventory(idOf(0), { software: ['a'] }, t + 2, base + 2);
      await b.store.inventory(idOf(0), { software: ['late'] }, t + 3, base + 2);
      expect(await b.scalar('SELECT at_ms AS n FROM inventory')).toBe(t + 2);
      await b.store.commandResults(idOf(0), [{ commandId: cmd!, exitCode: 0, output: 'first', durationMs: 1 }], t + 4, base + 3);
      await b.store.commandResults(idOf(0), [{ commandId: cmd!, exitCode: 7, output: 'retry', durationMs: 1 }], t + 5, base + 3);
      expect(await b.scalar(`SELECT result_exit AS n FROM commands WHERE id = '${cmd}'`)).toBe(0);
      await b.store.checkin(agentReq(1, { seq: base + 1 }), t + 6);
      await b.store.checkin(agentReq(1, { seq: 7 }), t + 7); // below fromSeq: another run's key
      const page1 = await b.store.ledgerKeys(base, null, 2);
      expect(page1).toEqual([
        { agentId: idOf(0), seq: base + 1, copies: 1 },
        { agentId: idOf(0), seq: base + 2, copies: 1 },
      ]);
      expect(await b.store.ledgerKeys(base, page1[1], 10)).toEqual([
        { agentId: idOf(0), seq: base + 3, copies: 1 },
        { agentId: idOf(1), seq: base + 1, copies: 1 },
      ]);
      const states = await b.store.commandStates([cmd!, '00000000-0000-0000-0000-000000000000']);
      expect(states).toEqual([{ id: cmd, delivered: true, hasResult: true }]);
    });

    it('telemetry batches insert every sample; an empty batch is a no-op', async () => {
      const samples: TelemetrySample[] = Array.from({ length: 1203 }, (_, i) => ({ agentId: idOf(i % 7), relay: 'relay-1', atMs: 1000 + i, cpuPct: i % 100, memPct: 40 }));
      await b.store.telemetry(samples);
      await b.store.telemetry([]);
      expect(await b.scalar('SELECT COUNT(*) AS n FROM telemetry')).toBe(1203);
      expect(await b.scalar('SELECT MAX(at_ms) AS n FROM telemetry')).toBe(1000 + 1202);
    });

    it('presence: which relay holds an agent, moved and cleared', async () => {
      expect(await b.store.getPresence(idOf(0))).toBeNull();
      await b.store.setPresence(idOf(0), 'relay-1', 1000);
      expect(await b.store.getPresence(idOf(0))).toBe('relay-1');
      await b.store.setPresence(idOf(0), 'relay-2', 2000);
      expect(await b.store.getPresence(idOf(0))).toBe('relay-2');
      await b.store.setPresence(idOf(0), null, 3000);
      expect(await b.store.getPresence(idOf(0))).toBeNull();
    });

    it('lease: one holder at a time, renewable, taken over only after it expires, released by its holder only; each holder a new term', async () => {
      const s = b.store;
      expect(await s.acquireLease('dbagent', 'A', 10_000, 1_000)).toBe(1);
      expect(await s.acquireLease('dbagent', 'B', 10_000, 5_000)).toBeNull();
      expect(await s.leaseHolder('dbagent')).toEqual({ holder: 'A', untilMs: 11_000 });
      expect(await s.acquireLease('dbagent', 'A', 10_000, 9_000)).toBe(1); // a renewal keeps the term
      expect(await s.acquireLease('dbagent', 'B', 10_000, 18_000)).toBeNull();
      expect(await s.acquireLease('dbagent', 'B', 10_000, 19_001)).toBe(2); // a takeover: the next term
      await s.releaseLease('dbagent', 'A');
      expect(await s.leaseHolder('dbagent')).toEqual({ holder: 'B', untilMs: 29_001 });
      await s.releaseLease('dbagent', 'B');
      expect(await s.leaseHolder('dbagent')).toBeNull();
      // A released lease is free at once, and a term is never handed out twice.
      expect(await s.acquireLease('dbagent', 'A', 10_000, 20_000)).toBe(3);
    });

    it('lease fencing: a loop write under a term that is over is refused and changes nothing', async () => {
      const s = b.store;
      const now = Date.now();
      await seedFleet(s, now);
      const old = await s.acquireLease('dbagent', 'A', 1_000, now - 5_000); // A's lease lapsed 4 s ago
      const current = await s.acquireLease('dbagent', 'B', 10_000, now);
      expect(current).toBe(old! + 1);
      // A wakes up (a SIGSTOP, a long GC) and runs its loops under its old term.
      const stale = { name: 'dbagent', token: old! };
      await expect(s.rebuildGroups(now, stale)).rejects.toBeInstanceOf(LeaseFencedError);
      await expect(s.approvePatches(now, stale)).rejects.toThrow(`lease dbagent: term ${old} is over (the lease is now at term ${current})`);
      await expect(s.detectOffline(OFFLINE_AFTER_MS, now, stale)).rejects.toBeInstanceOf(LeaseFencedError);
      await expect(s.queueEmail(now, stale)).rejects.toBeInstanceOf(LeaseFencedError);
      expect(await b.scalar('SELECT COUNT(*) AS n FROM agent_groups')).toBe(0);
      expect(await b.scalar('SELECT COUNT(*) AS n FROM alerts')).toBe(0);
      expect(await b.scalar('SELECT COUNT(*) AS n FROM patches WHERE approved_ms IS NOT NULL')).toBe(0);
      // The current term writes.
      expect(await s.rebuildGroups(now, { name: 'dbagent', token: current! })).toBe(4);
    });

    it('lease: two stores racing for it on one database, exactly one wins', async () => {
      const other = await b.another();
      extra.push(other);
      const now = Date.now();
      const won = await Promise.all([b.store.acquireLease('race', 'A', 10_000, now), other.acquireLease('race', 'B', 10_000, now)]);
      expect(won.filter(Boolean)).toHaveLength(1);
      expect((await other.leaseHolder('race'))?.holder).toBe(won[0] ? 'A' : 'B');
    });

    it('DBAgent loops: groups, patches, offline alerts and email, each touching the expected rows', async () => {
      const now = Date.now();
      await seedFleet(b.store, now);
      const fence = { name: 'dbagent', token: (await b.store.acquireLease('dbagent', 'A', 60_000, now))! };
      expect(await b.store.rebuildGroups(now, fence)).toBe(4);
      expect((await b.store.listAgents({ limit: 1 }, now))[0].groupName).toBe('c1/windows');
      expect(await b.store.approvePatches(now, fence)).toBe(2);
      expect(await b.store.approvePatches(now, fence)).toBe(0);
      expect(await b.store.detectOffline(OFFLINE_AFTER_MS, now, fence)).toBe(2);
      expect(await b.store.detectOffline(OFFLINE_AFTER_MS, now, fence)).toBe(0);
      await b.store.checkin(agentReq(2, { os: 'linux' }), now);
      expect(await b.store.detectOffline(OFFLINE_AFTER_MS, now, fence)).toBe(0);
      expect(await b.scalar('SELECT COUNT(*) AS n FROM alerts')).toBe(2);
      expect(await b.store.queueEmail(now, fence)).toBe(1);
      expect(await b.store.queueEmail(now + 2 * MIN, fence)).toBe(0);
      expect(await b.scalar('SELECT COUNT(*) AS n FROM emails')).toBe(1);
    });

    it('group commit: 500 concurrent check-ins commit together; a failing write fails alone', async () => {
      const t = Date.now();
      const writes: Array<Promise<unknown>> = [];
      for (let i = 0; i < 500; i++) {
        writes.push(b.store.checkin(agentReq(i % 50, { seq: i }), t));
        if (i === 250) writes.push(b.store.inventory(idOf(0), { size: 10n }, t)); // JSON cannot encode a BigInt
      }
      const settled = await Promise.allSettled(writes);
      expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(500);
      expect(settled[251].status).toBe('rejected');
      expect(await b.scalar('SELECT COUNT(*) AS n FROM checkins')).toBe(500);
      expect(await b.scalar('SELECT COUNT(*) AS n FROM agents')).toBe(50);
      // 501 writes queued in one turn, 128 per batch: ceil(501 / 128) = 4 commits.
      if (b.commitStats) expect(b.commitStats()).toEqual({ commits: 4, writes: 501 });
    });
  });
}
