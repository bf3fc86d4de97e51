import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { deriveFleet, deriveKey } from '../../src/core/identity.js';
import type { CapacityProfile, DbSpec, NodeReadyMessage, NodeSpec } from '../../src/stack/types.js';
import { forkNode, stopNode, type ForkedNode } from '../helpers/fork-node.js';
import { PG_URL, freshPgSchema, pgAvailability } from './role-harness.js';
import { SECRET, checkinOf } from './web-fixture.js';

/**
 * The db tier as its own process (dist/src/stack/node-main.js): a web node reaches it over the
 * JSON RPC, the db node's /metrics shows per-operation query latency, its dbProfile limits it,
 * and a check-in acknowledged before it is killed with SIGKILL is in the database afterwards.
 */
const { skip: noPg } = pgAvailability();

describe('db node: the database tier as a process', () => {
  const nodes: ForkedNode[] = [];
  const pools: Pool[] = [];
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const p of pools.splice(0)) await p.close();
    for (const n of nodes.splice(0).reverse()) await stopNode(n);
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'rmmscale-dbnode-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  async function start(spec: Partial<NodeSpec> & Pick<NodeSpec, 'name' | 'role'>): Promise<NodeReadyMessage & { node: ForkedNode }> {
    const node = forkNode({ tier: spec.role, host: '127.0.0.1', port: 0, secret: SECRET, ...spec });
    nodes.push(node);
    const msg = await node.first;
    if (msg.type !== 'ready') throw new Error(`${spec.name} failed: ${msg.error}`);
    return { ...msg, node };
  }

  async function stack(db: DbSpec, dbProfile?: CapacityProfile): Promise<{ web: string; db: NodeReadyMessage & { node: ForkedNode } }> {
    const dbNode = await start({ name: 'db', role: 'db', db, dbProfile });
    const web = await start({ name: 'web-agent-1', role: 'web', db: { kind: 'remote', url: dbNode.url }, web: { serves: 'agent' } });
    return { web: web.url, db: dbNode };
  }

  const fleet = deriveFleet('db-node-test', SECRET, 400);

  async function checkin(pool: Pool, i: number, seq = 1): Promise<{ status: number; retryAfter: string | undefined }> {
    const a = fleet[i % fleet.length];
    const r = await pool.request({
      method: 'POST',
      path: '/agent/v1/checkin',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${a.token}`, 'x-agent-id': a.id },
      body: JSON.stringify(checkinOf(a, seq)),
    });
    await r.body.text();
    return { status: r.statusCode, retryAfter: r.headers['retry-after'] as string | undefined };
  }

  function count(path: string, table: string): number {
    const db = new Database(path, { readonly: true });
    try {
      return Number((db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n);
    } finally {
      db.close();
    }
  }

  it('serves check-ins for a web node and shows per-operation query latency on its /metrics', async () => {
    const path = join(tempDir(), 'db.sqlite');
    const s = await stack({ kind: 'sqlite', path });
    const pool = new Pool(s.web, { connections: 8 });
    pools.push(pool);
    const statuses = await Promise.all(Array.from({ length: 40 }, (_, i) => checkin(pool, i)));
    expect(statuses.every((x) => x.status === 200)).toBe(true);
    expect(count(path, 'checkins')).toBe(40);
    const text = await (await fetch(s.db.metricsUrl)).text();
    expect(text).toMatch(/rmmscale_requests_total\{[^}]*route="db:checkin"[^}]*status="200"[^}]*\} 40\n/);
    // The RPC is internal: without the db key, 401; with it, an unknown operation is a 404, and so is any GET.
    expect((await fetch(`${s.db.url}/db/v1/countCheckins`, { method: 'POST', body: '[]' })).status).toBe(401);
    const key = { authorization: `Bearer ${deriveKey(SECRET, 'db-rpc')}` };
    expect((await fetch(`${s.db.url}/db/v1/dropEverything`, { method: 'POST', body: '[]', headers: key })).status).toBe(404);
    expect((await fetch(`${s.db.url}/db/v1/countCheckins`, { headers: key })).status).toBe(404);
  });

  it('every check-in acknowledged before the db node is killed with SIGKILL is in the database; then web answers 503', async () => {
    const path = join(tempDir(), 'db.sqlite');
    const s = await stack({ kind: 'sqlite', path });
    const pool = new Pool(s.web, { connections: 16 });
    pools.push(pool);
    let acked = 0;
    let sent = 0;
    let killed = false;
    const worker = async (w: number): Promise<void> => {
      for (let k = 0; k < 400 && sent < 4000; k++) {
        const i = sent++;
        const r = await checkin(pool, i + w, i + 1);
        if (r.status === 200) acked++;
        if (acked >= 300 && !killed) {
          killed = true;
          s.db.node.proc.kill('SIGKILL');
        }
        if (killed && r.status !== 200) return;
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, w) => worker(w)));
    expect(killed).toBe(true);
    await s.db.node.exited;
    const rows = count(path, 'checkins');
    expect(acked).toBeGreaterThanOrEqual(300);
    expect(rows).toBeGreaterThanOrEqual(acked);
    const after = await checkin(pool, 0, 99_999);
    expect(after).toEqual({ status: 503, retryAfter: '1' });
  });

  it("the db node's profile (connections × per-query time) limits it: beyond its queue, 503 reaches the agent", async () => {
    const path = join(tempDir(), 'db.sqlite');
    const s = await stack({ kind: 'sqlite', path }, { workers: 1, queue: 1, service: { dist: 'constant', meanMs: 150 } });
    const pool = new Pool(s.web, { connections: 8 });
    pools.push(pool);
    const statuses = (await Promise.all(Array.from({ length: 6 }, (_, i) => checkin(pool, i)))).map((x) => x.status).sort();
    // One in service, one queued, four refused.
    expect(statuses).toEqual([200, 200, 503, 503, 503, 503]);
    const text = await (await fetch(s.db.metricsUrl)).text();
    expect(text).toMatch(/rmmscale_requests_total\{[^}]*route="db:checkin"[^}]*status="503"[^}]*\} 4\n/);
    expect(text).toMatch(/rmmscale_requests_total\{[^}]*route="db:checkin"[^}]*status="200"[^}]*\} 2\n/);
    // The database model's own gauges: one connection, four refusals; /healthz shows the same.
    expect(text).toMatch(/rmmscale_db_connections\{[^}]*node="db"[^}]*\} 1\n/);
    expect(text).toMatch(/rmmscale_db_rejected_total\{[^}]*node="db"[^}]*\} 4\n/);
    const health = (await (await fetch(`${s.db.url}/healthz`)).json()) as { db: { connections: number; queueDepth: number } | null };
    expect(health.db).toMatchObject({ connections: 1, queueDepth: 0 });
  });

  it.skipIf(noPg)('runs on PostgreSQL too (--db postgres)', async () => {
    const schema = await freshPgSchema(PG_URL!);
    cleanups.push(() => schema.drop());
    const s = await stack({ kind: 'postgres', url: schema.url });
    const pool = new Pool(s.web, { connections: 8 });
    pools.push(pool);
    const statuses = await Promise.all(Array.from({ length: 30 }, (_, i) => checkin(pool, i)));
    expect(statuses.every((x) => x.status === 200)).toBe(true);
    const text = await (await fetch(s.db.metricsUrl)).text();
    expect(text).toMatch(/route="db:checkin"[^}]*status="200"[^}]*\} 30\n/);
  });
});
