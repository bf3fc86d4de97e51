import type { PendingCommand } from '../../core/protocol.js';
import type { AgentRow, CommandState, LedgerRow } from '../types.js';

/**
 * The reference stack's schema: what an RMM keeps per agent, check-in, command and loop. Written
 * in the common subset of SQLite and PostgreSQL (BIGINT ms timestamps, TEXT ids, INTEGER flags),
 * so both stores create exactly the same tables.
 */
export const SCHEMA_STATEMENTS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS agents (
     id TEXT PRIMARY KEY, hostname TEXT NOT NULL, os TEXT NOT NULL, agent_version TEXT NOT NULL,
     client TEXT NOT NULL, first_seen_ms BIGINT NOT NULL, last_seen_ms BIGINT NOT NULL,
     checkins BIGINT NOT NULL DEFAULT 0, group_name TEXT, offline_alerted INTEGER NOT NULL DEFAULT 0)`,
  `CREATE INDEX IF NOT EXISTS agents_last_seen ON agents (last_seen_ms)`,
  `CREATE INDEX IF NOT EXISTS agents_client ON agents (client)`,
  `CREATE INDEX IF NOT EXISTS agents_os ON agents (os)`,
  `CREATE TABLE IF NOT EXISTS checkins (
     agent_id TEXT NOT NULL, at_ms BIGINT NOT NULL, seq BIGINT NOT NULL,
     cpu_pct INTEGER, mem_pct INTEGER, disk_free_pct INTEGER)`,
  `CREATE INDEX IF NOT EXISTS checkins_agent ON checkins (agent_id, at_ms)`,
  /**
   * The idempotency key of a check-in: its agent and sequence number. A retry, or a write whose
   * first attempt timed out and committed late, is not stored twice (ON CONFLICT DO NOTHING).
   */
  `CREATE UNIQUE INDEX IF NOT EXISTS checkins_key ON checkins (agent_id, seq)`,
  /**
   * Receipts of the agent writes that keep no row of their own per write (an inventory replaces the
   * last one; a command result updates its command): one per idempotency key, written in the same
   * transaction as the write, so a retried write is applied once and the run's ledger can find it.
   */
  `CREATE TABLE IF NOT EXISTS agent_writes (agent_id TEXT NOT NULL, seq BIGINT NOT NULL, kind TEXT NOT NULL, at_ms BIGINT NOT NULL, PRIMARY KEY (agent_id, seq))`,
  `CREATE TABLE IF NOT EXISTS inventory (agent_id TEXT PRIMARY KEY, at_ms BIGINT NOT NULL, doc TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS commands (
     id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, kind TEXT NOT NULL, args TEXT NOT NULL,
     created_by TEXT NOT NULL, created_ms BIGINT NOT NULL, delivered_ms BIGINT,
     result_exit INTEGER, result_output TEXT, result_ms BIGINT)`,
  `CREATE INDEX IF NOT EXISTS commands_pending ON commands (agent_id, delivered_ms)`,
  `CREATE TABLE IF NOT EXISTS telemetry (agent_id TEXT NOT NULL, relay TEXT NOT NULL, at_ms BIGINT NOT NULL, cpu_pct INTEGER, mem_pct INTEGER)`,
  `CREATE TABLE IF NOT EXISTS presence (agent_id TEXT PRIMARY KEY, relay TEXT NOT NULL, at_ms BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, until_ms BIGINT NOT NULL, token BIGINT NOT NULL DEFAULT 1)`,
  `CREATE TABLE IF NOT EXISTS alerts (agent_id TEXT NOT NULL, kind TEXT NOT NULL, at_ms BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS emails (kind TEXT NOT NULL, body TEXT NOT NULL, queued_ms BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS patches (id TEXT PRIMARY KEY, client TEXT NOT NULL, approved_ms BIGINT)`,
  `CREATE TABLE IF NOT EXISTS agent_groups (name TEXT PRIMARY KEY, agents BIGINT NOT NULL, rebuilt_ms BIGINT NOT NULL)`,
  /** The operator session audit stream: every session, allowed or refused (outcome), one row each. */
  `CREATE TABLE IF NOT EXISTS session_audit (
     id TEXT PRIMARY KEY, user_name TEXT NOT NULL, agent_id TEXT NOT NULL, protocol TEXT NOT NULL, relay TEXT NOT NULL,
     started_ms BIGINT NOT NULL, ended_ms BIGINT, outcome TEXT NOT NULL, status INTEGER)`,
  `CREATE INDEX IF NOT EXISTS session_audit_user ON session_audit (user_name, started_ms)`,
];

/** An agent is offline when it has not checked in for this long (3 missed 5-minute check-ins). */
export const OFFLINE_AFTER_MS = 15 * 60_000;

/** Pending commands handed out per check-in. */
export const MAX_COMMANDS_PER_CHECKIN = 20;

/** Command output kept per result. */
export const MAX_RESULT_OUTPUT_CHARS = 65_536;

/** An agents row as both drivers return it (PostgreSQL returns BIGINT as a string). */
export interface AgentDbRow {
  id: string;
  hostname: string;
  os: string;
  agent_version: string;
  client: string;
  last_seen_ms: number | string;
  group_name: string | null;
}

export const AGENT_COLUMNS = 'id, hostname, os, agent_version, client, last_seen_ms, group_name';

export function toAgentRow(r: AgentDbRow, nowMs: number): AgentRow {
  const lastSeenMs = Number(r.last_seen_ms);
  return {
    id: r.id,
    hostname: r.hostname,
    os: r.os,
    agentVersion: r.agent_version,
    client: r.client,
    lastSeenMs,
    online: nowMs - lastSeenMs < OFFLINE_AFTER_MS,
    groupName: r.group_name,
  };
}

/** Ledger rows: keyset pages in (agent_id, seq) order. */
export const LEDGER_PAGE_MAX = 50_000;

export function toLedgerRows(rows: Array<{ agent_id: string; seq: number | string | bigint; copies: number | string | bigint }>): LedgerRow[] {
  return rows.map((r) => ({ agentId: r.agent_id, seq: Number(r.seq), copies: Number(r.copies) }));
}

/** Command ids per commandStates query. */
export const COMMAND_STATES_CHUNK = 500;

export function toCommandStates(rows: Array<{ id: string; delivered_ms: number | string | null; result_ms: number | string | null }>): CommandState[] {
  return rows.map((r) => ({ id: r.id, delivered: r.delivered_ms !== null, hasResult: r.result_ms !== null }));
}

/** Commands handed out by a check-in, oldest first (RETURNING gives no order). */
export function toPending(rows: Array<{ id: string; kind: string; args: string; created_ms: number | string }>): PendingCommand[] {
  return rows
    .sort((a, b) => Number(a.created_ms) - Number(b.created_ms) || (a.id < b.id ? -1 : 1))
    .map((c) => ({ id: c.id, kind: c.kind, args: JSON.parse(c.args) as Record<string, unknown> }));
}
