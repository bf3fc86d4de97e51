import type { IncomingMessage, ServerResponse } from 'node:http';
import { bodyOrReply, readJson, sendError, sendJson } from '../http-body.js';
import type { RoleFactory, RoleHandler, Store } from '../types.js';

/**
 * The db tier as its own process: it owns the real store (the SQLite file) and serves the Store's
 * operations as JSON RPC (`POST /db/v1/<method>` with a JSON array of arguments). Its capacity
 * model (connections × per-query time) wraps the store here, so the database is measured, limited
 * and killable like every other tier. Per-route histograms are per-operation query latencies.
 */

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
] as const satisfies ReadonlyArray<keyof Store>;

export type DbMethod = (typeof DB_METHODS)[number];
const METHODS = new Set<string>(DB_METHODS);
const PREFIX = '/db/v1/';
const MAX_RPC_BYTES = 8 * 1024 * 1024;

class DbHandler implements RoleHandler {
  constructor(private readonly store: Store) {}

  routeOf(_method: string, path: string): string {
    const m = path.startsWith(PREFIX) ? path.slice(PREFIX.length) : '';
    return METHODS.has(m) ? `db:${m}` : 'not-found';
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    const method = path.startsWith(PREFIX) ? path.slice(PREFIX.length) : '';
    if (req.method !== 'POST' || !METHODS.has(method)) return sendError(req, res, 404, 'not found');
    const args = await bodyOrReply(req, res, (r) => readJson(r, MAX_RPC_BYTES));
    if (args === undefined) return;
    if (!Array.isArray(args)) return sendError(req, res, 400, 'expected a JSON array of arguments');
    const fn = this.store[method as DbMethod] as (...a: unknown[]) => Promise<unknown>;
    const result = await fn.apply(this.store, args);
    sendJson(res, 200, { result: result === undefined ? null : result });
  }

  async close(): Promise<void> {}
}

export const createRole: RoleFactory = async (ctx) => {
  if (!ctx.store) throw new Error('the db role needs a backing store');
  return new DbHandler(ctx.store);
};
