import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { CheckinRequest } from '../src/core/protocol.js';
import { round } from '../src/core/units.js';
import { DbHandler } from '../src/stack/roles/db.js';
import { NodeMetrics } from '../src/stack/runtime/node-metrics.js';
import { NodeServer } from '../src/stack/runtime/node-server.js';
import type { GroupCommitOptions } from '../src/stack/store/group-commit.js';
import { PostgresStore } from '../src/stack/store/postgres.js';
import { RemoteStore } from '../src/stack/store/remote.js';
import { SqliteStore } from '../src/stack/store/sqlite.js';
import type { Store } from '../src/stack/types.js';
import type { BenchRow } from './lib.js';
import { deriveKey } from '../src/core/identity.js';

/**
 * Check-in throughput of the stores (upsert agent + insert check-in + hand out commands, durable
 * on resolve), with and without group commit, `concurrency` check-ins outstanding at a time.
 *
 *   npm run build && node dist/bench/store-checkins.js [checkins=20000] [concurrency=256]
 *   RMMSCALE_TEST_PG_URL=postgres://… adds the PostgreSQL rows.
 */

const AGENTS = 2000;

function req(i: number): CheckinRequest {
  return {
    agentId: `agt-${(i % AGENTS).toString(16).padStart(16, '0')}`,
    hostname: `HOST-${i % AGENTS}`,
    os: 'windows',
    agentVersion: '2025.3.1',
    client: `client-${i % 250}`,
    seq: i,
    status: { cpuPct: i % 100, memPct: 50, diskFreePct: 60, uptimeSec: i, loggedOnUser: null },
  };
}

async function drive(store: Store, total: number, concurrency: number): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await store.checkin(req(next++), Date.now());
    }),
  );
  return total / ((performance.now() - t0) / 1000);
}

const modes: Array<[string, GroupCommitOptions]> = [
  ['one check-in per transaction', { windowMs: 0, maxBatch: 1 }],
  ['group commit, same turn (SQLite default)', { windowMs: 0, maxBatch: 128 }],
  ['group commit, 1 ms window', { windowMs: 1, maxBatch: 128 }],
  ['group commit, 1 ms window, 4 batches at once', { windowMs: 1, maxBatch: 128, maxInFlight: 4 }],
  ['group commit, same turn, 4 batches at once (PostgreSQL default)', { windowMs: 0, maxBatch: 128, maxInFlight: 4 }],
];

type Row = [store: string, mode: string, ratePerSec: number, writesPerCommit: string];

export async function measureStores(total: number, concurrency: number): Promise<Row[]> {
  const rows: Row[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'rmmscale-bench-store-'));
  try {
    for (const [label, gc] of modes) {
      if (gc.maxInFlight) continue; // SQLite commits synchronously: one batch at a time regardless
      const s = new SqliteStore(join(dir, `${rows.length}.sqlite`), { groupCommit: gc });
      await s.init();
      const rate = await drive(s, total, concurrency);
      rows.push(['sqlite', label, rate, (s.commitStats.writes / s.commitStats.commits).toFixed(1)]);
      await s.close();
    }
    {
      const backing = new SqliteStore(join(dir, 'remote.sqlite'));
      await backing.init();
      const spec = { name: 'db', role: 'db' as const, tier: 'db', host: '127.0.0.1', port: 0, secret: 'x' };
      const server = new NodeServer(spec, new DbHandler(backing, spec.secret), new NodeMetrics(spec));
      const { url } = await server.listen();
      const remote = new RemoteStore(url, { connections: 32, key: deriveKey(spec.secret, 'db-rpc') });
      const rate = await drive(remote, total, concurrency);
      rows.push(['remote → db node (sqlite), one process', 'group commit, same turn', rate, (backing.commitStats.writes / backing.commitStats.commits).toFixed(1)]);
      await remote.close();
      await server.close();
      await backing.close();
    }
    const pgUrl = process.env.RMMSCALE_TEST_PG_URL;
    if (pgUrl) {
      // A schema of its own, dropped afterwards: the cluster may be shared with tests.
      const schema = `bench_${process.pid}`;
      const admin = new pg.Client({ connectionString: pgUrl });
      await admin.connect();
      const u = new URL(pgUrl);
      u.searchParams.set('options', `-c search_path=${schema}`);
      for (const [label, gc] of modes) {
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE; CREATE SCHEMA ${schema}`);
        const s = new PostgresStore(u.toString(), { groupCommit: gc });
        await s.init();
        const rate = await drive(s, total, concurrency);
        rows.push(['postgres', label, rate, (s.commitStats.writes / s.commitStats.commits).toFixed(1)]);
        await s.close();
      }
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** For `npm run bench`: group commit against one transaction per check-in, same store, same run. */
export async function benchStoreCheckins(opts: { total: number; concurrency: number }): Promise<BenchRow[]> {
  const rows = await measureStores(opts.total, opts.concurrency);
  const out: BenchRow[] = [];
  for (const store of ['sqlite', 'postgres']) {
    const single = rows.find((r) => r[0] === store && r[1] === 'one check-in per transaction');
    const best = rows.filter((r) => r[0] === store && r !== single).sort((a, b) => b[2] - a[2])[0];
    if (!single || !best) continue;
    const ratio = round(best[2] / single[2], 2);
    out.push({
      bench: 'store',
      metric: `${store} durable check-ins/s, ${opts.concurrency} outstanding: ${best[1]}`,
      rmmscale: Math.round(best[2]),
      peer: Math.round(single[2]),
      peerName: 'one transaction per check-in',
      ratio,
      target: '≥ 3× one transaction per check-in',
      pass: ratio >= 3,
      note: rows.filter((r) => r[0] === store).map((r) => `${r[1]}: ${Math.round(r[2])}/s (${r[3]} per commit)`).join('; '),
    });
  }
  const remote = rows.find((r) => r[0].startsWith('remote'));
  const sqliteBest = out.find((r) => r.metric.startsWith('sqlite'));
  if (remote && sqliteBest) {
    out.push({
      bench: 'store',
      metric: 'check-ins/s through the db node RPC (remote store) vs the embedded store',
      rmmscale: Math.round(remote[2]),
      peer: sqliteBest.rmmscale,
      peerName: 'embedded sqlite',
      ratio: round(remote[2] / sqliteBest.rmmscale, 2),
      target: 'reference (the RPC hop is the 3-way split\'s price)',
      pass: true,
      note: `${remote[3]} writes per commit`,
    });
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const total = Number(process.argv[2] ?? 20_000);
  const concurrency = Number(process.argv[3] ?? 256);
  measureStores(total, concurrency)
    .then((rows) => {
      console.log(`${total} check-ins, ${concurrency} outstanding, ${AGENTS} agents`);
      console.log('| store | mode | check-ins/s | writes per commit |\n| --- | --- | --- | --- |');
      for (const [store, mode, rate, per] of rows) console.log(`| ${store} | ${mode} | ${Math.round(rate)} | ${per} |`);
    })
    .catch((err: unknown) => {
      process.stderr.write(`bench store: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    });
}
