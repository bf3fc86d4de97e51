import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Agent, request } from 'undici';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { StackError } from '../../core/errors.js';
import { openFileLimit } from '../../core/host.js';
import { isLoopbackHost } from '../../core/loopback.js';
import { AGENT_ROUTES, HEADER_SERVED_BY, USER_ROUTES, type TunnelFrame } from '../../core/protocol.js';
import { authenticateAgent, authenticateUser } from '../auth.js';
import { readJson, sendJson } from '../http-body.js';
import { refuse, refuseError } from '../http-errors.js';
import { PresenceWriter } from '../relay/presence-writer.js';
import { SessionBroker, type SessionOutcome } from '../relay/sessions.js';
import { DEFAULT_TELEMETRY_BATCH, TelemetryBatcher, type TelemetryBatchOptions } from '../relay/telemetry-batcher.js';
import type { NodeMetricsApi, RoleContext, RoleFactory, RoleHandler, Store } from '../types.js';

/**
 * The relay role (relay topology): agents hold WebSocket tunnels to it, it batches their
 * telemetry into the database, and it brokers operator sessions down those tunnels.
 *
 * Tunnels: `GET /agent/v1/tunnel` upgraded to WebSocket, authenticated from the agent's headers
 * (bearer token + x-agent-id, src/stack/auth.ts) before the upgrade: a bad token is a 401 and no
 * WebSocket. Frames are src/core/protocol.ts's TunnelFrame, JSON text:
 *   agent → relay  {"t":"tel",seq,cpuPct,memPct}   acked {"t":"ack",seq} once its batch committed
 *   relay → agent  {"t":"cmd",id,kind,args}        answered {"t":"res",id,exitCode,output}
 * A malformed frame closes the tunnel (1008). The relay pings every tunnel every 30 s and drops
 * one that has not answered the previous ping; agents' own pings are answered by `ws`. A second
 * tunnel for the same agent replaces the first (closed 4000). Per tunnel the relay keeps the
 * socket and one WeakMap entry (its agent id); listeners are shared, not per-tunnel closures.
 *
 * Telemetry: batched (src/stack/relay/telemetry-batcher.ts; 500 samples or 250 ms) into
 * store.telemetry, each frame acked only after its batch committed. Presence (which relay holds
 * an agent) is written on open and cleared on close, coalesced per agent (presence-writer.ts).
 *
 * Operator sessions: `POST /api/v1/sessions` with a user token and
 * {agentId, protocol, command, args?, timeoutMs?} → 200 {sessionId, agentId, relay, exitCode,
 * output}. The relay holding the agent's tunnel sends {"t":"cmd", kind: protocol, args:
 * {...args, command}} and answers with the agent's `res`. Not here: the relay reads the agent's
 * presence and forwards the request once to the sibling that holds it (x-rmmscale-relay-hop
 * stops a second hop); nobody holds it: 404 naming the agent. Errors: 401 bad user token, 400
 * bad body, 429 the agent has 4 sessions pending, 502 the tunnel closed before the answer or the
 * sibling is unreachable, 503 the relay has 1,000 sessions pending or the db is unavailable,
 * 504 no answer within timeoutMs (default 10 s, at most 60 s). Pending sessions live only in
 * this process's memory: a relay that restarts loses those and nothing else.
 *
 * Test and bench hook: RMMSCALE_RELAY_BATCH="SAMPLES:DELAY_MS[:IN_FLIGHT]" overrides the batch
 * policy ("1:0:32" is the unbatched peer in bench/relay.ts).
 */

export const RELAY_BATCH_ENV = 'RMMSCALE_RELAY_BATCH';
export const HEADER_RELAY_HOP = 'x-rmmscale-relay-hop';

const PING_INTERVAL_MS = 30_000;
const PRESENCE_WINDOW_MS = 250;
const PRESENCE_CONCURRENCY = 8;
const MAX_FRAME_BYTES = 256 * 1024;
const MAX_SESSION_BODY_BYTES = 64 * 1024;
const MAX_PENDING_SESSIONS = 1000;
const MAX_SESSIONS_PER_AGENT = 4;
const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
const MAX_SESSION_TIMEOUT_MS = 60_000;
/** Time a forward gets on top of the session's own timeout. */
const FORWARD_SLACK_MS = 2000;
const SIBLING_PROBE_MS = 1000;
const SHUTDOWN = { telemetryMs: 2000, presenceMs: 1000 } as const;

