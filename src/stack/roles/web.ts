import type { IncomingMessage, ServerResponse } from 'node:http';
import { AGENT_ROUTES, USER_ROUTES, type CheckinRequest, type CheckinResponse, type CommandResult } from '../../core/protocol.js';
import { authenticateAgent, authenticateUser } from '../auth.js';
import { readJson, sendJson } from '../http-body.js';
import { refuse, refuseError } from '../http-errors.js';
import { DEFAULT_LIMITS } from '../runtime/node-server.js';
import type { RoleContext, RoleFactory, RoleHandler, Store, WebServes } from '../types.js';

/**
 * The web role: the agent API (check-in, heartbeat, inventory, command results) and the user and
 * integration API (dashboard reads, command creation, integration sync), per src/core/protocol.ts.
 *
 * - Agents and users authenticate separately (src/stack/auth.ts), from headers, before any body
 *   byte is read: an unauthenticated upload costs its headers, not its body.
 * - Bodies are bounded (spec.limits.maxBodyBytes, default 1 MiB): a declared length over the limit
 *   is refused before reading, a chunked body as soon as it crosses it, and the connection is then
 *   closed rather than drained.
 * - `serves` picks the API: an agent-only node answers user paths with 404 and vice versa (the
 *   proxy routes by path).
 * - Every agent write carries an idempotency key, the agent id and its `seq`: a retry of a write
 *   already stored (or one whose first attempt committed after it timed out) changes nothing, and
 *   is answered as the first was.
 * - A database that is overloaded or down (StoreUnavailableError, or the db limiter's QueueFullError)
 *   is a 503 with retry-after, so agents back off instead of counting a server error
 *   (src/stack/http-errors.ts, shared with the relay).
 */

export const NEXT_CHECKIN_SEC = 300;
const MAX_TEXT = 256;
const MAX_LIMIT = 1000;

export function agentRouteOf(path: string): string | null {
  switch (path) {
    case AGENT_ROUTES.checkin:
      return 'checkin';
    case AGENT_ROUTES.heartbeat:
      return 'heartbeat';
    case AGENT_ROUTES.inventory:
      return 'inventory';
    case AGENT_ROUTES.commandResults:
      return 'command-results';
    default:
      return null;
  }
}

const COMMANDS_PATH = /^\/api\/v1\/agents\/([^/]{1,128})\/commands$/;

export function userRouteOf(method: string, path: string): string | null {
  if (method === 'GET') {
    if (path === USER_ROUTES.agents) return 'dashboard';
    if (path === USER_ROUTES.statsByOs || path === USER_ROUTES.statsByClient) return 'stats';
    if (path === USER_ROUTES.syncAgents) return 'sync';
  }
  if (method === 'POST' && COMMANDS_PATH.test(path)) return 'command-create';
  return null;
}

const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_TEXT;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
/** A write's sequence number: with the agent id, its idempotency key (a retry carries the same one). */
const isSeq = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const SEQ_PROBLEM = 'seq: expected an integer from 0 to 2^53-1 (with the agent id, the idempotency key of the write)';

/** What is wrong with a check-in body (the first problem), or null. */
export function checkinProblem(b: unknown, agentId: string): string | null {
  if (typeof b !== 'object' || b === null || Array.isArray(b)) return 'body: expected a JSON object';
  const c = b as Record<string, unknown>;
  if (c.agentId !== agentId) return `agentId: expected the x-agent-id header's ${JSON.stringify(agentId)}`;
  for (const f of ['hostname', 'os', 'agentVersion', 'client'] as const) if (!isText(c[f])) return `${f}: expected a string of 1-${MAX_TEXT} characters`;
  if (!isSeq(c.seq)) return SEQ_PROBLEM;
  const s = c.status as Record<string, unknown> | null | undefined;
  if (typeof s !== 'object' || s === null) return 'status: expected an object';
  for (const f of ['cpuPct', 'memPct', 'diskFreePct'] as const) if (!isNum(s[f])) return `status.${f}: expected a number`;
  return null;
}

function resultsProblem(b: unknown, agentId: string): string | null {
  const r = (b as { agentId?: unknown; results?: unknown; seq?: unknown } | null) ?? {};
  if (r.agentId !== undefined && r.agentId !== agentId) return `agentId: expected the x-agent-id header's ${JSON.stringify(agentId)}`;
  if (r.seq !== undefined && !isSeq(r.seq)) return SEQ_PROBLEM;
  if (!Array.isArray(r.results)) return 'results: expected an array';
  for (const [i, x] of (r.results as unknown[]).entries()) {
    const e = x as Partial<CommandResult> | null;
    if (!e || typeof e.commandId !== 'string' || !isNum(e.exitCode)) return `results[${i}]: expected {commandId: string, exitCode: number, output, durationMs}`;
  }
  return null;
}

export class WebHandler implements RoleHandler {
  private readonly store: Store;
  private readonly secret: string;
  private readonly maxBodyBytes: number;

  constructor(
    ctx: RoleContext,
    readonly serves: WebServes,
  ) {
    if (!ctx.store) throw new Error('the web role needs a store');
    this.store = ctx.store;
    this.secret = ctx.spec.secret;
    this.maxBodyBytes = ctx.spec.limits?.maxBodyBytes ?? DEFAULT_LIMITS.maxBodyBytes;
  }

