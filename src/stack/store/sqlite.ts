import Database, { type Database as Db, type Statement } from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import type { CheckinRequest, CommandResult, PendingCommand } from '../../core/protocol.js';
import type { AgentFilter, AgentRow, CommandState, LeaseFence, LedgerRow, SessionAuditRecord, Store, TelemetrySample } from '../types.js';
import { LeaseFencedError } from './errors.js';
import { DEFAULT_GROUP_COMMIT, GroupCommit, type GroupCommitOptions, type WriteJob } from './group-commit.js';
import { COMMAND_STATES_CHUNK, LEDGER_PAGE_MAX, MAX_RESULT_OUTPUT_CHARS, OFFLINE_AFTER_MS, SCHEMA_STATEMENTS, toAgentRow, toCommandStates, toLedgerRows, toPending, type AgentDbRow } from './schema.js';
import { SQL, commandStatesSql, listAgentsSql, statsBySql, type CommandStateRow, type SqlName } from './schema-sql.js';

/**
 * Embedded SQLite (better-sqlite3): WAL, a busy timeout for the other processes sharing the file,
 * and synchronous=FULL, so that a write whose promise resolved survives a power cut. Writes go
 * through group commit (group-commit.ts): one BEGIN IMMEDIATE … COMMIT per batch, each write in its
 * own savepoint so that a failing write rolls back alone. Reads run directly: they see only
 * committed rows because a batch runs synchronously, start to end, inside one event-loop turn.
 */

export interface SqliteStoreOptions {
  groupCommit?: GroupCommitOptions;
  busyTimeoutMs?: number;
}

interface CommandRow {
  id: string;
  kind: string;
  args: string;
  created_ms: number;
}


