import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { openFileLimit } from '../../core/host.js';
import { AGENT_ROUTES, HEADER_SERVED_BY } from '../../core/protocol.js';
import { authenticateAgent } from '../auth.js';
import type { NodeMetricsApi, Store, TelemetrySample } from '../types.js';
import { PresenceWriter } from './presence-writer.js';
import { PingWheel } from './ping-wheel.js';
import type { SessionBroker } from './sessions.js';
import { TelemetryBatcher, type TelemetryBatchOptions } from './telemetry-batcher.js';

/**
 * The relay's agent side: agents hold WebSocket tunnels to it and send their telemetry up them.
 *
 * Tunnels: `GET /agent/v1/tunnel` upgraded to WebSocket, authenticated from the agent's headers
 * (bearer token + x-agent-id, src/stack/auth.ts) before the upgrade: a bad token is a 401 and no
 * WebSocket. Frames are src/core/protocol.ts's TunnelFrame, JSON text:
 *   agent → relay  {"t":"tel",seq,cpuPct,memPct}   acked {"t":"ack",seq} once its batch committed
 *   relay → agent  {"t":"cmd",id,kind,args}        answered {"t":"res",id,exitCode,output}
 * A malformed frame closes the tunnel (1008). The relay pings every tunnel every 30 s and drops
 * one that has not answered the previous ping, a thirtieth of the tunnels each second rather than
 * all at once (ping-wheel.ts says why); agents' own pings are answered by `ws`. A second
 * tunnel for the same agent replaces the first (closed 4000). Per tunnel the relay keeps the
 * socket and one WeakMap entry (its agent id); listeners are shared, not per-tunnel closures.
 *
 * Telemetry: batched (telemetry-batcher.ts; 500 samples or 250 ms), each frame acked only after
 * its batch is durable: committed by store.telemetry, or, with an analytics node, fsynced into the
 * relay's telemetry spool (telemetry-spool.ts), which forwards it to the analytics node behind the
 * ack, so a slow analytics plane does not slow the agents. Presence (which relay holds an agent) is written on
 * open and cleared on close, coalesced per agent (presence-writer.ts). `res` frames and closed
 * tunnels go to the session broker (sessions.ts), which the operator side (session-api.ts) fills.
 */

const PING_INTERVAL_MS = 30_000;
const PING_SLOTS = 30;
const PRESENCE_WINDOW_MS = 250;
const PRESENCE_CONCURRENCY = 8;
const MAX_FRAME_BYTES = 256 * 1024;
const SHUTDOWN = { telemetryMs: 2000, presenceMs: 1000 } as const;

export interface TunnelServerOptions {
  /** The relay's node name: presence rows and X-Served-By. */
  name: string;
  secret: string;
  store: Store;
  metrics: NodeMetricsApi;
  batch: TelemetryBatchOptions;
  /** Where telemetry goes: the relay's spool for the analytics node (its own plane), or, without one, the store. */
  telemetrySink?: (samples: TelemetrySample[]) => Promise<unknown>;
  sessions: SessionBroker;
  /** The relay's rate-limited error line. */
  logError: (message: string) => void;
}

