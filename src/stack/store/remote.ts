import { Pool } from 'undici';
import type { CheckinRequest, CommandResult, PendingCommand } from '../../core/protocol.js';
import type { AgentFilter, AgentRow, CommandState, LeaseFence, LedgerRow, SessionAuditRecord, Store, TelemetrySample } from '../types.js';
import { LeaseFencedError, StoreUnavailableError } from './errors.js';

/**
 * The Store as a small JSON RPC to the `db` node: `POST /db/v1/<method>` with a JSON array of the
 * method's arguments, answered `200 {"result": …}`. The db node owns the real store, so the db
 * tier is its own process with its own /metrics, capacity model and failure. The undici pool's
 * connection count plays the application's database connection pool (bounded).
 *
 * Every call carries the stack's db key (deriveKey(secret, 'db-rpc')) as a bearer token.
 *
 * Failures: a 503 from the db node (its query queue is full) or a connection failure becomes
 * StoreUnavailableError (web nodes answer 503 + retry-after); any other non-200 is an Error
 * carrying the db node's message.
 */

export const DB_RPC_PREFIX = '/db/v1/';

/** Every Store operation the db node serves (init and close stay local to each side). */
export const DB_METHODS = [
  'checkin',
  'heartbeat',
  'inventory',
  'commandResults',
  'createCommand',
  'listAgents',
  'statsBy',
  'syncAgents',
  'countCheckins',
  'ledgerKeys',
  'commandStates',
  'telemetry',
  'setPresence',
  'getPresence',
  'acquireLease',
  'releaseLease',
  'leaseHolder',
  'rebuildGroups',
  'approvePatches',
  'detectOffline',
  'queueEmail',
  'auditSession',
  'agentGroups',
] as const satisfies ReadonlyArray<keyof Store>;

export type DbMethod = (typeof DB_METHODS)[number];

export interface RemoteStoreOptions {
  /** The db key the db node asks for (deriveKey(secret, 'db-rpc')). */
  key: string;
  /** Connections to the db node (the app's DB pool size). */
  connections?: number;
  /**
   * Calls that may wait for one of those connections (default 1024). Past it a call fails at once
   * with StoreUnavailableError (web nodes: 503 + retry-after) instead of joining an unbounded
   * undici queue.
   */
  maxQueued?: number;
  /**
   * Per-call limit for headers and body, ms (default 10 s): a hung db node (SIGSTOP) becomes a 503 +
   * retry-after for the agent well within its own timeout, not a hang. A write whose call timed out
   * may still commit when the db node wakes; its idempotency key keeps the agent's retry from
   * storing it twice.
   */
  timeoutMs?: number;
}

/** A 409 from the db node: the fenced write's lease and term (the call's own last argument), and the lease's term now. */
function fencedFrom(args: readonly unknown[], body: string): [string, number, number | null] {
  const f = args[args.length - 1] as Partial<LeaseFence> | undefined;
  let current: number | null = null;
  try {
    const c = (JSON.parse(body) as { current?: unknown }).current;
    current = typeof c === 'number' ? c : null;
  } catch {
    // not JSON: the term now is unknown
  }
  return [String(f?.name ?? 'unknown'), Number(f?.token ?? -1), current];
}

export const DEFAULT_REMOTE_QUEUE = 1024;
export const DEFAULT_DB_CALL_TIMEOUT_MS = 10_000;

export class RemoteStore implements Store {
  readonly kind = 'remote' as const;
  private readonly pool: Pool;
  private readonly headers: Record<string, string>;
  /** Calls sent or waiting; bounded by connections + maxQueued. */
  private outstanding = 0;
  private readonly maxOutstanding: number;
  /** Calls refused at the bound so far. */
  refused = 0;

  constructor(
    readonly url: string,
    opts: RemoteStoreOptions,
  ) {
    this.headers = { 'content-type': 'application/json', authorization: `Bearer ${opts.key}` };
    const timeoutMs = opts.timeoutMs ?? DEFAULT_DB_CALL_TIMEOUT_MS;
    const connections = opts.connections ?? 32;
    this.maxOutstanding = connections + Math.max(0, opts.maxQueued ?? DEFAULT_REMOTE_QUEUE);
    this.pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  }

