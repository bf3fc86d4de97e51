import { Pool } from 'undici';
import type { CheckinRequest, CommandResult, PendingCommand } from '../../core/protocol.js';
import type { AgentFilter, AgentRow, Store, TelemetrySample } from '../types.js';

/**
 * A Store that lives on the db node: every call is one JSON RPC over a keep-alive pool. The pool's
 * size plays the application's database connection pool.
 */
export class RemoteStore implements Store {
  readonly kind = 'remote' as const;
  private readonly pool: Pool;

  constructor(url: string, connections = 64) {
    this.pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 60_000, bodyTimeout: 60_000 });
  }

  private async call<T>(method: string, args: unknown[]): Promise<T> {
    const res = await this.pool.request({ method: 'POST', path: `/db/v1/${method}`, headers: { 'content-type': 'application/json' }, body: JSON.stringify(args) });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`db node answered ${res.statusCode} to ${method}: ${text.slice(0, 200)}`);
    return (JSON.parse(text) as { result: T }).result;
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
  inventory(agentId: string, doc: unknown, atMs: number): Promise<void> {
    return this.call('inventory', [agentId, doc, atMs]);
  }
  commandResults(agentId: string, results: CommandResult[], atMs: number): Promise<void> {
    return this.call('commandResults', [agentId, results, atMs]);
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
  telemetry(samples: TelemetrySample[]): Promise<void> {
    return this.call('telemetry', [samples]);
  }
  setPresence(agentId: string, relay: string | null, atMs: number): Promise<void> {
    return this.call('setPresence', [agentId, relay, atMs]);
  }
  getPresence(agentId: string): Promise<string | null> {
    return this.call('getPresence', [agentId]);
  }
  acquireLease(name: string, holder: string, ttlMs: number, atMs: number): Promise<boolean> {
    return this.call('acquireLease', [name, holder, ttlMs, atMs]);
  }
  releaseLease(name: string, holder: string): Promise<void> {
    return this.call('releaseLease', [name, holder]);
  }
  leaseHolder(name: string): Promise<{ holder: string; untilMs: number } | null> {
    return this.call('leaseHolder', [name]);
  }
  rebuildGroups(atMs: number): Promise<number> {
    return this.call('rebuildGroups', [atMs]);
  }
  approvePatches(atMs: number): Promise<number> {
    return this.call('approvePatches', [atMs]);
  }
  detectOffline(offlineAfterMs: number, atMs: number): Promise<number> {
    return this.call('detectOffline', [offlineAfterMs, atMs]);
  }
  queueEmail(atMs: number): Promise<number> {
    return this.call('queueEmail', [atMs]);
  }
  async close(): Promise<void> {
    await this.pool.close();
  }
}