export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly db: Db;
  private readonly writer: GroupCommit<Db>;
  private readonly stmts = new Map<string, Statement>();
  private closed = false;

  constructor(
    readonly path: string,
    opts: SqliteStoreOptions = {},
  ) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma(`busy_timeout = ${Math.floor(opts.busyTimeoutMs ?? 5000)}`);
    this.writer = new GroupCommit<Db>((jobs) => this.commitBatch(jobs), opts.groupCommit ?? DEFAULT_GROUP_COMMIT);
  }

  /** Commits so far and the writes they carried (writes / commits = mean batch size). */
  get commitStats(): { commits: number; writes: number } {
    return { commits: this.writer.commits, writes: this.writer.writes };
  }

  private st(name: SqlName | string, sql?: string): Statement {
    let s = this.stmts.get(name);
    if (!s) {
      s = this.db.prepare(sql ?? SQL[name as SqlName]);
      this.stmts.set(name, s);
    }
    return s;
  }

  async init(): Promise<void> {
    this.db
      .transaction(() => {
        for (const s of SCHEMA_STATEMENTS) this.db.exec(s);
      })
      .immediate();
  }

  private commitBatch(jobs: Array<WriteJob<Db>>): void {
    const results: Array<{ ok: boolean; value: unknown }> = [];
    // IMMEDIATE takes the write lock up front, so another process's writer makes us wait
    // (busy_timeout) instead of failing a read-then-write upgrade with SQLITE_BUSY.
    this.db
      .transaction(() => {
        for (const job of jobs) {
          try {
            results.push({ ok: true, value: this.db.transaction(job.run)(this.db) });
          } catch (err) {
            results.push({ ok: false, value: err });
          }
        }
      })
      .immediate();
    jobs.forEach((job, i) => (results[i].ok ? job.resolve(results[i].value) : job.reject(results[i].value)));
  }

  private write<T>(run: (db: Db) => T): Promise<Awaited<T>> {
    return this.writer.submit(run);
  }

  checkin(req: CheckinRequest, atMs: number): Promise<PendingCommand[]> {
    return this.write(() => {
      const s = req.status;
      // A key already stored (a retry, a late commit) writes nothing more; the commands still go out.
      if (this.st('insertCheckin').run(req.agentId, atMs, req.seq, s.cpuPct, s.memPct, s.diskFreePct).changes === 1) {
        this.st('upsertAgent').run(req.agentId, req.hostname, req.os, req.agentVersion, req.client, atMs, atMs);
      }
      return toPending(this.st('pendingCommands').all(req.agentId) as CommandRow[]);
    });
  }

  heartbeat(agentId: string, atMs: number): Promise<void> {
    return this.write(() => void this.st('heartbeat').run(atMs, agentId));
  }

  /** The write's receipt; false: this key is already stored, so the write is not applied again. */
  private firstTime(agentId: string, seq: number | null | undefined, kind: string, atMs: number): boolean {
    return seq === null || seq === undefined || this.st('insertWrite').run(agentId, seq, kind, atMs).changes === 1;
  }

  inventory(agentId: string, doc: unknown, atMs: number, seq?: number | null): Promise<void> {
    return this.write(() => {
      if (this.firstTime(agentId, seq, 'inventory', atMs)) this.st('upsertInventory').run(agentId, atMs, JSON.stringify(doc));
    });
  }

  commandResults(agentId: string, results: CommandResult[], atMs: number, seq?: number | null): Promise<void> {
    return this.write(() => {
      if (!this.firstTime(agentId, seq, 'command-result', atMs)) return;
      for (const r of results) this.st('commandResult').run(r.exitCode, String(r.output).slice(0, MAX_RESULT_OUTPUT_CHARS), atMs, atMs, r.commandId, agentId);
    });
  }

  createCommand(agentId: string, kind: string, args: Record<string, unknown>, createdBy: string): Promise<string | null> {
    const id = randomUUID();
    return this.write(() => (this.st('createCommand').run(id, agentId, kind, JSON.stringify(args), createdBy, Date.now(), agentId).changes === 1 ? id : null));
  }

  async listAgents(f: AgentFilter, nowMs: number): Promise<AgentRow[]> {
    const { sql, params } = listAgentsSql(f, nowMs - OFFLINE_AFTER_MS, f.limit);
    return (this.st(sql, sql).all(...params) as AgentDbRow[]).map((r) => toAgentRow(r, nowMs));
  }

  async statsBy(field: 'os' | 'client'): Promise<Array<{ key: string; agents: number; online: number }>> {
    const sql = statsBySql(field);
    const rows = this.st(sql, sql).all(Date.now() - OFFLINE_AFTER_MS) as Array<{ key: string; agents: number; online: number }>;
    return rows.map((r) => ({ key: r.key, agents: Number(r.agents), online: Number(r.online) }));
  }

  async syncAgents(afterId: string | null, limit: number): Promise<{ agents: AgentRow[]; next: string | null }> {
    const rows = this.st('syncAgents').all(afterId ?? '', limit) as AgentDbRow[];
    const now = Date.now();
    return { agents: rows.map((r) => toAgentRow(r, now)), next: rows.length === limit && limit > 0 ? rows[rows.length - 1].id : null };
  }

  async countCheckins(): Promise<number> {
    return Number((this.st('countCheckins').get() as { n: number }).n);
  }

  async ledgerKeys(fromSeq: number, after: { agentId: string; seq: number } | null, limit: number): Promise<LedgerRow[]> {
    const a = after ?? { agentId: '', seq: -1 };
    const rows = this.st('ledgerKeys').all(fromSeq, fromSeq, a.agentId, a.agentId, a.seq, Math.min(limit, LEDGER_PAGE_MAX)) as Parameters<typeof toLedgerRows>[0];
    return toLedgerRows(rows);
  }

  async commandStates(ids: string[]): Promise<CommandState[]> {
    const out: CommandState[] = [];
    for (let i = 0; i < ids.length; i += COMMAND_STATES_CHUNK) {
      const chunk = ids.slice(i, i + COMMAND_STATES_CHUNK);
      const sql = commandStatesSql(chunk.length);
      out.push(...toCommandStates(this.st(sql, sql).all(...chunk) as CommandStateRow[]));
    }
    return out;
  }

  telemetry(samples: TelemetrySample[]): Promise<void> {
    if (samples.length === 0) return Promise.resolve();
    return this.write(() => {
      const st = this.st('insertTelemetry');
      for (const s of samples) st.run(s.agentId, s.relay, s.atMs, s.cpuPct, s.memPct);
    });
  }

  setPresence(agentId: string, relay: string | null, atMs: number): Promise<void> {
    return this.write(() => {
      if (relay === null) this.st('deletePresence').run(agentId);
      else this.st('upsertPresence').run(agentId, relay, atMs);
    });
  }

  async getPresence(agentId: string): Promise<string | null> {
    return (this.st('getPresence').get(agentId) as { relay: string } | undefined)?.relay ?? null;
  }

  acquireLease(name: string, holder: string, ttlMs: number, atMs: number): Promise<number | null> {
    return this.write(() => {
      const r = this.st('acquireLease').get(name, holder, atMs + ttlMs, atMs) as { token: number | bigint } | undefined;
      return r ? Number(r.token) : null;
    });
  }

  /** Inside a write: refuse it unless `fence` is still the lease's term. */
  private fenced(fence: LeaseFence): void {
    const r = this.st('leaseToken').get(fence.name) as { token: number | bigint } | undefined;
    const current = r ? Number(r.token) : null;
    if (current !== fence.token) throw new LeaseFencedError(fence.name, fence.token, current);
  }

  releaseLease(name: string, holder: string): Promise<void> {
    return this.write(() => void this.st('releaseLease').run(name, holder));
  }

  async leaseHolder(name: string): Promise<{ holder: string; untilMs: number } | null> {
    const r = this.st('leaseHolder').get(name) as { holder: string; until_ms: number } | undefined;
    return r ? { holder: r.holder, untilMs: Number(r.until_ms) } : null;
  }

  rebuildGroups(atMs: number, fence: LeaseFence): Promise<number> {
    return this.write(() => {
      this.fenced(fence);
      this.st('regroupAgents').run();
      this.st('clearGroups').run();
      return this.st('fillGroups').run(atMs).changes;
    });
  }

  approvePatches(atMs: number, fence: LeaseFence): Promise<number> {
    return this.write(() => {
      this.fenced(fence);
      this.st('offerPatches').run(String(Math.floor(atMs / 60_000)));
      return this.st('approvePatches').run(atMs).changes;
    });
  }

  detectOffline(offlineAfterMs: number, atMs: number, fence: LeaseFence): Promise<number> {
    const cutoff = atMs - offlineAfterMs;
    return this.write(() => {
      this.fenced(fence);
      this.st('raiseOfflineAlerts').run(atMs, cutoff);
      return this.st('markOffline').run(cutoff).changes;
    });
  }

  queueEmail(atMs: number, fence: LeaseFence): Promise<number> {
    return this.write(() => {
      this.fenced(fence);
      const n = Number((this.st('recentAlerts').get(atMs - 60_000) as { n: number }).n);
      if (n === 0) return 0;
      this.st('queueEmail').run(`${n} new alerts`, atMs);
      return 1;
    });
  }

  auditSession(r: SessionAuditRecord): Promise<void> {
    return this.write(() => void this.st('auditSession').run(r.id, r.user, r.agentId, r.protocol, r.relay, r.startedMs, r.endedMs, r.outcome, r.status));
  }

  async agentGroups(agentId: string): Promise<string[]> {
    const r = this.st('agentGroups').get(agentId) as { client: string; group_name: string | null } | undefined;
    return r ? [r.client, ...(r.group_name ? [r.group_name] : [])] : [];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writer.close();
    this.db.close();
  }
}
