import Database, { type Database as Db, type Statement } from 'better-sqlite3';
import type { LedgerRow, TelemetrySample } from '../types.js';
import { LEDGER_PAGE_MAX } from '../store/schema.js';

/**
 * The analytics plane's store (seed 004: "Metrics, logs, events — the fast-changing data that gets
 * queried"): relay telemetry and the alerts raised from it, in a SQLite file of its own, apart from
 * the control plane's database, so that each can be slowed or lost without the other.
 *
 * Durable as the control plane's: WAL, synchronous=FULL; a batch is one transaction, and the relay
 * acks its frames only after it returns. Each frame is kept once per idempotency key (agent id +
 * seq, a unique index): a frame sent again after a lost ack is not stored twice and raises no second
 * alert.
 *
 * Alert rule (ALERT_RULE): a sample with cpuPct ≥ 95 raises a `cpu-high` alert in the same
 * transaction. The alert keeps the agent's send time of the frame (`sent_ms`, the agent's clock) and
 * its own creation time (`created_ms`, this node's clock at the transaction): the alert delay is
 * created − sent (the agent, the relay's batch wait, the trip to this node and its queue).
 */

export const ALERT_RULE = { kind: 'cpu-high', cpuPctAtLeast: 95 } as const;

/** One alert's timing, as the run reads it back: [id, sentMs, createdMs]. */
export type AlertTiming = [number, number, number];

export const ALERTS_PAGE_MAX = 10_000;

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS telemetry (agent_id TEXT NOT NULL, seq INTEGER, relay TEXT NOT NULL, at_ms INTEGER NOT NULL, sent_ms INTEGER, cpu_pct REAL, mem_pct REAL)`,
  `CREATE UNIQUE INDEX IF NOT EXISTS telemetry_key ON telemetry (agent_id, seq)`,
  `CREATE TABLE IF NOT EXISTS alerts (id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, seq INTEGER, kind TEXT NOT NULL, value REAL NOT NULL, sent_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL)`,
];

export interface IngestOutcome {
  /** Frames stored now. */
  stored: number;
  /** Frames whose key was already stored (a resend): not stored again. */
  duplicates: number;
  alerts: number;
}

export class AnalyticsStore {
  private readonly db: Db;
  private readonly insert: Statement;
  private readonly insertAlert: Statement;
  private readonly ingestTx: (samples: TelemetrySample[], nowMs: number) => IngestOutcome;
  private closed = false;

  constructor(readonly path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    for (const s of SCHEMA) this.db.exec(s);
    this.insert = this.db.prepare(`INSERT INTO telemetry (agent_id, seq, relay, at_ms, sent_ms, cpu_pct, mem_pct) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id, seq) DO NOTHING`);
    this.insertAlert = this.db.prepare(`INSERT INTO alerts (agent_id, seq, kind, value, sent_ms, created_ms) VALUES (?, ?, ?, ?, ?, ?)`);
    this.ingestTx = this.db.transaction((samples: TelemetrySample[], nowMs: number): IngestOutcome => {
      const out: IngestOutcome = { stored: 0, duplicates: 0, alerts: 0 };
      for (const s of samples) {
        const seq = s.seq ?? null;
        const sent = s.sentMs ?? s.atMs;
        if (this.insert.run(s.agentId, seq, s.relay, Math.round(s.atMs), Math.round(sent), s.cpuPct, s.memPct).changes === 0) {
          out.duplicates++;
          continue;
        }
        out.stored++;
        if (s.cpuPct >= ALERT_RULE.cpuPctAtLeast) {
          this.insertAlert.run(s.agentId, seq, ALERT_RULE.kind, s.cpuPct, Math.round(sent), Math.round(nowMs));
          out.alerts++;
        }
      }
      return out;
    });
  }

  /** Store a batch and raise its alerts, in one committed transaction (`nowMs`: the alerts' creation time). */
  ingest(samples: TelemetrySample[], nowMs: number): IngestOutcome {
    return this.ingestTx(samples, nowMs);
  }

  /** The ledger's read: stored frame keys from `fromSeq` up, in (agentId, seq) order after `after`. */
  ledgerKeys(fromSeq: number, after: { agentId: string; seq: number } | null, limit: number): LedgerRow[] {
    const a = after ?? { agentId: '', seq: -1 };
    const rows = this.db
      .prepare(
        `SELECT agent_id, seq, COUNT(*) AS copies FROM telemetry WHERE seq >= ? AND (agent_id > ? OR (agent_id = ? AND seq > ?))
         GROUP BY agent_id, seq ORDER BY agent_id, seq LIMIT ?`,
      )
      .all(fromSeq, a.agentId, a.agentId, a.seq, Math.max(1, Math.min(limit, LEDGER_PAGE_MAX))) as Array<{ agent_id: string; seq: number; copies: number }>;
    return rows.map((r) => ({ agentId: r.agent_id, seq: r.seq, copies: r.copies }));
  }

  /** Alerts after id `afterId`, oldest first, at most `limit`: [id, sentMs, createdMs]. */
  alerts(afterId: number, limit: number): AlertTiming[] {
    const rows = this.db.prepare(`SELECT id, sent_ms, created_ms FROM alerts WHERE id > ? ORDER BY id LIMIT ?`).all(afterId, Math.max(1, Math.min(limit, ALERTS_PAGE_MAX))) as Array<{ id: number; sent_ms: number; created_ms: number }>;
    return rows.map((r) => [r.id, r.sent_ms, r.created_ms]);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}
