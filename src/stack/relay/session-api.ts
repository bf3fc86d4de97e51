import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import { deriveKey, parseSessionScope, sameCredential, verifyUserTokenScope, type SessionScope } from '../../core/identity.js';
import { AGENT_ROUTES, HEADER_SERVED_BY, USER_ROUTES } from '../../core/protocol.js';
import { bearerToken } from '../auth.js';
import { readJson, sendJson } from '../http-body.js';
import { refuse, refuseError } from '../http-errors.js';
import type { NodeMetricsApi, SessionAuditRecord, Store } from '../types.js';
import { StoreUnavailableError } from '../store/errors.js';
import type { AuditSpool } from './audit-spool.js';
import { SessionBroker, type SessionOutcome } from './sessions.js';
import { HEADER_RELAY_HOP, HEADER_RELAY_KEY, RELAY_HOLDS_PREFIX, withDeadline, type SiblingForwarder } from './sibling-forward.js';

/**
 * The relay's operator side: `POST /api/v1/sessions` with a user token and
 * {agentId, protocol, command, args?, timeoutMs?} → 200 {sessionId, agentId, relay, exitCode,
 * output}. The relay holding the agent's tunnel sends {"t":"cmd", kind: protocol, args:
 * {...args, command}} and answers with the agent's `res`; a relay that does not hold it forwards
 * the request once to the sibling that does (sibling-forward.ts). Errors: 401 bad user token, 400
 * bad body, 404 no relay holds the agent, 429 the agent has 4 sessions pending, 502 the tunnel
 * closed before the answer or the sibling is unreachable (with retry-after: 1: the agent is failing
 * over, and the same request sent again reaches it on its new relay), 503 the relay has 1,000 sessions pending
 * or the db is unavailable, 504 no answer within timeoutMs (default 10 s, at most 60 s). Pending
 * sessions live only in this process's memory (sessions.ts): a relay that restarts loses those and
 * nothing else.
 *
 * Scope: a session reaches one agent with one protocol, and the user token must carry a scope
 * (core/identity.ts SessionScope) that covers both: the agent by id, or by group (its client or
 * dynamic group in the database); else 403. A token without a scope opens no session.
 *
 * Audit: every session from an authenticated user with a well-formed body, allowed or refused,
 * is one row in the database's session_audit (user, agent, protocol, relay, start, end, outcome,
 * status). An allowed session's row is written before its command goes down the tunnel and
 * completed when it ends. A session forwarded to a sibling is audited by the sibling, which
 * decides it; the entry relay audits only what it refuses itself.
 *
 * The control plane down (the article: "agents and sessions keep working"): a record the
 * database does not take within 500 ms goes to the relay's fsynced audit spool and reaches the
 * database once it is back (audit-spool.ts); only a record that can be kept in neither refuses
 * the session (503). A group scope is decided on the agent's groups as the database says now,
 * or, while it is unreachable, as last read up to 15 minutes ago; an agent whose groups were
 * never read gets 503 + retry-after then. Which relay holds an agent is asked of the
 * siblings themselves when the database cannot say (sibling-forward.ts).
 *
 * A request marked as forwarded (x-rmmscale-relay-hop) must carry the siblings' key
 * (x-rmmscale-relay-key, derived from the stack secret for 'relay-forward'), else 401.
 */

const MAX_SESSION_BODY_BYTES = 64 * 1024;
const MAX_PENDING_SESSIONS = 1000;
const MAX_SESSIONS_PER_AGENT = 4;
const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
const MAX_SESSION_TIMEOUT_MS = 60_000;
/** While the database is unreachable, an agent's groups as last read are used for this long. */
const GROUPS_STALE_MS = 15 * 60_000;
/** Agents whose groups are remembered, at most (the oldest read is forgotten first). */
const GROUPS_CACHED_MAX = 100_000;
/** A group lookup slower than this counts as the database being unreachable. */
const GROUPS_DEADLINE_MS = 500;

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
  /** Where group membership comes from. */
  store: Store;
  /** Where audit records go: the database, or the relay's spool while it is unreachable. */
  audit: AuditSpool;
  /** At most one line a second (the relay's error log). */
  logError: (message: string) => void;
  /** The agent's open tunnel on this relay, if any. */
  tunnelOf: (agentId: string) => WebSocket | undefined;
  forwarder: SiblingForwarder;
}

/** Whether a token's scope lets its user open `s` (the agent's groups asked only for a group scope). */
async function inScope(scope: SessionScope, s: SessionRequest, groupsOf: (agentId: string) => Promise<string[]>): Promise<boolean> {
  if (scope.protocols && !scope.protocols.has(s.protocol)) return false;
  if (scope.agents === 'all') return true;
  if (scope.agents instanceof Set) return scope.agents.has(s.agentId);
  const { group } = scope.agents as { group: string };
  return (await groupsOf(s.agentId)).includes(group);
}

