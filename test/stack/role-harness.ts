import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { loadRole } from '../../src/stack/roles/index.js';
import { NodeMetrics } from '../../src/stack/runtime/node-metrics.js';
import { NodeServer } from '../../src/stack/runtime/node-server.js';
import type { NodeSpec, RoleContext, Store } from '../../src/stack/types.js';

/**
 * A stack role run in-process behind the real node runtime (NodeServer) on 127.0.0.1:0, with a
 * RoleContext the test builds: what a node process does, minus the process.
 */
export interface InProcessNode {
  url: string;
  metrics: NodeMetrics;
  logs: string[];
  close(): Promise<void>;
}

export async function startRole(spec: Partial<NodeSpec> & Pick<NodeSpec, 'role'>, store: Store | null): Promise<InProcessNode> {
  const full: NodeSpec = { name: `${spec.role}-test`, tier: spec.role, host: '127.0.0.1', port: 0, secret: 'test-secret', ...spec };
  const metrics = new NodeMetrics(full);
  const logs: string[] = [];
  const ctx: RoleContext = { spec: full, store, metrics, log: (m) => logs.push(m) };
  const role = await (await loadRole(full.role))(ctx);
  const server = new NodeServer(full, role, metrics);
  const { url } = await server.listen();
  return { url, metrics, logs, close: () => server.close() };
}

export const PG_URL = process.env.RMMSCALE_TEST_PG_URL;

/**
 * PostgreSQL for tests: RMMSCALE_TEST_PG_URL (as .ci/run exports it). Missing locally: the suite
 * is skipped with the reason printed; missing under CI: a failure, so CI cannot skip it silently.
 */
export function pgAvailability(): { skip: boolean; reason: string } {
  if (PG_URL) return { skip: false, reason: '' };
  if (process.env.CI) throw new Error('RMMSCALE_TEST_PG_URL is not set under CI: the PostgreSQL tests must run there (.ci/run starts a cluster)');
  const reason = 'RMMSCALE_TEST_PG_URL is not set: PostgreSQL tests skipped (start a cluster as .ci/run does to run them)';
  process.stderr.write(`${reason}\n`);
  return { skip: true, reason };
}

/** A fresh schema in the test cluster, reached through search_path in the URL. */
export async function freshPgSchema(base: string): Promise<{ url: string; drop(): Promise<void> }> {
  const schema = `t_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const u = new URL(base);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}
