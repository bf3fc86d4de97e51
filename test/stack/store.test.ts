import { deriveKey } from '../../src/core/identity.js';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GroupCommit, lockOrder, type WriteJob } from '../../src/stack/store/group-commit.js';
import { RemoteStore } from '../../src/stack/store/remote.js';
import { SqliteStore } from '../../src/stack/store/sqlite.js';
import { startRole } from './role-harness.js';
import { agentReq, storeContract, type StoreBackend } from './store-contract.js';

function tempDir(): { dir: string; rm(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'rmmscale-store-'));
  return { dir, rm: () => rmSync(dir, { recursive: true, force: true }) };
}

function sqliteScalar(path: string): (sql: string) => Promise<number> {
  return async (sql) => {
    const db = new Database(path, { readonly: true });
    try {
      return Number((db.prepare(sql).get() as { n: number | bigint }).n);
    } finally {
      db.close();
    }
  };
}

storeContract('SQLite', async (): Promise<StoreBackend> => {
  const tmp = tempDir();
  const path = join(tmp.dir, 'db.sqlite');
  const store = new SqliteStore(path);
  await store.init();
  return {
    store,
    another: async () => {
      const s = new SqliteStore(path);
      await s.init();
      return s;
    },
    scalar: sqliteScalar(path),
    commitStats: () => store.commitStats,
    close: async () => {
      await store.close();
      tmp.rm();
    },
  };
});

storeContract('remote store → db node (SQLite)', async (): Promise<StoreBackend> => {
  const tmp = tempDir();
  const path = join(tmp.dir, 'db.sqlite');
  const backing = new SqliteStore(path);
  await backing.init();
  const node = await startRole({ role: 'db', name: 'db' }, backing);
  const store = new RemoteStore(node.url, { connections: 8, key: deriveKey('test-secret', 'db-rpc') });
  return {
    store,
    another: async () => new RemoteStore(node.url, { connections: 2, key: deriveKey('test-secret', 'db-rpc') }),
    scalar: sqliteScalar(path),
    close: async () => {
      await store.close();
      await node.close();
      await backing.close();
      tmp.rm();
    },
  };
});

describe('SQLite store: durability settings and group commit', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('runs WAL with synchronous=FULL and a busy timeout', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.rm);
    const store = new SqliteStore(join(tmp.dir, 'db.sqlite'));
    cleanups.push(() => store.close());
    await store.init();
    const db = new Database(join(tmp.dir, 'db.sqlite'));
    cleanups.push(() => void db.close());
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    // synchronous and busy_timeout are per connection: read them through the store's own handle.
    const own = (store as unknown as { db: Database.Database }).db;
    expect(own.pragma('synchronous', { simple: true })).toBe(2); // 2 = FULL
    expect(own.pragma('busy_timeout', { simple: true })).toBe(5000);
  });

  it('close() commits what is queued before closing, then refuses writes', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.rm);
    const path = join(tmp.dir, 'db.sqlite');
    const store = new SqliteStore(path, { groupCommit: { windowMs: 50, maxBatch: 1000 } });
    await store.init();
    const pending = [store.checkin(agentReq(1), 1000), store.checkin(agentReq(2), 1000)];
    await store.close();
    await Promise.all(pending);
    expect(await sqliteScalar(path)('SELECT COUNT(*) AS n FROM checkins')).toBe(2);
    await expect(store.checkin(agentReq(3), 1000)).rejects.toThrow('the store is closed');
  });
});

describe('GroupCommit', () => {
  it('batches writes within the window, up to maxBatch, one batch in flight at a time', async () => {
    const batches: number[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const gc = new GroupCommit<null>(
      async (jobs) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        batches.push(jobs.length);
        await new Promise((r) => setTimeout(r, 5));
        jobs.forEach((j, i) => j.resolve(i));
        inFlight--;
      },
      { windowMs: 2, maxBatch: 10 },
    );
    const first = await Promise.all(Array.from({ length: 25 }, () => gc.submit(() => 0)));
    expect(batches).toEqual([10, 10, 5]);
    expect(first.slice(0, 3)).toEqual([0, 1, 2]);
    await gc.submit(() => 0);
    expect(batches).toEqual([10, 10, 5, 1]);
    expect(maxInFlight).toBe(1);
    expect({ commits: gc.commits, writes: gc.writes }).toEqual({ commits: 4, writes: 26 });
    await gc.close();
  });

  it('maxInFlight lets that many batches commit at once, never more', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const gc = new GroupCommit<null>(
      async (jobs) => {
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        for (const j of jobs) j.resolve(null);
      },
      { windowMs: 1, maxBatch: 4, maxInFlight: 2 },
    );
    await Promise.all(Array.from({ length: 40 }, () => gc.submit(() => null)));
    expect(maxInFlight).toBe(2);
    expect({ commits: gc.commits, writes: gc.writes }).toEqual({ commits: 10, writes: 40 });
    await gc.close();
  });

  it('lockOrder runs jobs by key, keeping submission order within a key', () => {
    const job = (key: string): WriteJob<null> => ({ key, run: () => null, resolve: () => undefined, reject: () => undefined });
    expect(lockOrder(['b', 'a', '', 'b', 'a', 'c'].map(job))).toEqual([2, 1, 4, 0, 3, 5]);
  });

  it('a committer that throws rejects every write of its batch', async () => {
    const gc = new GroupCommit<null>(() => {
      throw new Error('disk full');
    }, { windowMs: 0, maxBatch: 10 });
    const r = await Promise.allSettled([gc.submit(() => 1), gc.submit(() => 2)]);
    expect(r.map((x) => x.status)).toEqual(['rejected', 'rejected']);
    await gc.close();
  });
});