  routeOf(method: string, path: string): string {
    const a = this.serves !== 'user' ? agentRouteOf(path) : null;
    const u = this.serves !== 'agent' ? userRouteOf(method, path) : null;
    return a ?? u ?? 'not-found';
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const method = req.method ?? 'GET';
    try {
      const agentRoute = this.serves !== 'user' ? agentRouteOf(url.pathname) : null;
      if (agentRoute) return await this.agent(req, res, agentRoute);
      const userRoute = this.serves !== 'agent' ? userRouteOf(method, url.pathname) : null;
      if (userRoute) return await this.user(req, res, userRoute, url);
      refuse(req, res, 404, 'not found');
    } catch (err) {
      refuseError(req, res, err);
    }
  }

  private async agent(req: IncomingMessage, res: ServerResponse, route: string): Promise<void> {
    if (req.method !== 'POST') return refuse(req, res, 405, 'POST only', { allow: 'POST' });
    const agentId = authenticateAgent(req, this.secret);
    if (!agentId) return refuse(req, res, 401, 'agent token and x-agent-id required, and they must match');
    const body = await readJson(req, this.maxBodyBytes);
    const now = Date.now();
    switch (route) {
      case 'checkin': {
        const problem = checkinProblem(body, agentId);
        if (problem) return refuse(req, res, 400, problem);
        const commands = await this.store.checkin(body as CheckinRequest, now);
        const reply: CheckinResponse = { ok: true, commands, nextCheckinSec: NEXT_CHECKIN_SEC };
        return sendJson(res, 200, reply);
      }
      case 'heartbeat':
        await this.store.heartbeat(agentId, now);
        return sendJson(res, 200, { ok: true, commands: [], nextCheckinSec: NEXT_CHECKIN_SEC });
      case 'inventory': {
        const b = body as { agentId?: unknown; seq?: unknown } | null;
        if (typeof b !== 'object' || b === null || (b.agentId !== undefined && b.agentId !== agentId)) return refuse(req, res, 400, 'body: expected a JSON object for this agent');
        if (b.seq !== undefined && !isSeq(b.seq)) return refuse(req, res, 400, SEQ_PROBLEM);
        await this.store.inventory(agentId, body, now, isSeq(b.seq) ? b.seq : null);
        return sendJson(res, 200, { ok: true });
      }
      default: {
        const problem = resultsProblem(body, agentId);
        if (problem) return refuse(req, res, 400, problem);
        const r = body as { results: CommandResult[]; seq?: unknown };
        await this.store.commandResults(agentId, r.results, now, isSeq(r.seq) ? r.seq : null);
        return sendJson(res, 200, { ok: true });
      }
    }
  }

  private async user(req: IncomingMessage, res: ServerResponse, route: string, url: URL): Promise<void> {
    const user = authenticateUser(req, this.secret);
    if (!user) return refuse(req, res, 401, 'user token required');
    const q = url.searchParams;
    const limitRaw = q.get('limit');
    const limit = limitRaw === null ? 100 : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) return refuse(req, res, 400, `limit: expected an integer 1-${MAX_LIMIT}, got ${JSON.stringify(limitRaw)}`);
    switch (route) {
      case 'dashboard': {
        req.resume();
        const status = q.get('status');
        if (status !== null && status !== 'online' && status !== 'offline') return refuse(req, res, 400, `status: expected online or offline, got ${JSON.stringify(status)}`);
        const agents = await this.store.listAgents({ status: status ?? undefined, client: q.get('client') ?? undefined, os: q.get('os') ?? undefined, limit }, Date.now());
        return sendJson(res, 200, { agents });
      }
      case 'stats':
        req.resume();
        return sendJson(res, 200, { stats: await this.store.statsBy(url.pathname === USER_ROUTES.statsByOs ? 'os' : 'client') });
      case 'sync':
        req.resume();
        return sendJson(res, 200, await this.store.syncAgents(q.get('after'), limit));
      default: {
        const body = await readJson(req, this.maxBodyBytes);
        const b = body as { kind?: unknown; args?: unknown } | null;
        if (!b || !isText(b.kind) || (b.args !== undefined && (typeof b.args !== 'object' || b.args === null || Array.isArray(b.args)))) {
          return refuse(req, res, 400, 'body: expected {"kind": string, "args": object}');
        }
        let agentId: string;
        try {
          agentId = decodeURIComponent(COMMANDS_PATH.exec(url.pathname)![1]);
        } catch {
          return refuse(req, res, 400, 'path: the agent id is not valid percent-encoding');
        }
        const id = await this.store.createCommand(agentId, b.kind, (b.args as Record<string, unknown> | undefined) ?? {}, user);
        if (!id) return refuse(req, res, 404, `agent ${JSON.stringify(agentId)} is unknown`);
        return sendJson(res, 201, { commandId: id });
      }
    }
  }

  async close(): Promise<void> {}
}

export const createRole: RoleFactory = async (ctx) => new WebHandler(ctx, ctx.spec.web?.serves ?? 'both');