/** A refused upgrade: a plain HTTP answer on the raw socket, then close. */
function refuseUpgrade(socket: Duplex, status: number, reason: string, message: string): void {
  const body = JSON.stringify({ error: message });
  socket.on('error', () => undefined);
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export class TunnelServer {
  private readonly name: string;
  private readonly secret: string;
  private readonly metrics: NodeMetricsApi;
  private readonly sessions: SessionBroker;
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES, clientTracking: false });
  private readonly tunnels = new Map<string, WebSocket>();
  private readonly agentOf = new WeakMap<WebSocket, string>();
  /** Which tunnels are pinged on each tick, and which have not answered. */
  private readonly pings = new PingWheel<WebSocket>(PING_SLOTS);
  private readonly maxTunnels: number;
  private readonly batcher: TelemetryBatcher<WebSocket>;
  private readonly presence: PresenceWriter;
  private readonly pingTimer: NodeJS.Timeout;
  private closing = false;

  constructor(o: TunnelServerOptions) {
    this.name = o.name;
    this.secret = o.secret;
    this.metrics = o.metrics;
    this.sessions = o.sessions;
    // Leave a tenth of the descriptors (at least 256) for the db pool, operators and siblings.
    const fds = openFileLimit().soft ?? 20_000;
    this.maxTunnels = Math.max(16, Math.min(fds - 256, Math.floor(fds * 0.9)));
    this.batcher = new TelemetryBatcher<WebSocket>(o.batch, {
      write: async (samples) => {
        if (o.telemetrySink) await o.telemetrySink(samples);
        else await o.store.telemetry(samples);
      },
      committed: (ws, seq) => {
        if (ws.readyState === ws.OPEN) ws.send(`{"t":"ack","seq":${seq}}`);
        else this.metrics.count('telemetry-ack-undeliverable');
      },
      failed: (err, n) => o.logError(`telemetry batch of ${n} failed, not acked: ${(err as Error)?.message ?? String(err)}`),
      metrics: this.metrics,
      nowMs: () => performance.now(),
    });
    this.presence = new PresenceWriter(o.store, { relay: this.name, windowMs: PRESENCE_WINDOW_MS, concurrency: PRESENCE_CONCURRENCY }, this.metrics, (err) =>
      o.logError(`presence write failed (retrying): ${(err as Error)?.message ?? String(err)}`),
    );
    // The listeners get the socket as `this`; the server is reached through this alias.
    const server = this;
    this.onMessage = function (data, isBinary) {
      server.frame(this, data, isBinary);
    };
    this.onClose = function () {
      server.tunnelClosed(this);
    };
    this.onPong = function () {
      server.pings.answered(this);
    };
    this.onError = function () {
      server.metrics.count('tunnel-error');
    };
    this.wss.on('headers', (headers: string[]) => headers.push(`${HEADER_SERVED_BY}: ${this.name}`));
    this.pingTimer = setInterval(() => this.pingSlot(), PING_INTERVAL_MS / PING_SLOTS);
    this.pingTimer.unref();
  }

  /** Tunnels open now. */
  get size(): number {
    return this.tunnels.size;
  }

  get telemetryBuffered(): number {
    return this.batcher.buffered;
  }

  get presenceWaiting(): number {
    return this.presence.waiting;
  }

  /** The agent's tunnel, when it is held here and open. */
  openTunnel(agentId: string): WebSocket | undefined {
    const ws = this.tunnels.get(agentId);
    return ws && ws.readyState === ws.OPEN ? ws : undefined;
  }

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
    this.pings.add(ws);
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
      // Refused past the shared or the per-agent bound (counted by the batcher): never acked.
      // The seq (the frame's idempotency key with the agent id) and the agent's send time go along.
      const sample: TelemetrySample = { agentId, relay: this.name, atMs: Date.now(), cpuPct: f.cpuPct, memPct: f.memPct, seq: f.seq as number };
      if (isFiniteNumber(f.sentMs)) sample.sentMs = f.sentMs;
      this.batcher.add(sample, ws, f.seq as number);
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
    this.pings.remove(ws);
    const agentId = this.agentOf.get(ws);
    if (agentId === undefined || this.tunnels.get(agentId) !== ws) return; // replaced: the newer tunnel owns the agent
    this.tunnels.delete(agentId);
    this.metrics.count('tunnel-closed');
    this.metrics.gauge('tunnels-open', this.tunnels.size);
    this.sessions.tunnelClosed(agentId);
    this.presence.set(agentId, null, Date.now());
  }

  /** One tick of the ping wheel: drop its tunnels that missed their last ping, ping the rest. */
  private pingSlot(): void {
    const { ping, timedOut } = this.pings.tick();
    for (const ws of timedOut) {
      this.metrics.count('tunnel-ping-timeout');
      ws.terminate();
    }
    for (const ws of ping) ws.ping();
  }

  /**
   * Commit (and ack, where the tunnel still stands) what is buffered, fail pending sessions, drop
   * the tunnels, and write the presence changes that fit in a second. Bounded: about 3 s in all.
   */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.pingTimer);
    await this.batcher.drain(SHUTDOWN.telemetryMs);
    this.batcher.close();
    this.sessions.closeAll();
    for (const ws of [...this.tunnels.values()]) ws.terminate();
    await this.presence.drain(SHUTDOWN.presenceMs);
    this.wss.close();
  }
}
