import { AGENT_COLUMNS, MAX_COMMANDS_PER_CHECKIN } from './schema.js';

/**
 * Every statement both stores run, in the dialect SQLite and PostgreSQL share: `?` placeholders
 * (the PostgreSQL store numbers them), `ON CONFLICT … DO UPDATE/NOTHING`, `RETURNING`, and
 * explicit CASTs wherever a parameter sits in a SELECT list (PostgreSQL cannot infer its type).
 */
export const SQL = {
  upsertAgent: `INSERT INTO agents (id, hostname, os, agent_version, client, first_seen_ms, last_seen_ms, checkins)
     VALUES (?, ?, ?, ?, ?, ?, ?, 1)
     ON CONFLICT (id) DO UPDATE SET hostname = excluded.hostname, os = excluded.os, agent_version = excluded.agent_version,
       client = excluded.client, last_seen_ms = excluded.last_seen_ms, checkins = agents.checkins + 1, offline_alerted = 0`,
  /** 0 rows changed: this key is already stored (a retry or a late commit), and nothing else is written. */
  insertCheckin: `INSERT INTO checkins (agent_id, at_ms, seq, cpu_pct, mem_pct, disk_free_pct) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (agent_id, seq) DO NOTHING`,
  /** An inventory's or command result's receipt; 0 rows changed: already applied. */
  insertWrite: `INSERT INTO agent_writes (agent_id, seq, kind, at_ms) VALUES (?, ?, ?, ?) ON CONFLICT (agent_id, seq) DO NOTHING`,
  /**
   * Every stored agent write with a key from `seq` up, after the (agent_id, seq) given, and its
   * copies (above 1: stored twice, which the unique keys forbid; counted, not assumed).
   */
  ledgerKeys: `SELECT agent_id, seq, SUM(n) AS copies FROM (
       SELECT agent_id, seq, COUNT(*) AS n FROM checkins WHERE seq >= ? GROUP BY agent_id, seq
       UNION ALL SELECT agent_id, seq, 1 AS n FROM agent_writes WHERE seq >= ?) k
     WHERE agent_id > ? OR (agent_id = ? AND seq > ?)
     GROUP BY agent_id, seq ORDER BY agent_id, seq LIMIT ?`,
  /**
   * The oldest commands the agent has not acknowledged, handed out at least once: a command stays
   * pending (delivered_ms NULL) until the agent posts its result (commandResult), so a check-in
   * whose response is lost (a kill, a timeout, a 502) loses nothing; the next check-in carries it again.
   */
  pendingCommands: `SELECT id, kind, args, created_ms FROM commands
     WHERE agent_id = ? AND delivered_ms IS NULL ORDER BY created_ms, id LIMIT ${MAX_COMMANDS_PER_CHECKIN}`,
  heartbeat: `UPDATE agents SET last_seen_ms = ?, offline_alerted = 0 WHERE id = ?`,
  upsertInventory: `INSERT INTO inventory (agent_id, at_ms, doc) VALUES (?, ?, ?)
     ON CONFLICT (agent_id) DO UPDATE SET at_ms = excluded.at_ms, doc = excluded.doc`,
  /** A result acknowledges its command: delivered from now on (the first result's time is kept). */
  commandResult: `UPDATE commands SET result_exit = ?, result_output = ?, result_ms = ?, delivered_ms = COALESCE(delivered_ms, ?) WHERE id = ? AND agent_id = ?`,
  /** Inserts nothing for an unknown agent, so "unknown" and "queued" need one statement. */
  createCommand: `INSERT INTO commands (id, agent_id, kind, args, created_by, created_ms)
     SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT)
     WHERE EXISTS (SELECT 1 FROM agents WHERE id = ?)`,
  syncAgents: `SELECT ${AGENT_COLUMNS} FROM agents WHERE id > ? ORDER BY id LIMIT ?`,
  countCheckins: `SELECT COUNT(*) AS n FROM checkins`,
  insertTelemetry: `INSERT INTO telemetry (agent_id, relay, at_ms, cpu_pct, mem_pct) VALUES (?, ?, ?, ?, ?)`,
  upsertPresence: `INSERT INTO presence (agent_id, relay, at_ms) VALUES (?, ?, ?)
     ON CONFLICT (agent_id) DO UPDATE SET relay = excluded.relay, at_ms = excluded.at_ms`,
  deletePresence: `DELETE FROM presence WHERE agent_id = ?`,
  getPresence: `SELECT relay FROM presence WHERE agent_id = ?`,
  /** Takes the lease when it is free, expired, or already ours (a renewal); 1 row changed = held. */
  /**
   * Takes the lease when it is free, expired, or already ours (a renewal); a row back = held, with
   * its term (the fencing token): a renewal keeps the term, a new holder gets the next one. Release
   * only expires the row, so a term is never handed out twice.
   */
  acquireLease: `INSERT INTO leases (name, holder, until_ms, token) VALUES (?, ?, ?, 1)
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms,
       token = CASE WHEN leases.holder = excluded.holder THEN leases.token ELSE leases.token + 1 END
     WHERE leases.holder = excluded.holder OR leases.until_ms < ?
     RETURNING token`,
  releaseLease: `UPDATE leases SET until_ms = 0 WHERE name = ? AND holder = ?`,
  /** The lease's current term, read inside a fenced write's transaction. */
  leaseToken: `SELECT token FROM leases WHERE name = ?`,
  /** Who holds it (a released lease, until_ms 0, has no holder). */
  leaseHolder: `SELECT holder, until_ms FROM leases WHERE name = ? AND until_ms > 0`,
  /** Dynamic groups, one per client × OS, as RMM search groups are. */
  regroupAgents: `UPDATE agents SET group_name = client || '/' || os WHERE group_name IS NULL OR group_name <> client || '/' || os`,
  clearGroups: `DELETE FROM agent_groups`,
  fillGroups: `INSERT INTO agent_groups (name, agents, rebuilt_ms)
     SELECT group_name, COUNT(*), CAST(? AS BIGINT) FROM agents WHERE group_name IS NOT NULL GROUP BY group_name`,
  /** A new patch per client appears each minute; approval then marks every pending one. */
  offerPatches: `INSERT INTO patches (id, client) SELECT 'kb-' || CAST(? AS TEXT) || '-' || client, client FROM agents WHERE 1 = 1 GROUP BY client
     ON CONFLICT (id) DO NOTHING`,
  approvePatches: `UPDATE patches SET approved_ms = ? WHERE approved_ms IS NULL`,
  raiseOfflineAlerts: `INSERT INTO alerts (agent_id, kind, at_ms) SELECT id, 'offline', CAST(? AS BIGINT) FROM agents WHERE last_seen_ms < ? AND offline_alerted = 0`,
  markOffline: `UPDATE agents SET offline_alerted = 1 WHERE last_seen_ms < ? AND offline_alerted = 0`,
  recentAlerts: `SELECT COUNT(*) AS n FROM alerts WHERE at_ms > ?`,
  queueEmail: `INSERT INTO emails (kind, body, queued_ms) VALUES ('alert-digest', ?, ?)`,
  /**
   * One record per operator session: written when it opens, completed (same id) when it ends. An
   * ended record is never moved back to 'open' (a late or replayed open, audit-spool.ts).
   */
  auditSession: `INSERT INTO session_audit (id, user_name, agent_id, protocol, relay, started_ms, ended_ms, outcome, status)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET ended_ms = excluded.ended_ms, outcome = excluded.outcome, status = excluded.status
     WHERE session_audit.outcome = 'open'`,
  agentGroups: `SELECT client, group_name FROM agents WHERE id = ?`,
} as const;

