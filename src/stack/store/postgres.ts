import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { StackError } from '../../core/errors.js';
import type { CheckinRequest, CommandResult, PendingCommand } from '../../core/protocol.js';
import type { AgentFilter, AgentRow, CommandState, LeaseFence, LedgerRow, SessionAuditRecord, Store, TelemetrySample } from '../types.js';
import { LeaseFencedError } from './errors.js';
import { DEFAULT_GROUP_COMMIT, GroupCommit, lockOrder, type GroupCommitOptions, type WriteJob } from './group-commit.js';
import { COMMAND_STATES_CHUNK, LEDGER_PAGE_MAX, MAX_COMMANDS_PER_CHECKIN, MAX_RESULT_OUTPUT_CHARS, OFFLINE_AFTER_MS, SCHEMA_STATEMENTS, toAgentRow, toCommandStates, toLedgerRows, toPending, type AgentDbRow } from './schema.js';
import { SQL, commandStatesSql, listAgentsSql, numberPlaceholders, statsBySql, type CommandStateRow, type SqlName } from './schema-sql.js';

/**
 * PostgreSQL through `pg` (a Pool), with the same schema and semantics as the SQLite store. Writes
 * use the same group commit: a connection runs BEGIN, every write of the batch, COMMIT, and each
 * writer resolves after that COMMIT (the server runs with fsync on); up to 4 batches commit at
 * once on separate connections. If any write of a batch fails
 * (or a deadlock with another process aborts it) the batch rolls back and each of its writes is
 * retried in a transaction of its own, so one bad write never fails its batch-mates. Reads use the
 * pool's other connections. Statements are named, so each connection parses them once.
 */

export interface PostgresStoreOptions {
  /** Pool size (connections), writer included. */
  connections?: number;
  groupCommit?: GroupCommitOptions;
}

type Client = pg.PoolClient;

/** Advisory lock key that serialises schema creation across nodes starting together. */
const SCHEMA_LOCK = 7_263_001;
const TELEMETRY_ROWS_PER_STATEMENT = 500;
const RETRYABLE = new Set(['40P01', '40001']); // deadlock, serialization failure

/**
 * One round trip per check-in: insert, upsert and hand-out (pending until acknowledged, schema-sql.ts)
 * run as one statement. The check-in row goes first, keyed by (agent, seq): when the key is already
 * stored (a retry, a late commit) it inserts nothing and the agent row is left alone; the pending
 * commands go out either way.
 */
const CHECKIN_SQL = `WITH c AS (
    INSERT INTO checkins (agent_id, at_ms, seq, cpu_pct, mem_pct, disk_free_pct) VALUES ($1, $6, $7, $8, $9, $10)
    ON CONFLICT (agent_id, seq) DO NOTHING RETURNING 1),
  a AS (
    INSERT INTO agents (id, hostname, os, agent_version, client, first_seen_ms, last_seen_ms, checkins)
    SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS TEXT), CAST($5 AS TEXT), CAST($6 AS BIGINT), CAST($6 AS BIGINT), 1 FROM c
    ON CONFLICT (id) DO UPDATE SET hostname = excluded.hostname, os = excluded.os, agent_version = excluded.agent_version,
      client = excluded.client, last_seen_ms = excluded.last_seen_ms, checkins = agents.checkins + 1, offline_alerted = 0
    RETURNING 1)
  SELECT id, kind, args, created_ms FROM commands
  WHERE agent_id = $1 AND delivered_ms IS NULL ORDER BY created_ms, id LIMIT ${MAX_COMMANDS_PER_CHECKIN}`;

/** Up to 4 batches commit at once: a PostgreSQL batch costs round trips more than the flush. */
export const PG_GROUP_COMMIT: GroupCommitOptions = { ...DEFAULT_GROUP_COMMIT, maxInFlight: 4 };