  private async call<M extends DbMethod>(method: M, args: Parameters<Store[M]>): Promise<Awaited<ReturnType<Store[M]>>> {
    if (this.outstanding >= this.maxOutstanding) {
      this.refused++;
      throw new StoreUnavailableError(`db node ${this.url}: ${this.outstanding} calls outstanding, the limit`);
    }
    let status: number;
    let text: string;
    this.outstanding++;
    try {
      const res = await this.pool.request({ method: 'POST', path: DB_RPC_PREFIX + method, headers: this.headers, body: JSON.stringify(args) });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      const e = err as { code?: string; message?: string };
      throw new StoreUnavailableError(`db node ${this.url}: ${e.code ?? e.message ?? String(err)}`);
    } finally {
      this.outstanding--;
    }
    if (status === 503) throw new StoreUnavailableError(`db node ${this.url} is overloaded (503)`);
    if (status === 409) throw new LeaseFencedError(...fencedFrom(args, text));
    if (status === 401) throw new Error(`db node ${this.url} refused ${method}: wrong db key (is this node's stack secret the db node's?)`);
    if (status !== 200) throw new Error(`db node ${this.url} answered ${status} to ${method}`);
    return (JSON.parse(text) as { result: Awaited<ReturnType<Store[M]>> }).result;
  }

  async init(): Promise<void> {
    // The db node creates the schema before it reports ready.
  }
  checkin(req: CheckinRequest, atMs: number): Promise<PendingCommand[]> {
    return this.call('checkin', [req, atMs]);
  }
  heartbeat(agentId: string, atMs: number): Promise<void> {
    return this.call('heartbeat', [agentId, atMs]);
  }
  inventory(agentId: string, doc: unknown, atMs: number, seq: number | null = null): Promise<void> {
    return this.call('inventory', [agentId, doc, atMs, seq]);
  }
  commandResults(agentId: string, results: CommandResult[], atMs: number, seq: number | null = null): Promise<void> {
    return this.call('commandResults', [agentId, results, atMs, seq]);
  }
  createCommand(agentId: string, kind: string, args: Record<string, unknown>, createdBy: string): Promise<string | null> {
    return this.call('createCommand', [agentId, kind, args, createdBy]);
  }
  listAgents(filter: AgentFilter, nowMs: number): Promise<AgentRow[]> {
    return this.call('listAgents', [filter, nowMs]);
  }
  statsBy(field: 'os' | 'client'): Promise<Array<{ key: string; agents: number; online: number }>> {
    return this.call('statsBy', [field]);
  }
  syncAgents(afterId: string | null, limit: number): Promise<{ agents: AgentRow[]; next: string | null }> {
    return this.call('syncAgents', [afterId, limit]);
  }
  countCheckins(): Promise<number> {
    return this.call('countCheckins', []);
  }
  ledgerKeys(fromSeq: number, after: { agentId: string; seq: number } | null, limit: number): Promise<LedgerRow[]> {
    return this.call('ledgerKeys', [fromSeq, after, limit]);
  }
  commandStates(ids: string[]): Promise<CommandState[]> {
    return this.call('commandStates', [ids]);
  }
  telemetry(samples: TelemetrySample[]): Promise<void> {
    return this.call('telemetry', [samples]);
  }
  setPresence(agentId: string, relay: string | null, atMs: number): Promise<void> {
    return this.call('setPresence', [agentId, relay, atMs]);
  }
  getPresence(agentId: string): Promise<string | null> {
    return this.call('getPresence', [agentId]);
  }
  acquireLease(name: string, holder: string, ttlMs: number, atMs: number): Promise<number | null> {
    return this.call('acquireLease', [name, holder, ttlMs, atMs]);
  }
  releaseLease(name: string, holder: string): Promise<void> {
    return this.call('releaseLease', [name, holder]);
  }
  leaseHolder(name: string): Promise<{ holder: string; untilMs: number } | null> {
    return this.call('leaseHolder', [name]);
  }
  rebuildGroups(atMs: number, fence: LeaseFence): Promise<number> {
    return this.call('rebuildGroups', [atMs, fence]);
  }
  approvePatches(atMs: number, fence: LeaseFence): Promise<number> {
    return this.call('approvePatches', [atMs, fence]);
  }
  detectOffline(offlineAfterMs: number, atMs: number, fence: LeaseFence): Promise<number> {
    return this.call('detectOffline', [offlineAfterMs, atMs, fence]);
  }
  queueEmail(atMs: number, fence: LeaseFence): Promise<number> {
    return this.call('queueEmail', [atMs, fence]);
  }
  auditSession(record: SessionAuditRecord): Promise<void> {
    return this.call('auditSession', [record]);
  }
  agentGroups(agentId: string): Promise<string[]> {
    return this.call('agentGroups', [agentId]);
  }
  async close(): Promise<void> {
    await this.pool.close();
  }
}