export type SqlName = keyof typeof SQL;

/** The dashboard list: filters become a WHERE clause over fixed column names (never user text). */
export function listAgentsSql(f: { status?: 'online' | 'offline'; client?: string; os?: string }, cutoffMs: number, limit: number): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.status === 'online') {
    where.push('last_seen_ms >= ?');
    params.push(cutoffMs);
  } else if (f.status === 'offline') {
    where.push('last_seen_ms < ?');
    params.push(cutoffMs);
  }
  if (f.client) {
    where.push('client = ?');
    params.push(f.client);
  }
  if (f.os) {
    where.push('os = ?');
    params.push(f.os);
  }
  params.push(limit);
  return { sql: `SELECT ${AGENT_COLUMNS} FROM agents ${where.length ? `WHERE ${where.join(' AND ')} ` : ''}ORDER BY id LIMIT ?`, params };
}

/** Aggregates by a fixed column; `field` is checked against the two allowed names. */
export function statsBySql(field: 'os' | 'client'): string {
  const col = field === 'os' ? 'os' : 'client';
  return `SELECT ${col} AS key, COUNT(*) AS agents, SUM(CASE WHEN last_seen_ms >= ? THEN 1 ELSE 0 END) AS online FROM agents GROUP BY ${col} ORDER BY ${col}`;
}

/** The states of up to `n` commands by id (the ids are parameters). */
export function commandStatesSql(n: number): string {
  return `SELECT id, delivered_ms, result_ms FROM commands WHERE id IN (${Array.from({ length: n }, () => '?').join(', ')})`;
}

export interface CommandStateRow {
  id: string;
  delivered_ms: number | string | null;
  result_ms: number | string | null;
}

/** `?` → `$1, $2, …` for PostgreSQL (our statements have no `?` inside string literals). */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}
