import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import { AGENT_ROUTES, HEADER_SERVED_BY, USER_ROUTES } from '../../core/protocol.js';
import { authenticateUser } from '../auth.js';
import { readJson, sendJson } from '../http-body.js';
import { refuse, refuseError } from '../http-errors.js';
import type { NodeMetricsApi } from '../types.js';
import { SessionBroker, type SessionOutcome } from './sessions.js';
import { HEADER_RELAY_HOP, type SiblingForwarder } from './sibling-forward.js';

/**
 * The relay's operator side: `POST /api/v1/sessions` with a user token and
 * {agentId, protocol, command, args?, timeoutMs?} → 200 {sessionId, agentId, relay, exitCode,
 * output}. The relay holding the agent's tunnel sends {"t":"cmd", kind: protocol, args:
 * {...args, command}} and answers with the agent's `res`; a relay that does not hold it forwards
 * the request once to the sibling that does (sibling-forward.ts). Errors: 401 bad user token, 400
 * bad body, 404 no relay holds the agent, 429 the agent has 4 sessions pending, 502 the tunnel
 * closed before the answer or the sibling is unreachable, 503 the relay has 1,000 sessions pending
 * or the db is unavailable, 504 no answer within timeoutMs (default 10 s, at most 60 s). Pending
 * sessions live only in this process's memory (sessions.ts): a relay that restarts loses those and
 * nothing else.
 */

const MAX_SESSION_BODY_BYTES = 64 * 1024;
const MAX_PENDING_SESSIONS = 1000;
const MAX_SESSIONS_PER_AGENT = 4;
const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
const MAX_SESSION_TIMEOUT_MS = 60_000;

export interface SessionRequest {
  agentId: string;
  protocol: string;
  command: string;
  args: Record<string, unknown>;
  timeoutMs: number;
}

const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

/** A valid session request, or the first problem with it (one line). */
export function parseSessionRequest(b: unknown): SessionRequest | string {
  if (typeof b !== 'object' || b === null || Array.isArray(b)) return 'body: expected a JSON object {"agentId", "protocol", "command", "args"?, "timeoutMs"?}';
  const r = b as Record<string, unknown>;
  if (!isText(r.agentId, 128)) return 'agentId: expected a string of 1-128 characters';
  if (!isText(r.protocol, 64)) return 'protocol: expected a string of 1-64 characters (e.g. "shell")';
  if (!isText(r.command, 4096)) return 'command: expected a string of 1-4096 characters';
  if (r.args !== undefined && (typeof r.args !== 'object' || r.args === null || Array.isArray(r.args))) return 'args: expected an object';
  const t = r.timeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > MAX_SESSION_TIMEOUT_MS) return `timeoutMs: expected an integer 1-${MAX_SESSION_TIMEOUT_MS}, got ${JSON.stringify(r.timeoutMs)}`;
  return { agentId: r.agentId, protocol: r.protocol, command: r.command, args: (r.args as Record<string, unknown> | undefined) ?? {}, timeoutMs: t };
}

export interface SessionApiOptions {
  /** The relay's node name. */
  name: string;
  secret: string;
  metrics: NodeMetricsApi;
  /** The agent's open tunnel on this relay, if any. */
  tunnelOf: (agentId: string) => WebSocket | undefined;
  forwarder: SiblingForwarder;
}

export class SessionApi {
  /** Sessions pending on this relay; the tunnel side delivers their answers. */
  readonly sessions = new SessionBroker(MAX_PENDING_SESSIONS, MAX_SESSIONS_PER_AGENT);

  constructor(private readonly o: SessionApiOptions) {}

  routeOf(method: string, path: string): string {
    return path === USER_ROUTES.sessions ? (method === 'POST' ? 'session' : 'session-bad-method') : 'not-found';
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader(HEADER_SERVED_BY, this.o.name);
    const path = (req.url ?? '/').split('?')[0];
    if (path !== USER_ROUTES.sessions) return refuse(req, res, 404, `not found: a relay serves ${USER_ROUTES.sessions} (operators) and ${AGENT_ROUTES.tunnel} (agents)`);
    if (req.method !== 'POST') return refuse(req, res, 405, 'POST only', { allow: 'POST' });
    const user = authenticateUser(req, this.o.secret);
    if (!user) return refuse(req, res, 401, 'user token required');
    try {
      const parsed = parseSessionRequest(await readJson(req, MAX_SESSION_BODY_BYTES));
      if (typeof parsed === 'string') return refuse(req, res, 400, parsed);
      const ws = this.o.tunnelOf(parsed.agentId);
      if (ws) return await this.broker(res, ws, parsed);
      const hop = req.headers[HEADER_RELAY_HOP];
      if (typeof hop === 'string') return refuse(req, res, 404, `agent ${JSON.stringify(parsed.agentId)} has no tunnel on ${this.o.name} (forwarded by ${hop})`);
      return await this.o.forwarder.forward(req, res, parsed);
    } catch (err) {
      refuseError(req, res, err);
    }
  }

  private async broker(res: ServerResponse, ws: WebSocket, s: SessionRequest): Promise<void> {
    const { name, metrics } = this.o;
    const opened = this.sessions.open(s.agentId, s.protocol, { ...s.args, command: s.command }, s.timeoutMs, (frame) => ws.send(frame));
    if (!(opened instanceof Promise)) {
      metrics.count(`session-refused-${opened.kind}`);
      if (opened.kind === 'agent-busy') return sendJson(res, 429, { error: `agent ${JSON.stringify(s.agentId)} already has ${opened.maxPerAgent} sessions pending on ${name}; retry when one ends` });
      res.setHeader('retry-after', '1');
      return sendJson(res, 503, { error: `${name} has ${opened.maxPending} sessions pending, its limit; retry shortly` });
    }
    metrics.gauge('sessions-pending', this.sessions.size);
    const outcome: SessionOutcome = await opened;
    metrics.gauge('sessions-pending', this.sessions.size);
    metrics.count(`session-${outcome.kind}`);
    switch (outcome.kind) {
      case 'answered':
        return sendJson(res, 200, { sessionId: outcome.sessionId, agentId: s.agentId, relay: name, exitCode: outcome.exitCode, output: outcome.output });
      case 'timeout':
        return sendJson(res, 504, { error: `agent ${JSON.stringify(s.agentId)} did not answer session ${outcome.sessionId} within ${outcome.timeoutMs} ms`, sessionId: outcome.sessionId });
      default:
        return sendJson(res, 502, { error: `agent ${JSON.stringify(s.agentId)}'s tunnel to ${name} closed before it answered session ${outcome.sessionId}; retry once it reconnects`, sessionId: outcome.sessionId });
    }
  }
}
