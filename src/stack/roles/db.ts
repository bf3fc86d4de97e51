import type { IncomingMessage, ServerResponse } from 'node:http';
import { deriveKey, sameCredential } from '../../core/identity.js';
import { bearerToken } from '../auth.js';
import { bodyOrReply, readJson, sendError, sendJson } from '../http-body.js';
import { refuse } from '../http-errors.js';
import { LeaseFencedError } from '../store/errors.js';
import { DB_METHODS, DB_RPC_PREFIX, type DbMethod } from '../store/remote.js';
import type { RoleFactory, RoleHandler, Store } from '../types.js';
import { publicHolder } from './app.js';

/**
 * The db tier as its own process: it owns the real store (the SQLite file, or a PostgreSQL pool)
 * and serves the Store's operations as JSON RPC (`POST /db/v1/<method>`, body: a JSON array of
 * arguments; answer: `{"result": …}`). The runtime wraps the store in the node's dbProfile
 * (connections × per-query time, store/limited.ts), so the database is measured, limited and
 * killable like every other tier, and its per-route histograms (`db:checkin`, `db:listAgents`…)
 * are query latencies per operation.
 *
 * Every call needs the stack's db key (`authorization: Bearer <key>`, derived from the stack
 * secret for 'db-rpc'), checked before the body is read: without it, 401 and nothing runs.
 */

const METHODS = new Set<string>(DB_METHODS);
/** Telemetry batches and inventory documents are the largest calls. */
const MAX_RPC_BYTES = 16 * 1024 * 1024;

function methodOf(path: string): DbMethod | null {
  const m = path.startsWith(DB_RPC_PREFIX) ? path.slice(DB_RPC_PREFIX.length) : '';
  return METHODS.has(m) ? (m as DbMethod) : null;
}

export class DbHandler implements RoleHandler {
  private readonly key: string;

  constructor(
    private readonly store: Store,
    secret: string,
  ) {
    this.key = deriveKey(secret, 'db-rpc');
  }

  routeOf(_method: string, path: string): string {
    const m = methodOf(path);
    return m ? `db:${m}` : 'not-found';
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = methodOf((req.url ?? '').split('?')[0]);
    if (!sameCredential(bearerToken(req), this.key)) {
      res.setHeader('www-authenticate', 'Bearer realm="rmmscale-db"');
      return refuse(req, res, 401, 'db key required');
    }
    if (req.method !== 'POST' || !method) return sendError(req, res, 404, 'not found');
    const args = await bodyOrReply(req, res, (r) => readJson(r, MAX_RPC_BYTES));
    if (args === undefined) return;
    if (!Array.isArray(args)) return sendError(req, res, 400, 'expected a JSON array of arguments');
    const fn = this.store[method] as (...a: unknown[]) => Promise<unknown>;
    // A QueueFullError from the dbProfile limiter propagates: the runtime answers 503. A fenced
    // DBAgent write is a 409 the caller's RemoteStore turns back into a LeaseFencedError.
    let result: unknown;
    try {
      result = await fn.apply(this.store, args);
    } catch (err) {
      if (err instanceof LeaseFencedError) return sendJson(res, 409, { error: err.message, lease: err.lease, token: err.token, current: err.current });
      throw err;
    }
    // A lease's holder goes out without its private part: knowing who holds it is no way to release it.
    if (method === 'leaseHolder' && result) result = { ...(result as { holder: string; untilMs: number }), holder: publicHolder((result as { holder: string }).holder) };
    sendJson(res, 200, { result: result === undefined ? null : result });
  }

  async close(): Promise<void> {}
}

export const createRole: RoleFactory = async (ctx) => {
  if (!ctx.store) throw new Error('the db role needs a backing store');
  return new DbHandler(ctx.store, ctx.spec.secret);
};
