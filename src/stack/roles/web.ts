import type { IncomingMessage, ServerResponse } from 'node:http';
import { verifyAgentToken, verifyUserToken } from '../../core/identity.js';
import { AGENT_ROUTES, HEADER_AGENT_ID, USER_ROUTES, type CheckinRequest, type CommandResult } from '../../core/protocol.js';
import { bodyOrReply, readJson, sendError, sendJson } from '../http-body.js';
import { DEFAULT_LIMITS } from '../runtime/node-server.js';
import type { RoleContext, RoleFactory, RoleHandler, Store, WebServes } from '../types.js';

/**
 * The web role: the agent API (check-in, heartbeat, inventory, command results) and the user and
 * integration API (dashboard reads, command creation, integration sync). Agents and users
 * authenticate separately; the agent's token is checked before its body is read, so a flood of
 * unauthenticated uploads costs headers, not bodies.
 */

const NEXT_CHECKIN_SEC = 300;

function bearer(req: IncomingMessage): string {
  const h = req.headers.authorization ?? '';
  return h.startsWith('Bearer ') ? h.slice(7) : '';
}

function isCheckin(b: unknown, agentId: string): b is CheckinRequest {
  const c = b as Partial<CheckinRequest> | null;
  return (
    !!c &&
    c.agentId === agentId &&
    typeof c.hostname === 'string' &&
    typeof c.os === 'string' &&
    typeof c.agentVersion === 'string' &&
    typeof c.client === 'string' &&
    typeof c.seq === 'number' &&
    !!c.status &&
    typeof c.status.cpuPct === 'number'
  );
}

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

export function userRouteOf(method: string, path: string): string | null {
  if (path === USER_ROUTES.agents && method === 'GET') return 'dashboard';
  if ((path === USER_ROUTES.statsByOs || path === USER_ROUTES.statsByClient) && method === 'GET') return 'stats';
  if (path === USER_ROUTES.syncAgents && method === 'GET') return 'sync';
  if (method === 'POST' && /^\/api\/v1\/agents\/[^/]+\/commands$/.test(path)) return 'command-create';
  return null;
}

export class WebHandler implements RoleHandler {
  private readonly store: Store;
  private readonly secret: string;
  private readonly serves: WebServes;
  private readonly maxBody: number;

  constructor(ctx: RoleContext, serves: WebServes) {
    if (!ctx.store) throw new Error('the web role needs a store');
    this.store = ctx.store;
    this.secret = ctx.spec.secret;
    this.serves = serves;
    this.maxBody = ctx.spec.limits?.maxBodyBytes ?? DEFAULT_LIMITS.maxBodyBytes;
  }

  routeOf(method: string, path: string): string {
    return agentRouteOf(path) ?? userRouteOf(method, path) ?? 'not-found';
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const method = req.method ?? 'GET';
    const agentRoute = this.serves !== 'user' ? agentRouteOf(url.pathname) : null;
    if (agentRoute) return this.agent(req, res, agentRoute);
    const userRoute = this.serves !== 'agent' ? userRouteOf(method, url.pathname) : null;
    if (userRoute) return this.user(req, res, userRoute, url);
    sendError(req, res, 404, 'not found');
  }

  private async agent(req: IncomingMessage, res: ServerResponse, route: string): Promise<void> {
    if (req.method !== 'POST') return sendError(req, res, 405, 'POST only');
    const agentId = String(req.headers[HEADER_AGENT_ID] ?? '');
    if (!verifyAgentToken(this.secret, agentId, bearer(req))) return sendError(req, res, 401, 'unknown agent or bad token');
    const body = await bodyOrReply(req, res, (r) => readJson(r, this.maxBody));
    if (body === undefined) return;
    const now = Date.now();
    switch (route) {
      case 'checkin': {
        if (!isCheckin(body, agentId)) return sendError(req, res, 400, 'check-in body does not match the agent or the schema');
        const commands = await this.store.checkin(body, now);
        return sendJson(res, 200, { ok: true, commands, nextCheckinSec: NEXT_CHECKIN_SEC });
      }
      case 'heartbeat':
        await this.store.heartbeat(agentId, now);
        return sendJson(res, 200, { ok: true, commands: [], nextCheckinSec: NEXT_CHECKIN_SEC });
      case 'inventory':
        await this.store.inventory(agentId, body, now);
        return sendJson(res, 200, { ok: true });
      default: {
        const results = (body as { results?: unknown }).results;
        if (!Array.isArray(results)) return sendError(req, res, 400, 'results must be an array');
        await this.store.commandResults(agentId, results as CommandResult[], now);
        return sendJson(res, 200, { ok: true });
      }
    }
  }

  private async user(req: IncomingMessage, res: ServerResponse, route: string, url: URL): Promise<void> {
    const user = verifyUserToken(this.secret, bearer(req));
    if (!user) return sendError(req, res, 401, 'user token required');
    const limit = Math.min(1000, Math.max(1, Number(url.searchParams.get('limit') ?? 100) || 100));
    switch (route) {
      case 'dashboard': {
        const status = url.searchParams.get('status');
        const agents = await this.store.listAgents(
          {
            status: status === 'online' || status === 'offline' ? status : undefined,
            client: url.searchParams.get('client') ?? undefined,
            os: url.searchParams.get('os') ?? undefined,
            limit,
          },
          Date.now(),
        );
        req.resume();
        return sendJson(res, 200, { agents });
      }
      case 'stats':
        req.resume();
        return sendJson(res, 200, { stats: await this.store.statsBy(url.pathname.endsWith('by-os') ? 'os' : 'client') });
      case 'sync': {
        req.resume();
        const page = await this.store.syncAgents(url.searchParams.get('after'), limit);
        return sendJson(res, 200, page);
      }
      default: {
        const body = await bodyOrReply(req, res, (r) => readJson(r, this.maxBody));
        if (body === undefined) return;
        const b = body as { kind?: unknown; args?: unknown } | null;
        if (!b || typeof b.kind !== 'string') return sendError(req, res, 400, 'expected {"kind": string, "args": object}');
        const agentId = decodeURIComponent(url.pathname.split('/')[4]);
        const id = await this.store.createCommand(agentId, b.kind, (b.args as Record<string, unknown>) ?? {}, user);
        if (!id) return sendError(req, res, 404, 'no such agent');
        return sendJson(res, 201, { commandId: id });
      }
    }
  }

  async close(): Promise<void> {}
}

export const createRole: RoleFactory = async (ctx) => new WebHandler(ctx, ctx.spec.web?.serves ?? 'both');