/** Parse RMMSCALE_RELAY_BATCH; a bad value is a one-line StackError naming the variable. */
export function batchPolicyFrom(raw: string | undefined): TelemetryBatchOptions {
  if (raw === undefined || raw === '') return DEFAULT_TELEMETRY_BATCH;
  const m = /^(\d+):(\d+)(?::(\d+))?$/.exec(raw.trim());
  const samples = m ? Number(m[1]) : NaN;
  const inFlight = m?.[3] !== undefined ? Number(m[3]) : DEFAULT_TELEMETRY_BATCH.maxInFlight;
  if (!m || samples < 1 || samples > 10_000 || Number(m[2]) > 60_000 || inFlight < 1 || inFlight > 256) {
    throw new StackError(`${RELAY_BATCH_ENV}: expected SAMPLES:DELAY_MS[:IN_FLIGHT] with 1-10000 samples, 0-60000 ms, 1-256 in flight, got ${JSON.stringify(raw)}`);
  }
  return { ...DEFAULT_TELEMETRY_BATCH, maxSamples: samples, maxDelayMs: Number(m[2]), maxInFlight: inFlight };
}

/** Sibling relay URLs: http(s) on loopback only. */
function checkSiblings(node: string, siblings: readonly string[]): string[] {
  return siblings.map((s, i) => {
    let u: URL | null = null;
    try {
      u = new URL(s);
    } catch {
      // reported below
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || !isLoopbackHost(u.hostname)) {
      throw new StackError(`${node}: relay.siblings[${i}]: expected an http(s) URL on loopback, got ${JSON.stringify(s)}`);
    }
    return u.origin;
  });
}

interface SessionRequest {
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

/** A refused upgrade: a plain HTTP answer on the raw socket, then close. */
function refuseUpgrade(socket: Duplex, status: number, reason: string, message: string): void {
  const body = JSON.stringify({ error: message });
  socket.on('error', () => undefined);
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

export class RelayHandler implements RoleHandler {
  private readonly name: string;
  private readonly secret: string;
  private readonly store: Store;
  private readonly metrics: NodeMetricsApi;
  private readonly log: (m: string) => void;
  private siblings: string[];
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES, clientTracking: false });
  private readonly tunnels = new Map<string, WebSocket>();
  private readonly agentOf = new WeakMap<WebSocket, string>();
  /** Tunnels pinged and not yet answered. */
  private readonly unanswered = new Set<WebSocket>();
  private readonly maxTunnels: number;
  private readonly batcher: TelemetryBatcher<WebSocket>;
  private readonly presence: PresenceWriter;
  private readonly sessions = new SessionBroker(MAX_PENDING_SESSIONS, MAX_SESSIONS_PER_AGENT);
  private readonly siblingByName = new Map<string, string>();
  private siblingProbeAtMs = 0;
  private dispatcher: Agent | null = null;
  private readonly pingTimer: NodeJS.Timeout;
  private readonly gaugeTimer: NodeJS.Timeout;
  private closing = false;
  private shutDown = false;
  private lastErrorLogMs = 0;

  constructor(ctx: RoleContext, batch: TelemetryBatchOptions) {
    if (!ctx.store) throw new StackError(`${ctx.spec.name}: the relay role needs a store (spec.db)`);
    this.name = ctx.spec.name;
    this.secret = ctx.spec.secret;
    this.store = ctx.store;
    this.metrics = ctx.metrics;
    this.log = ctx.log;
    this.siblings = checkSiblings(ctx.spec.name, ctx.spec.relay?.siblings ?? []);
    // Leave a tenth of the descriptors (at least 256) for the db pool, operators and siblings.
    const fds = openFileLimit().soft ?? 20_000;
    this.maxTunnels = Math.max(16, Math.min(fds - 256, Math.floor(fds * 0.9)));
    this.batcher = new TelemetryBatcher<WebSocket>(batch, {
      write: (samples) => this.store.telemetry(samples),
      committed: (ws, seq) => {
        if (ws.readyState === ws.OPEN) ws.send(`{"t":"ack","seq":${seq}}`);
        else this.metrics.count('telemetry-ack-undeliverable');
      },
      failed: (err, n) => this.logError(`telemetry batch of ${n} failed, not acked: ${(err as Error)?.message ?? String(err)}`),
      metrics: this.metrics,
      nowMs: () => performance.now(),
    });
    this.presence = new PresenceWriter(this.store, { relay: this.name, windowMs: PRESENCE_WINDOW_MS, concurrency: PRESENCE_CONCURRENCY }, this.metrics, (err) =>
      this.logError(`presence write failed (retrying): ${(err as Error)?.message ?? String(err)}`),
    );
    // The listeners get the socket as `this`; the relay is reached through this alias.
    const relay = this;
    this.onMessage = function (data, isBinary) {
      relay.frame(this, data, isBinary);
    };
    this.onClose = function () {
      relay.tunnelClosed(this);
    };
    this.onPong = function () {
      relay.unanswered.delete(this);
    };
    this.onError = function () {
      relay.metrics.count('tunnel-error');
    };
    this.wss.on('headers', (headers: string[]) => headers.push(`${HEADER_SERVED_BY}: ${this.name}`));
    this.pingTimer = setInterval(() => this.sweep(), PING_INTERVAL_MS);
    this.pingTimer.unref();
    this.gaugeTimer = setInterval(() => this.gauges(), 1000);
    this.gaugeTimer.unref();
    this.gauges();
  }