const PG_SQL = Object.fromEntries(Object.entries(SQL).map(([k, v]) => [k, numberPlaceholders(v)])) as Record<SqlName, string>;

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly writer: GroupCommit<Client>;
  private closed = false;
  /** Batches that failed as a whole (a bad write, a deadlock) and were retried write by write. */
  slowPathBatches = 0;

  constructor(
    private readonly url: string,
    opts: PostgresStoreOptions = {},
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: Math.max(2, opts.connections ?? 16), idleTimeoutMillis: 30_000 });
    // An idle client's error (e.g. the server restarting) must not crash the node.
    this.pool.on('error', () => undefined);
    this.writer = new GroupCommit<Client>((jobs) => this.commitBatch(jobs), opts.groupCommit ?? PG_GROUP_COMMIT);
  }

  get commitStats(): { commits: number; writes: number } {
    return { commits: this.writer.commits, writes: this.writer.writes };
  }

  async init(): Promise<void> {
    let client: Client;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw new StackError(`postgres ${redactUrl(this.url)}: cannot connect (${(err as Error).message})`);
    }
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
      for (const s of SCHEMA_STATEMENTS) await client.query(s);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  private async commitBatch(jobs: Array<WriteJob<Client>>): Promise<void> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      const values: unknown[] = new Array(jobs.length);
      try {
        await client.query('BEGIN');
        for (const i of lockOrder(jobs)) values[i] = await jobs[i].run(client);
        await client.query('COMMIT');
        jobs.forEach((job, i) => job.resolve(values[i]));
        return;
      } catch {
        this.slowPathBatches++;
        await client.query('ROLLBACK').catch(() => (broken = true));
      }
      // Slow path: one transaction per write, retrying deadlocks with other processes.
      for (const job of lockOrder(jobs).map((i) => jobs[i])) {
        for (let attempt = 1; ; attempt++) {
          try {
            await client.query('BEGIN');
            const v = await job.run(client);
            await client.query('COMMIT');
            job.resolve(v);
            break;
          } catch (err) {
            await client.query('ROLLBACK').catch(() => (broken = true));
            if (broken || attempt >= 3 || !RETRYABLE.has((err as { code?: string }).code ?? '')) {
              job.reject(err);
              break;
            }
          }
        }
      }
    } finally {
      client.release(broken);
    }
  }

  /** `key`: the agent the write locks, so concurrent batches lock agents in one order. */
  private write<T>(run: (c: Client) => Promise<T>, key = ''): Promise<T> {
    return this.writer.submit(run, key) as Promise<T>;
  }

  private q(c: Client | pg.Pool, name: SqlName, values: unknown[]): Promise<pg.QueryResult> {
    return c.query({ name, text: PG_SQL[name], values });
  }

  checkin(req: CheckinRequest, atMs: number): Promise<PendingCommand[]> {
    const s = req.status;
    const values = [req.agentId, req.hostname, req.os, req.agentVersion, req.client, atMs, req.seq, s.cpuPct, s.memPct, s.diskFreePct];
    return this.write(async (c) => toPending((await c.query({ name: 'checkin', text: CHECKIN_SQL, values })).rows), req.agentId);
  }

  heartbeat(agentId: string, atMs: number): Promise<void> {
    return this.write(async (c) => void (await this.q(c, 'heartbeat', [atMs, agentId])), agentId);
  }

  /** The write's receipt; false: this key is already stored, so the write is not applied again. */
  private async firstTime(c: Client, agentId: string, seq: number | null | undefined, kind: string, atMs: number): Promise<boolean> {
    return seq === null || seq === undefined || (await this.q(c, 'insertWrite', [agentId, seq, kind, atMs])).rowCount === 1;
  }

  inventory(agentId: string, doc: unknown, atMs: number, seq?: number | null): Promise<void> {
    return this.write(async (c) => {
      if (await this.firstTime(c, agentId, seq, 'inventory', atMs)) await this.q(c, 'upsertInventory', [agentId, atMs, JSON.stringify(doc)]);
    }, agentId);
  }

  commandResults(agentId: string, results: CommandResult[], atMs: number, seq?: number | null): Promise<void> {
    return this.write(async (c) => {
      if (!(await this.firstTime(c, agentId, seq, 'command-result', atMs))) return;
      for (const r of results) await this.q(c, 'commandResult', [r.exitCode, String(r.output).slice(0, MAX_RESULT_OUTPUT_CHARS), atMs, atMs, r.commandId, agentId]);
    }, agentId);
  }

  createCommand(agentId: string, kind: string, args: Record<string, unknown>, createdBy: string): Promise<string | null> {
    const id = randomUUID();
    return this.write(async (c) => ((await this.q(c, 'createCommand', [id, agentId, kind, JSON.stringify(args), createdBy, Date.now(), agentId])).rowCount === 1 ? id : null), agentId);
  }

  async listAgents(f: AgentFilter, nowMs: number): Promise<AgentRow[]> {
    const { sql, params } = listAgentsSql(f, nowMs - OFFLINE_AFTER_MS, f.limit);
    const r = await this.pool.query<AgentDbRow>(numberPlaceholders(sql), params);
    return r.rows.map((row) => toAgentRow(row, nowMs));
  }

  async statsBy(field: 'os' | 'client'): Promise<Array<{ key: string; agents: number; online: number }>> {
    const r = await this.pool.query<{ key: string; agents: string; online: string }>(numberPlaceholders(statsBySql(field)), [Date.now() - OFFLINE_AFTER_MS]);
    return r.rows.map((x) => ({ key: x.key, agents: Number(x.agents), online: Number(x.online) }));
  }

  async syncAgents(afterId: string | null, limit: number): Promise<{ agents: AgentRow[]; next: string | null }> {
    const rows = (await this.q(this.pool, 'syncAgents', [afterId ?? '', limit])).rows as AgentDbRow[];
    const now = Date.now();
    return { agents: rows.map((r) => toAgentRow(r, now)), next: rows.length === limit && limit > 0 ? rows[rows.length - 1].id : null };
  }

  async countCheckins(): Promise<number> {
    return Number((await this.q(this.pool, 'countCheckins', [])).rows[0].n);
  }

  async ledgerKeys(fromSeq: number, after: { agentId: string; seq: number } | null, limit: number): Promise<LedgerRow[]> {
    const a = after ?? { agentId: '', seq: -1 };
    const r = await this.q(this.pool, 'ledgerKeys', [fromSeq, fromSeq, a.agentId, a.agentId, a.seq, Math.min(limit, LEDGER_PAGE_MAX)]);
    return toLedgerRows(r.rows as Parameters<typeof toLedgerRows>[0]);
  }

  async commandStates(ids: string[]): Promise<CommandState[]> {
    const out: CommandState[] = [];
    for (let i = 0; i < ids.length; i += COMMAND_STATES_CHUNK) {
      const chunk = ids.slice(i, i + COMMAND_STATES_CHUNK);
      const r = await this.pool.query<CommandStateRow>(numberPlaceholders(commandStatesSql(chunk.length)), chunk);
      out.push(...toCommandStates(r.rows));
    }
    return out;
  }

  telemetry(samples: TelemetrySample[]): Promise<void> {
    if (samples.length === 0) return Promise.resolve();
    return this.write(async (c) => {
      for (let i = 0; i < samples.length; i += TELEMETRY_ROWS_PER_STATEMENT) {
        const chunk = samples.slice(i, i + TELEMETRY_ROWS_PER_STATEMENT);
        const values: unknown[] = [];
        const rows = chunk.map((s, j) => {
          values.push(s.agentId, s.relay, s.atMs, s.cpuPct, s.memPct);
          const b = j * 5;
          return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5})`;
        });
        await c.query(`INSERT INTO telemetry (agent_id, relay, at_ms, cpu_pct, mem_pct) VALUES ${rows.join(', ')}`, values);
      }
    });
  }

  setPresence(agentId: string, relay: string | null, atMs: number): Promise<void> {
    return this.write(async (c) => {
      if (relay === null) await this.q(c, 'deletePresence', [agentId]);
      else await this.q(c, 'upsertPresence', [agentId, relay, atMs]);
    }, agentId);
  }

  async getPresence(agentId: string): Promise<string | null> {
    return ((await this.q(this.pool, 'getPresence', [agentId])).rows[0] as { relay: string } | undefined)?.relay ?? null;
  }

  acquireLease(name: string, holder: string, ttlMs: number, atMs: number): Promise<number | null> {
    return this.write(async (c) => {
      const r = (await this.q(c, 'acquireLease', [name, holder, atMs + ttlMs, atMs])).rows[0] as { token: string | number } | undefined;
      return r ? Number(r.token) : null;
    });
  }

  /** Inside a write: lock the lease row and refuse the write unless `fence` is still its term. */
  private async fenced(c: Client, fence: LeaseFence): Promise<void> {
    const r = (await c.query(`${PG_SQL.leaseToken} FOR UPDATE`, [fence.name])).rows[0] as { token: string | number } | undefined;
    const current = r ? Number(r.token) : null;
    if (current !== fence.token) throw new LeaseFencedError(fence.name, fence.token, current);
  }

  releaseLease(name: string, holder: string): Promise<void> {
    return this.write(async (c) => void (await this.q(c, 'releaseLease', [name, holder])));
  }

  async leaseHolder(name: string): Promise<{ holder: string; untilMs: number } | null> {
    const r = (await this.q(this.pool, 'leaseHolder', [name])).rows[0] as { holder: string; until_ms: string } | undefined;
    return r ? { holder: r.holder, untilMs: Number(r.until_ms) } : null;
  }

  rebuildGroups(atMs: number, fence: LeaseFence): Promise<number> {
    return this.write(async (c) => {
      await this.fenced(c, fence);
      await this.q(c, 'regroupAgents', []);
      await this.q(c, 'clearGroups', []);
      return (await this.q(c, 'fillGroups', [atMs])).rowCount ?? 0;
    });
  }

  approvePatches(atMs: number, fence: LeaseFence): Promise<number> {
    return this.write(async (c) => {
      await this.fenced(c, fence);
      await this.q(c, 'offerPatches', [String(Math.floor(atMs / 60_000))]);
      return (await this.q(c, 'approvePatches', [atMs])).rowCount ?? 0;
    });
  }

  detectOffline(offlineAfterMs: number, atMs: number, fence: LeaseFence): Promise<number> {
    const cutoff = atMs - offlineAfterMs;
    return this.write(async (c) => {
      await this.fenced(c, fence);
      await this.q(c, 'raiseOfflineAlerts', [atMs, cutoff]);
      return (await this.q(c, 'markOffline', [cutoff])).rowCount ?? 0;
    });
  }

  queueEmail(atMs: number, fence: LeaseFence): Promise<number> {
    return this.write(async (c) => {
      await this.fenced(c, fence);
      const n = Number((await this.q(c, 'recentAlerts', [atMs - 60_000])).rows[0].n);
      if (n === 0) return 0;
      await this.q(c, 'queueEmail', [`${n} new alerts`, atMs]);
      return 1;
    });
  }

  auditSession(r: SessionAuditRecord): Promise<void> {
    return this.write(async (c) => void (await this.q(c, 'auditSession', [r.id, r.user, r.agentId, r.protocol, r.relay, r.startedMs, r.endedMs, r.outcome, r.status])), r.agentId);
  }

  async agentGroups(agentId: string): Promise<string[]> {
    const r = (await this.q(this.pool, 'agentGroups', [agentId])).rows[0] as { client: string; group_name: string | null } | undefined;
    return r ? [r.client, ...(r.group_name ? [r.group_name] : [])] : [];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writer.close();
    await this.pool.end();
  }
}