export class SessionApi {
  /** Sessions pending on this relay; the tunnel side delivers their answers. */
  readonly sessions = new SessionBroker(MAX_PENDING_SESSIONS, MAX_SESSIONS_PER_AGENT);
  private readonly forwardKey: string;
  /** Agent id → its groups and when they were read. Map order is read order (oldest first). */
  private readonly groups = new Map<string, { groups: string[]; atMs: number }>();

  constructor(private readonly o: SessionApiOptions) {
    this.forwardKey = deriveKey(o.secret, 'relay-forward');
  }

  routeOf(method: string, path: string): string {
    if (path.startsWith(RELAY_HOLDS_PREFIX)) return 'relay-holds';
    return path === USER_ROUTES.sessions ? (method === 'POST' ? 'session' : 'session-bad-method') : 'not-found';
  }

  /**
   * An agent's groups for a group scope: read from the database on every session (a change of
   * group takes effect at once), and remembered only for when it is unreachable.
   */
  private async groupsOf(agentId: string): Promise<string[]> {
    const now = Date.now();
    const cached = this.groups.get(agentId);
    try {
      const groups = await withDeadline(this.o.store.agentGroups(agentId), GROUPS_DEADLINE_MS);
      this.groups.delete(agentId);
      if (this.groups.size >= GROUPS_CACHED_MAX) this.groups.delete(this.groups.keys().next().value!);
      this.groups.set(agentId, { groups, atMs: Date.now() });
      return groups;
    } catch (err) {
      if (cached && now - cached.atMs < GROUPS_STALE_MS) {
        this.o.metrics.count('session-scope-stale-groups');
        return cached.groups;
      }
      throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError(`agent ${JSON.stringify(agentId)}'s groups could not be read (${(err as Error).message}) and none are remembered`);
    }
  }

  /** `GET /relay/v1/holds/AGENT` from a sibling (with the siblings' key): whether this relay holds that agent's tunnel. */
  private holds(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (!sameCredential(req.headers[HEADER_RELAY_KEY] as string | undefined, this.forwardKey)) {
      this.o.metrics.count('session-refused-forward-key');
      return refuse(req, res, 401, `${RELAY_HOLDS_PREFIX}AGENT needs the siblings' key (${HEADER_RELAY_KEY})`);
    }
    if (req.method !== 'GET') return refuse(req, res, 405, 'GET only', { allow: 'GET' });
    const agentId = decodeURIComponent(path.slice(RELAY_HOLDS_PREFIX.length));
    sendJson(res, 200, { relay: this.o.name, agentId, holds: this.o.tunnelOf(agentId) !== undefined });
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader(HEADER_SERVED_BY, this.o.name);
    const path = (req.url ?? '/').split('?')[0];
    if (path.startsWith(RELAY_HOLDS_PREFIX)) return this.holds(req, res, path);
    if (path !== USER_ROUTES.sessions) return refuse(req, res, 404, `not found: a relay serves ${USER_ROUTES.sessions} (operators) and ${AGENT_ROUTES.tunnel} (agents)`);
    if (req.method !== 'POST') return refuse(req, res, 405, 'POST only', { allow: 'POST' });
    const token = bearerToken(req);
    const who = token ? verifyUserTokenScope(this.o.secret, token) : null;
    if (!who) return refuse(req, res, 401, 'user token required');
    const hop = req.headers[HEADER_RELAY_HOP];
    if (hop !== undefined && !sameCredential(req.headers[HEADER_RELAY_KEY] as string | undefined, this.forwardKey)) {
      this.o.metrics.count('session-refused-forward-key');
      return refuse(req, res, 401, `${HEADER_RELAY_HOP} needs the siblings' key (${HEADER_RELAY_KEY})`);
    }
    try {
      const parsed = parseSessionRequest(await readJson(req, MAX_SESSION_BODY_BYTES));
      if (typeof parsed === 'string') return refuse(req, res, 400, parsed);
      const audit = this.auditor(who.user, parsed);
      let scope: SessionScope | null = null;
      try {
        scope = who.scope === null ? null : parseSessionScope('scope', who.scope);
      } catch {
        scope = null; // minted with the secret but malformed: reaches nothing
      }
      let allowed: boolean;
      try {
        allowed = scope !== null && (await inScope(scope, parsed, (id) => this.groupsOf(id)));
      } catch (err) {
        if (!(err instanceof StoreUnavailableError)) throw err;
        // A group scope, the database unreachable and the agent's groups never read: undecidable now.
        this.o.metrics.count('session-refused-scope-unknown');
        await audit.end('scope-unavailable', 503);
        return refuse(req, res, 503, `user ${JSON.stringify(who.user)}: agent ${JSON.stringify(parsed.agentId)}'s groups cannot be read now (${err.reason}); retry shortly`, { 'retry-after': '1' });
      }
      if (!allowed) {
        this.o.metrics.count('session-refused-scope');
        await audit.end('refused-scope', 403);
        const why = scope ? `does not cover agent ${JSON.stringify(parsed.agentId)} with protocol ${JSON.stringify(parsed.protocol)}` : 'carries no session scope';
        return refuse(req, res, 403, `user ${JSON.stringify(who.user)}: the token ${why}`);
      }
      if (this.o.tunnelOf(parsed.agentId)) return await this.broker(res, parsed, audit);
      if (typeof hop === 'string') {
        await audit.end('not-connected', 404);
        return refuse(req, res, 404, `agent ${JSON.stringify(parsed.agentId)} has no tunnel on ${this.o.name} (forwarded by ${hop})`);
      }
      const f = await this.o.forwarder.forward(req, res, parsed);
      // A sibling that answered audited the session itself; what never reached one is audited here.
      if (!f.reachedSibling) await audit.end(f.outcome, f.status);
    } catch (err) {
      refuseError(req, res, err);
    }
  }