  /** At most one error line a second, so a database outage cannot flood stderr. */
  private logError(message: string): void {
    if (this.shutDown) return; // work cut off by the shutdown deadline fails against a closed store
    const now = Date.now();
    if (now - this.lastErrorLogMs < 1000) return;
    this.lastErrorLogMs = now;
    this.log(message);
  }

  private gauges(): void {
    this.metrics.gauge('tunnels-open', this.tunnels.size);
    this.metrics.gauge('sessions-pending', this.sessions.size);
    this.metrics.gauge('telemetry-buffered', this.batcher.buffered);
    this.metrics.gauge('presence-waiting', this.presence.waiting);
  }

  /* ---------------------------------------------------------------- tunnels (agent side) */

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== AGENT_ROUTES.tunnel) return refuseUpgrade(socket, 404, 'Not Found', `not found: tunnels are at ${AGENT_ROUTES.tunnel}`);
    if (this.closing) return refuseUpgrade(socket, 503, 'Service Unavailable', `${this.name} is shutting down`);
    const agentId = authenticateAgent(req, this.secret);
    if (!agentId) {
      this.metrics.count('tunnel-refused-auth');
      return refuseUpgrade(socket, 401, 'Unauthorized', 'agent token and x-agent-id required, and they must match');
    }
    if (this.tunnels.size >= this.maxTunnels && !this.tunnels.has(agentId)) {
      this.metrics.count('tunnel-refused-full');
      return refuseUpgrade(socket, 503, 'Service Unavailable', `${this.name} holds ${this.tunnels.size} tunnels, its limit (open files); try a sibling relay`);
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.opened(ws, agentId));
  }

  private opened(ws: WebSocket, agentId: string): void {
    if (this.closing) {
      ws.terminate();
      return;
    }
    this.agentOf.set(ws, agentId);
    const previous = this.tunnels.get(agentId);
    this.tunnels.set(agentId, ws);
    ws.on('message', this.onMessage);
    ws.on('close', this.onClose);
    ws.on('pong', this.onPong);
    ws.on('error', this.onError);
    if (previous) {
      this.metrics.count('tunnel-replaced');
      previous.close(4000, 'replaced by a newer tunnel for this agent');
    }
    this.metrics.count('tunnel-opened');
    this.metrics.gauge('tunnels-open', this.tunnels.size);
    this.presence.set(agentId, this.name, Date.now());
  }

  // Shared by every tunnel (the emitter passes the socket as `this`): no closures per tunnel.
  private readonly onMessage: (this: WebSocket, data: RawData, isBinary: boolean) => void;
  private readonly onClose: (this: WebSocket) => void;
  private readonly onPong: (this: WebSocket) => void;
  private readonly onError: (this: WebSocket) => void;

  private frame(ws: WebSocket, data: RawData, isBinary: boolean): void {
    const agentId = this.agentOf.get(ws);
    if (agentId === undefined) return;
    let f: Partial<Record<string, unknown>> | null = null;
    if (!isBinary) {
      try {
        f = JSON.parse(data.toString()) as Record<string, unknown>;
      } catch {
        f = null;
      }
    }
    if (f?.t === 'tel' && Number.isInteger(f.seq) && isFiniteNumber(f.cpuPct) && isFiniteNumber(f.memPct)) {
      const ok = this.batcher.add({ agentId, relay: this.name, atMs: Date.now(), cpuPct: f.cpuPct, memPct: f.memPct }, ws, f.seq as number);
      if (!ok) this.metrics.count('telemetry-dropped-backlog');
      return;
    }
    if (f?.t === 'res' && typeof f.id === 'string' && isFiniteNumber(f.exitCode) && typeof f.output === 'string') {
      if (!this.sessions.result(agentId, { id: f.id, exitCode: f.exitCode, output: f.output })) this.metrics.count('session-result-unmatched');
      return;
    }
    this.metrics.count('tunnel-bad-frame');
    ws.close(1008, 'bad frame: expected {"t":"tel",seq,cpuPct,memPct} or {"t":"res",id,exitCode,output}');
  }

  private tunnelClosed(ws: WebSocket): void {
    this.unanswered.delete(ws);
    const agentId = this.agentOf.get(ws);
    if (agentId === undefined || this.tunnels.get(agentId) !== ws) return; // replaced: the newer tunnel owns the agent
    this.tunnels.delete(agentId);
    this.metrics.count('tunnel-closed');
    this.metrics.gauge('tunnels-open', this.tunnels.size);
    this.sessions.tunnelClosed(agentId);
    this.presence.set(agentId, null, Date.now());
  }

  /** Drop tunnels that missed the last ping, ping the rest. One pass over the tunnels per interval. */
  private sweep(): void {
    for (const ws of this.unanswered) {
      this.metrics.count('tunnel-ping-timeout');
      ws.terminate();
    }
    this.unanswered.clear();
    for (const ws of this.tunnels.values()) {
      this.unanswered.add(ws);
      ws.ping();
    }
  }

  /* ---------------------------------------------------------------- sessions (user side) */

  routeOf(method: string, path: string): string {
    return path === USER_ROUTES.sessions ? (method === 'POST' ? 'session' : 'session-bad-method') : 'not-found';
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader(HEADER_SERVED_BY, this.name);
    const path = (req.url ?? '/').split('?')[0];
    if (path !== USER_ROUTES.sessions) return refuse(req, res, 404, `not found: a relay serves ${USER_ROUTES.sessions} (operators) and ${AGENT_ROUTES.tunnel} (agents)`);
    if (req.method !== 'POST') return refuse(req, res, 405, 'POST only', { allow: 'POST' });
    const user = authenticateUser(req, this.secret);
    if (!user) return refuse(req, res, 401, 'user token required');
    try {
      const parsed = parseSessionRequest(await readJson(req, MAX_SESSION_BODY_BYTES));
      if (typeof parsed === 'string') return refuse(req, res, 400, parsed);
      const ws = this.tunnels.get(parsed.agentId);
      if (ws && ws.readyState === ws.OPEN) return await this.broker(res, ws, parsed);
      const hop = req.headers[HEADER_RELAY_HOP];
      if (typeof hop === 'string') return refuse(req, res, 404, `agent ${JSON.stringify(parsed.agentId)} has no tunnel on ${this.name} (forwarded by ${hop})`);
      return await this.forward(req, res, parsed);
    } catch (err) {
      refuseError(req, res, err);
    }
  }

  private async broker(res: ServerResponse, ws: WebSocket, s: SessionRequest): Promise<void> {
    const opened = this.sessions.open(s.agentId, s.protocol, { ...s.args, command: s.command }, s.timeoutMs, (frame) => ws.send(frame));
    if (!(opened instanceof Promise)) {
      this.metrics.count(`session-refused-${opened.kind}`);
      if (opened.kind === 'agent-busy') return sendJson(res, 429, { error: `agent ${JSON.stringify(s.agentId)} already has ${opened.maxPerAgent} sessions pending on ${this.name}; retry when one ends` });
      res.setHeader('retry-after', '1');
      return sendJson(res, 503, { error: `${this.name} has ${opened.maxPending} sessions pending, its limit; retry shortly` });
    }
    this.metrics.gauge('sessions-pending', this.sessions.size);
    const outcome: SessionOutcome = await opened;
    this.metrics.gauge('sessions-pending', this.sessions.size);
    this.metrics.count(`session-${outcome.kind}`);
    switch (outcome.kind) {
      case 'answered':
        return sendJson(res, 200, { sessionId: outcome.sessionId, agentId: s.agentId, relay: this.name, exitCode: outcome.exitCode, output: outcome.output });
      case 'timeout':
        return sendJson(res, 504, { error: `agent ${JSON.stringify(s.agentId)} did not answer session ${outcome.sessionId} within ${outcome.timeoutMs} ms`, sessionId: outcome.sessionId });
      default:
        return sendJson(res, 502, { error: `agent ${JSON.stringify(s.agentId)}'s tunnel to ${this.name} closed before it answered session ${outcome.sessionId}; retry once it reconnects`, sessionId: outcome.sessionId });
    }
  }

  /** Not here: ask the database which relay holds the agent and hand the request to it, once. */
  private async forward(req: IncomingMessage, res: ServerResponse, s: SessionRequest): Promise<void> {
    const holder = await this.store.getPresence(s.agentId);
    if (holder === null || holder === this.name) {
      return refuse(req, res, 404, `agent ${JSON.stringify(s.agentId)} is not connected: no relay holds its tunnel (asked ${this.name})`);
    }
    const url = await this.siblingUrl(holder);
    if (!url) return refuse(req, res, 404, `agent ${JSON.stringify(s.agentId)} is held by ${holder}, which is not a sibling of ${this.name}`);
    this.metrics.count('session-forwarded');
    this.dispatcher ??= new Agent({ connections: 16, keepAliveTimeout: 10_000, connect: { rejectUnauthorized: false } });
    const budgetMs = s.timeoutMs + FORWARD_SLACK_MS;
    try {
      const r = await request(`${url}${USER_ROUTES.sessions}`, {
        method: 'POST',
        dispatcher: this.dispatcher,
        headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '', [HEADER_RELAY_HOP]: this.name },
        body: JSON.stringify({ agentId: s.agentId, protocol: s.protocol, command: s.command, args: s.args, timeoutMs: s.timeoutMs }),
        headersTimeout: budgetMs,
        bodyTimeout: budgetMs,
      });
      const text = await r.body.text();
      res.writeHead(r.statusCode, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
    } catch (err) {
      const why = (err as { code?: string }).code ?? (err as Error).message;
      return refuse(req, res, 502, `agent ${JSON.stringify(s.agentId)} is held by ${holder} (${url}), which is unreachable (${why}); its agents fail over to a sibling, retry shortly`);
    }
  }

  setSiblings(urls: string[]): void {
    this.siblings = checkSiblings(this.name, urls);
    this.siblingByName.clear();
    this.siblingProbeAtMs = 0;
  }

  /** A sibling's URL by node name, learned from the siblings' /healthz (re-asked at most once a second). */
  private async siblingUrl(name: string): Promise<string | null> {
    const known = this.siblingByName.get(name);
    if (known || this.siblings.length === 0) return known ?? null;
    const now = Date.now();
    if (now - this.siblingProbeAtMs < 1000) return null;
    this.siblingProbeAtMs = now;
    this.dispatcher ??= new Agent({ connections: 16, keepAliveTimeout: 10_000, connect: { rejectUnauthorized: false } });
    await Promise.all(
      this.siblings.map(async (url) => {
        try {
          const r = await request(`${url}/healthz`, { dispatcher: this.dispatcher!, headersTimeout: SIBLING_PROBE_MS, bodyTimeout: SIBLING_PROBE_MS });
          const h = (await r.body.json()) as { node?: unknown };
          if (typeof h.node === 'string') this.siblingByName.set(h.node, url);
        } catch {
          // down now; asked again on a later miss
        }
      }),
    );
    return this.siblingByName.get(name) ?? null;
  }

  /* ---------------------------------------------------------------- shutdown */

  /**
   * Commit (and ack, where the tunnel still stands) what is buffered, fail pending sessions, drop
   * the tunnels, and write the presence changes that fit in a second. Bounded: about 3 s in all.
   */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.pingTimer);
    clearInterval(this.gaugeTimer);
    await this.batcher.drain(SHUTDOWN.telemetryMs);
    this.batcher.close();
    this.sessions.closeAll();
    for (const ws of [...this.tunnels.values()]) ws.terminate();
    await this.presence.drain(SHUTDOWN.presenceMs);
    this.wss.close();
    await this.dispatcher?.close().catch(() => undefined);
    this.shutDown = true;
  }
}

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export const createRole: RoleFactory = async (ctx) => new RelayHandler(ctx, batchPolicyFrom(process.env[RELAY_BATCH_ENV]));
