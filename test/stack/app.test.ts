import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadRole } from '../../src/stack/roles/index.js';
import { DbAgent, DbAgentLeaseError, LEASE_NAME } from '../../src/stack/roles/app.js';
import { NodeMetrics } from '../../src/stack/runtime/node-metrics.js';
import { SqliteStore } from '../../src/stack/store/sqlite.js';
import type { NodeSpec, RoleContext, RoleHandler } from '../../src/stack/types.js';
import { forkNode, stopNode, type ForkedNode } from '../helpers/fork-node.js';
import { startRole } from './role-harness.js';
import { SECRET, agent, asAgent, asUser, call, checkinOf } from './web-fixture.js';
import { deriveKey } from '../../src/core/identity.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, limitMs = 10_000): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('app role: the DBAgent singleton', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function sqlite(): Promise<{ store: SqliteStore; path: string }> {
    const dir = mkdtempSync(join(tmpdir(), 'rmmscale-app-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'db.sqlite');
    const store = new SqliteStore(path);
    await store.init();
    cleanups.push(() => store.close());
    return { store, path };
  }

  function ctxFor(name: string, store: SqliteStore, loopScale = 1): RoleContext {
    const spec: NodeSpec = { name, role: 'app', tier: 'app', host: '127.0.0.1', port: 0, secret: SECRET, app: { loopScale } };
    const metrics = new NodeMetrics(spec);
    cleanups.push(() => metrics.close());
    return { spec, store, metrics, log: () => undefined };
  }

  it('a second instance refuses to start, naming the holder and until when; after a clean stop one may start', async () => {
    const { store } = await sqlite();
    const create = await loadRole('app');
    const first: RoleHandler = await create(ctxFor('app-1', store));
    const err = await create(ctxFor('app-2', store)).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DbAgentLeaseError);
    const lease = await store.leaseHolder(LEASE_NAME);
    expect(lease?.holder).toMatch(new RegExp(`^app-1:${process.pid}#[A-Za-z0-9_-]{16}$`));
    expect((err as DbAgentLeaseError).code).toBe('ERR_DBAGENT_LEASE');
    expect((err as Error).message).toBe(
      `another DBAgent is running (lease held by app-1:${process.pid} until ${new Date(lease!.untilMs).toISOString()}); only one may run per stack`,
    );
    await first.close();
    expect(await store.leaseHolder(LEASE_NAME)).toBeNull();
    const second = await create(ctxFor('app-2', store));
    expect((await store.leaseHolder(LEASE_NAME))?.holder).toMatch(new RegExp(`^app-2:${process.pid}#`));
    await second.close();
  });

  it('a crashed holder (no renewals, no release) is taken over once its lease expires, not before', async () => {
    const { store, path } = await sqlite();
    // The crashed instance: its own connection, which then dies (renewals fail, nothing is released).
    const crashedStore = new SqliteStore(path);
    const crashed = new DbAgent(ctxFor('app-crashed', crashedStore), crashedStore, { leaseTtlMs: 600, renewMs: 100 });
    await crashed.start();
    cleanups.push(() => crashed.stop());
    await crashedStore.close();
    const t0 = Date.now();
    const next = new DbAgent(ctxFor('app-next', store), store, { leaseTtlMs: 600, renewMs: 100 });
    cleanups.push(() => next.stop());
    await expect(next.start()).rejects.toBeInstanceOf(DbAgentLeaseError);
    const tookOver = await until('the takeover', async () => next.start().then(() => Date.now(), () => null));
    expect(tookOver - t0).toBeGreaterThanOrEqual(400);
    expect(crashed.leader).toBe(false);
    expect(next.leader).toBe(true);
  });

  it('loops run at loopScale, touch the database, and report counts and timings through the node metrics', async () => {
    const { store } = await sqlite();
    const now = Date.now();
    await store.checkin({ ...checkinOf(agent) }, now - 60 * 60_000); // long offline
    const node = await startRole({ role: 'app', name: 'app', secret: SECRET, app: { loopScale: 0.001 } }, store);
    cleanups.push(() => node.close());
    const text = await until('loop runs in /metrics', async () => {
      const t = await (await fetch(`${node.url}/metrics`)).text();
      return ['rebuild-groups', 'approve-patches', 'detect-offline', 'queue-email'].every((l) => t.includes(`event="loop:${l}"`)) ? t : null;
    });
    expect(text).toMatch(/rmmscale_events_total\{[^}]*event="loop:detect-offline:rows"[^}]*\} 1\n/);
    const hdr = (await (await fetch(`${node.url}/admin/hdr`, { headers: { authorization: `Bearer ${deriveKey(SECRET, 'admin')}` } })).json()) as { histograms: Record<string, string> };
    expect(Object.keys(hdr.histograms)).toEqual(expect.arrayContaining(['op:loop:rebuild-groups', 'op:loop:detect-offline']));
    expect((await call(node.url, 'GET', '/api/v1/agents', undefined, asUser())).status).toBe(404);
  });

  it('single role: web (both APIs) and the DBAgent loops in one process', async () => {
    const { store } = await sqlite();
    const node = await startRole({ role: 'single', name: 'single', secret: SECRET, app: { loopScale: 0.001 } }, store);
    cleanups.push(() => node.close());
    expect((await call(node.url, 'POST', '/agent/v1/checkin', checkinOf(agent), asAgent())).status).toBe(200);
    const groups = await until('groups rebuilt', async () => {
      const r = (await call(node.url, 'GET', '/api/v1/agents', undefined, asUser())).json as { agents: Array<{ groupName: string | null }> };
      return r.agents[0]?.groupName ?? null;
    });
    expect(groups).toBe(`${agent.client}/${agent.os}`);
    expect((await store.leaseHolder(LEASE_NAME))?.holder).toMatch(new RegExp(`^single:${process.pid}#`));
  });
});

describe('app role in real node processes', () => {
  const nodes: ForkedNode[] = [];
  let dir = '';
  afterEach(async () => {
    for (const n of nodes.splice(0)) await stopNode(n);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a second app process on the same database exits with one line: ERR_DBAGENT_LEASE', async () => {
    dir = mkdtempSync(join(tmpdir(), 'rmmscale-app-proc-'));
    const spec = (name: string): NodeSpec => ({ name, role: 'app', tier: 'app', host: '127.0.0.1', port: 0, secret: SECRET, db: { kind: 'sqlite', path: join(dir, 'db.sqlite') } });
    const first = forkNode(spec('app-1'));
    nodes.push(first);
    expect((await first.first).type).toBe('ready');
    const second = forkNode(spec('app-2'));
    nodes.push(second);
    const msg = await second.first;
    expect(msg).toMatchObject({ type: 'failed', name: 'app-2', code: 'ERR_DBAGENT_LEASE' });
    expect((msg as { error: string }).error).toMatch(/^another DBAgent is running \(lease held by app-1:\d+ until \d{4}-\d\d-\d\dT[\d:.]+Z\); only one may run per stack$/);
    expect((await second.exited).code).toBe(3);
    expect(second.stderr().trim().split('\n')).toHaveLength(1);
  });
});
