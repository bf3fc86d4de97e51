import Database, { type Database as Db } from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import type { CheckinRequest, CommandResult, PendingCommand } from '../../core/protocol.js';
import type { AgentFilter, AgentRow, Store, TelemetrySample } from '../types.js';
import { OFFLINE_AFTER_MS, SCHEMA_STATEMENTS } from './schema.js';

/**
 * Embedded SQLite (better-sqlite3): WAL, busy timeout, synchronous=FULL so that every acknowledged
 * write survives a power cut. Writes use group commit: every write arriving in the same event-loop
 * turn joins one transaction, and each caller's promise resolves only after that commit. One
 * check-in per transaction runs at ~3.5k/s with FULL on these machines; batches run at ~14k/s.
 */

type Job = { run: (db: Db) => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void };

const MAX_BATCH = 256;

interface AgentDbRow {
  id: string;
  hostname: string;
  os: string;
  agent_version: string;
  client: string;
  last_seen_ms: number;
  group_name: string | null;
}

function toRow(r: AgentDbRow, nowMs: number): AgentRow {
  return {
    id: r.id,
    hostname: r.hostname,
    os: r.os,
    agentVersion: r.agent_version,
    client: r.client,
    lastSeenMs: Number(r.last_seen_ms),
    online: nowMs - Number(r.last_seen_ms) < OFFLINE_AFTER_MS,
    groupName: r.group_name,
  };
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly db: Db;
  private queue: Job[] = [];
  private scheduled = false;
  private closed = false;
  /** Commits so far, and writes they carried: the batching ratio shows on /metrics. */
  commits = 0;
  writes = 0;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
  }

  async init(): Promise<void> {
    this.db.transaction(() => {
      for (const s of SCHEMA_STATEMENTS) this.db.exec(s);
    })();
  }

  /** Queue a write; it commits with whatever else arrives in this turn of the event loop. */
  private write<T>(run: (db: Db) => T): Promise<T> {
    if (this.closed) return Promise.reject(new Error('store closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      const results: Array<{ ok: boolean; value: unknown }> = [];
      try {
        this.db.transaction(() => {
          for (const job of batch) {
            // A failing job rolls back only itself (savepoint), not its batch-mates.
            try {
              results.push({ ok: true, value: this.db.transaction(job.run)(this.db) });
            } catch (err) {
              results.push({ ok: false, value: err });
            }
          }
        })();
      } catch (err) {
        for (const job of batch) job.reject(err);
        continue;
      }
      this.commits++;
      this.writes += batch.length;
      batch.forEach((job, i) => (results[i].ok ? job.resolve(results[i].value) : job.reject(results[i].value)));
    }
  }

  checkin(req: CheckinRequest, atMs: number): Promise<PendingCommand[]> {
    return this.write((db) => {
      db.prepare(
        `INSERT INTO agents (id, hostname, os, agent_version, client, first_seen_ms, last_seen_ms, checkins)
         VALUES (?, ?, ?, ?, ?, ?, ?, 1)
         ON CONFLICT (id) DO UPDATE SET hostname = excluded.hostname, os = excluded.os, agent_version = excluded.agent_version,
           client = excluded.client, last_seen_ms = excluded.last_seen_ms, checkins = agents.checkins + 1, offline_alerted = 0`,
      ).run(req.agentId, req.hostname, req.os, req.agentVersion, req.client, atMs, atMs);
      db.prepare(`INSERT INTO checkins (agent_id, at_ms, seq, cpu_pct, mem_pct, disk_free_pct) VALUES (?, ?, ?, ?, ?, ?)`).run(
        req.agentId,
        atMs,
        req.seq,
        req.status.cpuPct,
        req.status.memPct,
        req.status.diskFreePct,
      );
      const pending = db.prepare(`SELECT id, kind, args FROM commands WHERE agent_id = ? AND delivered_ms IS NULL ORDER BY created_ms LIMIT 20`).all(req.agentId) as Array<{
        id: string;
        kind: string;
        args: string;
      }>;
      if (pending.length > 0) {
        const mark = db.prepare(`UPDATE commands SET delivered_ms = ? WHERE id = ?`);
        for (const c of pending) mark.run(atMs, c.id);
      }
      return pending.map((c) => ({ id: c.id, kind: c.kind, args: JSON.parse(c.args) as Record<string, unknown> }));
    });
  }

  heartbeat(agentId: string, atMs: number): Promise<void> {
    return this.write((db) => {
      db.prepare(`UPDATE agents SET last_seen_ms = ?, offline_alerted = 0 WHERE id = ?`).run(atMs, agentId);
    });
  }

  inventory(agentId: string, doc: unknown, atMs: number): Promise<void> {
    return this.write((db) => {
      db.prepare(`INSERT INTO inventory (agent_id, at_ms, doc) VALUES (?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET at_ms = excluded.at_ms, doc = excluded.doc`).run(
        agentId,
        atMs,
        JSON.stringify(doc),
      );
    });
  }

  commandResults(agentId: string, results: CommandResult[], atMs: number): Promise<void> {
    return this.write((db) => {
      const st = db.prepare(`UPDATE commands SET result_exit = ?, result_output = ?, result_ms = ? WHERE id = ? AND agent_id = ?`);
      for (const r of results) st.run(r.exitCode, String(r.output).slice(0, 65_536), atMs, r.commandId, agentId);
    });
  }

  createCommand(agentId: string, kind: string, args: Record<string, unknown>, createdBy: string): Promise<string | null> {
    return this.write((db) => {
      if (!db.prepare(`SELECT 1 FROM agents WHERE id = ?`).get(agentId)) return null;
      const id = randomUUID();
      db.prepare(`INSERT INTO commands (id, agent_id, kind, args, created_by, created_ms) VALUES (?, ?, ?, ?, ?, ?)`).run(id, agentId, kind, JSON.stringify(args), createdBy, Date.now());
      return id;
    });
  }

  async listAgents(f: AgentFilter, nowMs: number): Promise<AgentRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.status === 'online') {
      where.push('last_seen_ms >= ?');
      params.push(nowMs - OFFLINE_AFTER_MS);
    } else if (f.status === 'offline') {
      where.push('last_seen_ms < ?');
      params.push(nowMs - OFFLINE_AFTER_MS);
    }
    if (f.client) {
      where.push('client = ?');
      params.push(f.client);
    }
    if (f.os) {
      where.push('os = ?');
      params.push(f.os);
    }
    const sql = `SELECT id, hostname, os, agent_version, client, last_seen_ms, group_name FROM agents ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ?`;
    return (this.db.prepare(sql).all(...params, f.limit) as AgentDbRow[]).map((r) => toRow(r, nowMs));
  }

  async statsBy(field: 'os' | 'client'): Promise<Array<{ key: string; agents: number; online: number }>> {
    const col = field === 'os' ? 'os' : 'client';
    const rows = this.db
      .prepare(`SELECT ${col} AS key, COUNT(*) AS agents, SUM(CASE WHEN last_seen_ms >= ? THEN 1 ELSE 0 END) AS online FROM agents GROUP BY ${col} ORDER BY ${col}`)
      .all(Date.now() - OFFLINE_AFTER_MS) as Array<{ key: string; agents: number; online: number }>;
    return rows.map((r) => ({ key: r.key, agents: Number(r.agents), online: Number(r.online) }));
  }

  async syncAgents(afterId: string | null, limit: number): Promise<{ agents: AgentRow[]; next: string | null }> {
    const rows = this.db
      .prepare(`SELECT id, hostname, os, agent_version, client, last_seen_ms, group_name FROM agents WHERE id > ? ORDER BY id LIMIT ?`)
      .all(afterId ?? '', limit) as AgentDbRow[];
    const now = Date.now();
    return { agents: rows.map((r) => toRow(r, now)), next: rows.length === limit ? rows[rows.length - 1].id : null };
  }

  async countCheckins(): Promise<number> {
    return Number((this.db.prepare(`SELECT COUNT(*) AS n FROM checkins`).get() as { n: number }).n);
  }

  telemetry(samples: TelemetrySample[]): Promise<void> {
    return this.write((db) => {
      const st = db.prepare(`INSERT INTO telemetry (agent_id, relay, at_ms, cpu_pct, mem_pct) VALUES (?, ?, ?, ?, ?)`);
      for (const s of samples) st.run(s.agentId, s.relay, s.atMs, s.cpuPct, s.memPct);
    });
  }

  setPresence(agentId: string, relay: string | null, atMs: number): Promise<void> {
    return this.write((db) => {
      if (relay === null) db.prepare(`DELETE FROM presence WHERE agent_id = ?`).run(agentId);
      else db.prepare(`INSERT INTO presence (agent_id, relay, at_ms) VALUES (?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET relay = excluded.relay, at_ms = excluded.at_ms`).run(agentId, relay, atMs);
    });
  }

  async getPresence(agentId: string): Promise<string | null> {
    const r = this.db.prepare(`SELECT relay FROM presence WHERE agent_id = ?`).get(agentId) as { relay: string } | undefined;
    return r?.relay ?? null;
  }

  acquireLease(name: string, holder: string, ttlMs: number, atMs: number): Promise<boolean> {
    return this.write((db) => {
      const r = db
        .prepare(
          `INSERT INTO leases (name, holder, until_ms) VALUES (?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
           WHERE leases.holder = excluded.holder OR leases.until_ms < ?`,
        )
        .run(name, holder, atMs + ttlMs, atMs);
      return r.changes === 1;
    });
  }

  async leaseHolder(name: string): Promise<{ holder: string; untilMs: number } | null> {
    const r = this.db.prepare(`SELECT holder, until_ms FROM leases WHERE name = ?`).get(name) as { holder: string; until_ms: number } | undefined;
    return r ? { holder: r.holder, untilMs: Number(r.until_ms) } : null;
  }

  releaseLease(name: string, holder: string): Promise<void> {
    return this.write((db) => {
      db.prepare(`DELETE FROM leases WHERE name = ? AND holder = ?`).run(name, holder);
    });
  }

  rebuildGroups(atMs: number): Promise<number> {
    return this.write((db) => {
      // Dynamic groups: one per client × OS, as RMM search groups do.
      db.prepare(`UPDATE agents SET group_name = client || '/' || os WHERE group_name IS NULL OR group_name <> client || '/' || os`).run();
      db.prepare(`DELETE FROM groups`).run();
      return db.prepare(`INSERT INTO groups (name, agents, rebuilt_ms) SELECT group_name, COUNT(*), ? FROM agents GROUP BY group_name`).run(atMs).changes;
    });
  }

  approvePatches(atMs: number): Promise<number> {
    return this.write((db) => {
      // A new patch per client appears each run; approval marks every pending one.
      db.prepare(`INSERT OR IGNORE INTO patches (id, client, approved_ms) SELECT 'kb-' || ? || '-' || client, client, NULL FROM agents GROUP BY client`).run(Math.floor(atMs / 60_000));
      return db.prepare(`UPDATE patches SET approved_ms = ? WHERE approved_ms IS NULL`).run(atMs).changes;
    });
  }

  detectOffline(offlineAfterMs: number, atMs: number): Promise<number> {
    return this.write((db) => {
      const cutoff = atMs - offlineAfterMs;
      db.prepare(`INSERT INTO alerts (agent_id, kind, at_ms) SELECT id, 'offline', ? FROM agents WHERE last_seen_ms < ? AND offline_alerted = 0`).run(atMs, cutoff);
      return db.prepare(`UPDATE agents SET offline_alerted = 1 WHERE last_seen_ms < ? AND offline_alerted = 0`).run(cutoff).changes;
    });
  }

  queueEmail(atMs: number): Promise<number> {
    return this.write((db) => {
      const n = (db.prepare(`SELECT COUNT(*) AS n FROM alerts WHERE at_ms > ?`).get(atMs - 60_000) as { n: number }).n;
      if (Number(n) === 0) return 0;
      db.prepare(`INSERT INTO emails (kind, body, queued_ms) VALUES ('alert-digest', ?, ?)`).run(`${n} new alerts`, atMs);
      return 1;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.queue.length > 0) this.flush();
    this.closed = true;
    this.db.close();
  }
}