  /** One audit record for one session: `open` writes it (and fails the session when it cannot), `end` completes it. */
  private auditor(user: string, s: SessionRequest): { open(): Promise<void>; end(outcome: string, status: number): Promise<void> } {
    const rec: SessionAuditRecord = { id: randomUUID(), user, agentId: s.agentId, protocol: s.protocol, relay: this.o.name, startedMs: Date.now(), endedMs: null, outcome: 'open', status: null };
    return {
      open: () => this.o.audit.write(rec),
      end: async (outcome, status) => {
        try {
          await this.o.audit.write({ ...rec, endedMs: Date.now(), outcome, status });
        } catch (err) {
          this.o.metrics.count('session-audit-failed');
          this.o.logError(`session audit ${rec.id} (${user} → ${s.agentId}, ${outcome}) not written: ${(err as Error).message}`);
        }
      },
    };
  }

  private async broker(res: ServerResponse, s: SessionRequest, audit: { open(): Promise<void>; end(outcome: string, status: number): Promise<void> }): Promise<void> {
    const { name, metrics } = this.o;
    // No audit record, no session: one kept neither by the database nor by the spool fails it (503).
    await audit.open();
    const ws: WebSocket | undefined = this.o.tunnelOf(s.agentId);
    if (!ws) {
      await audit.end('tunnel-closed', 502);
      res.setHeader('retry-after', '1');
      return sendJson(res, 502, { error: `agent ${JSON.stringify(s.agentId)}'s tunnel to ${name} closed before the session started; retry once it reconnects` });
    }
    const opened = this.sessions.open(s.agentId, s.protocol, { ...s.args, command: s.command }, s.timeoutMs, (frame) => ws.send(frame));
    if (!(opened instanceof Promise)) {
      metrics.count(`session-refused-${opened.kind}`);
      if (opened.kind === 'agent-busy') {
        await audit.end('agent-busy', 429);
        return sendJson(res, 429, { error: `agent ${JSON.stringify(s.agentId)} already has ${opened.maxPerAgent} sessions pending on ${name}; retry when one ends` });
      }
      await audit.end('relay-full', 503);
      res.setHeader('retry-after', '1');
      return sendJson(res, 503, { error: `${name} has ${opened.maxPending} sessions pending, its limit; retry shortly` });
    }
    metrics.gauge('sessions-pending', this.sessions.size);
    const outcome: SessionOutcome = await opened;
    metrics.gauge('sessions-pending', this.sessions.size);
    metrics.count(`session-${outcome.kind}`);
    switch (outcome.kind) {
      case 'answered':
        await audit.end('answered', 200);
        return sendJson(res, 200, { sessionId: outcome.sessionId, agentId: s.agentId, relay: name, exitCode: outcome.exitCode, output: outcome.output });
      case 'timeout':
        await audit.end('timeout', 504);
        return sendJson(res, 504, { error: `agent ${JSON.stringify(s.agentId)} did not answer session ${outcome.sessionId} within ${outcome.timeoutMs} ms`, sessionId: outcome.sessionId });
      default:
        await audit.end('tunnel-closed', 502);
        res.setHeader('retry-after', '1');
        return sendJson(res, 502, { error: `agent ${JSON.stringify(s.agentId)}'s tunnel to ${name} closed before it answered session ${outcome.sessionId}; retry once it reconnects`, sessionId: outcome.sessionId });
    }
  }
}
