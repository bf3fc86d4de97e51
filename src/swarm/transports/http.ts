import { Client, Pool, type Dispatcher } from 'undici';
import type { AgentIdentity } from '../../core/identity.js';
import { AGENT_ROUTES, HEADER_AGENT_ID, type MessageKind, type PendingCommand } from '../../core/protocol.js';
import type { ConnectionPolicy } from '../config.js';
import type { SwarmRecorder } from '../recorder.js';
import { RawPool, type RawExchange } from './raw-pool.js';
import { agentPoolOptions } from './undici-options.js';

/**
 * Agent HTTP(S) traffic through undici, with three connection policies:
 * - `per-checkin` (default): a fresh TCP (and TLS) connection for every request, closed after the
 *   response, as polling agents behind NAT do. Pools exist only to cap concurrency per address.
 * - `keepalive`: one connection per agent, reused while the server keeps it open.
 * - `pool`: a few shared keep-alive connections per worker, for maximum-throughput tests. This
 *   one runs on RawPool (see raw-pool.ts for why), the others on undici.
 *
 * Sockets are spread over loopback source addresses (127.0.0.2, …) so that one destination can
 * take more than the ~28k sockets one source address allows.
 */

export interface HttpTransportOptions {
  baseUrl: string;
  connection: ConnectionPolicy;
  poolConnections: number;
  localAddresses: string[];
  timeoutMs: number;
  tls: { ca?: Buffer; insecure: boolean };
  /** Requests in flight at once in this worker; beyond it a due send is dropped, never queued. */
  maxInflight: number;
  recorder: SwarmRecorder;
  now: () => number;
  /** A keyed agent write (send's `n` > 0) ended: acknowledged (ok) or not, and when to retry it. */
  onWrite?: WriteSettled;
}

/** A keyed write as it went out: enough to record its acknowledgement or to send it again. */
export interface WriteSend {
  slot: number;
  agent: AgentIdentity;
  kind: MessageKind;
  body: string;
  /** The agent's write number in this swarm (its key is seqBase + n). */
  n: number;
}

/** `retryAfterMs`: the server's retry-after (a 503), null when it sent none or nothing came back. */
export type WriteSettled = (w: WriteSend, ok: boolean, status: number, retryAfterMs: number | null) => void;

const PATHS: Record<MessageKind, string> = {
  checkin: AGENT_ROUTES.checkin,
  heartbeat: AGENT_ROUTES.heartbeat,
  inventory: AGENT_ROUTES.inventory,
  'command-result': AGENT_ROUTES.commandResults,
};

export type CommandsCallback = (commands: PendingCommand[], doneMs: number) => void;

export class HttpTransport {
  private readonly opts: HttpTransportOptions;
  private readonly origin: string;
  private readonly pathPrefix: string;
  private readonly pools: Pool[] = [];
  private readonly clients = new Map<number, Client>();
  private readonly raw: RawPool | null = null;
  private readonly host: string;
  private closed = false;
  inflight = 0;

  constructor(opts: HttpTransportOptions) {
    this.opts = opts;
    const url = new URL(opts.baseUrl);
    this.origin = url.origin;
    this.pathPrefix = url.pathname.replace(/\/$/, '');
    this.host = url.host;
    const addrs = opts.localAddresses.length > 0 ? opts.localAddresses : [undefined];
    if (opts.connection === 'pool') {
      this.raw = new RawPool({ origin: url, connections: opts.poolConnections, localAddresses: opts.localAddresses, timeoutMs: opts.timeoutMs, tls: opts.tls });
    } else if (opts.connection === 'per-checkin') {
      const perAddr = Math.max(1, Math.ceil(opts.maxInflight / addrs.length));
      for (const localAddress of addrs) this.pools.push(new Pool(this.origin, this.clientOptions(localAddress, perAddr)));
    }
  }

  private clientOptions(localAddress: string | undefined, connections: number): Pool.Options {
    return agentPoolOptions({ localAddress, connections, timeoutMs: this.opts.timeoutMs, tls: this.opts.tls });
  }

  /** Pool mode: connect ahead of t = 0. */
  warm(): void {
    this.raw?.warm();
  }

  private dispatcherFor(slot: number): Dispatcher {
    if (this.opts.connection !== 'keepalive') return this.pools[slot % this.pools.length];
    let c = this.clients.get(slot);
    if (!c) {
      const addrs = this.opts.localAddresses;
      const { connections: _c, ...clientOpts } = this.clientOptions(addrs.length > 0 ? addrs[slot % addrs.length] : undefined, 1);
      c = new Client(this.origin, clientOpts);
      this.clients.set(slot, c);
    }
    return c;
  }

  /**
   * Send one agent message now. `intendedMs` is when it should have gone out: latency is measured
   * from there. The caller has already counted the send as scheduled. `onDone` fires once the
   * request has finished either way (the closed-loop mode chains the next send from it).
   */
  send(
    slot: number,
    agent: AgentIdentity,
    kind: MessageKind,
    body: string,
    intendedMs: number,
    onCommands?: CommandsCallback,
    onDone?: () => void,
    n = 0,
  ): void {
    const rec = this.opts.recorder;
    if (this.closed) return;
    if (this.inflight >= this.opts.maxInflight) {
      rec.drop('inflight-cap');
      return;
    }
    const write: WriteSend | null = n > 0 && this.opts.onWrite ? { slot, agent, kind, body, n } : null;
    if (this.raw) {
      this.sendRaw(agent, kind, body, intendedMs, onCommands ?? null, onDone ?? null, write);
      return;
    }
    const sentMs = this.opts.now();
    rec.sent(sentMs - intendedMs);
    this.inflight++;
    const handler = new SendHandler(this, kind, intendedMs, sentMs, onCommands ?? null, onDone ?? null, write);
    this.dispatcherFor(slot).dispatch(
      {
        method: 'POST',
        path: this.pathPrefix + PATHS[kind],
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${agent.token}`,
          [HEADER_AGENT_ID]: agent.id,
        },
        body,
        reset: this.opts.connection === 'per-checkin',
      },
      handler,
    );
  }

  private sendRaw(agent: AgentIdentity, kind: MessageKind, body: string, intendedMs: number, onCommands: CommandsCallback | null, onDone: (() => void) | null, write: WriteSend | null): void {
    const raw = this.raw!;
    if (raw.available === 0) {
      this.opts.recorder.drop('inflight-cap');
      return;
    }
    const sentMs = this.opts.now();
    this.opts.recorder.sent(sentMs - intendedMs);
    this.inflight++;
    const request =
      `POST ${this.pathPrefix}${PATHS[kind]} HTTP/1.1\r\nhost: ${this.host}\r\ncontent-type: application/json\r\n` +
      `authorization: Bearer ${agent.token}\r\n${HEADER_AGENT_ID}: ${agent.id}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    raw.send(request, new RawSend(this, kind, intendedMs, sentMs, onCommands, onDone, write));
  }

  /** Called by a send's handler when the request ends (status known, 0 when none) or fails. */
  finish(h: SendContext, ok: boolean, errorCode: string | undefined, commands: PendingCommand[] | null, status = 0, retryAfterMs: number | null = null): void {
    const doneMs = this.opts.now();
    this.inflight--;
    this.opts.recorder.done(h.kind, h.intendedMs, h.sentMs, doneMs, ok, errorCode);
    if (h.write) this.opts.onWrite?.(h.write, ok, status, retryAfterMs);
    if (commands && commands.length > 0 && h.onCommands) h.onCommands(commands, doneMs);
    h.onDone?.();
  }

  async close(): Promise<void> {
    this.closed = true;
    const all: Dispatcher[] = [...this.pools, ...this.clients.values()];
    this.raw?.close();
    await Promise.all(all.map((d) => d.destroy().catch(() => undefined)));
  }
}

/** One send's context, whichever transport carries it. */
abstract class SendContext {
  constructor(
    protected readonly transport: HttpTransport,
    readonly kind: MessageKind,
    readonly intendedMs: number,
    readonly sentMs: number,
    readonly onCommands: CommandsCallback | null,
    readonly onDone: (() => void) | null,
    readonly write: WriteSend | null,
  ) {}
}

/** A retry-after header in seconds (the delta form), as ms; null when absent or not a number. */
export function retryAfterMs(v: string | string[] | undefined): number | null {
  const text = Array.isArray(v) ? v[0] : v;
  if (text === undefined || !/^\d{1,6}$/.test(text.trim())) return null;
  return Number(text.trim()) * 1000;
}

class RawSend extends SendContext implements RawExchange {
  get wantBody(): boolean {
    return this.onCommands !== null;
  }

  done(status: number, body: Buffer | null, errorCode: string | null): void {
    if (errorCode) return this.transport.finish(this, false, errorCode, null);
    const ok = status >= 200 && status < 300;
    this.transport.finish(this, ok, ok ? undefined : `http-${status}`, ok && body ? parseCommands(body.toString('utf8')) : null, status);
  }
}

/**
 * A request's life as undici's dispatch handler: cheaper than request() (no promise chain, no body
 * stream), and the body is kept only for check-ins, whose response carries commands.
 */
class SendHandler extends SendContext implements Dispatcher.DispatchHandler {
  private status = 0;
  private retryAfterMs: number | null = null;
  private chunks: Buffer[] | null = null;
  private settled = false;

  // undici adapts handlers of this (v7) shape only when onRequestStart exists.
  onRequestStart(): void {}

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    this.status = statusCode;
    if (statusCode === 503 && this.write) this.retryAfterMs = retryAfterMs(headers['retry-after']);
    if (statusCode === 200 && this.onCommands) this.chunks = [];
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.chunks?.push(chunk);
  }

  onResponseEnd(): void {
    if (this.settled) return;
    this.settled = true;
    const ok = this.status >= 200 && this.status < 300;
    const commands = this.chunks ? parseCommands(Buffer.concat(this.chunks).toString('utf8')) : null;
    this.transport.finish(this, ok, ok ? undefined : `http-${this.status}`, commands, this.status, this.retryAfterMs);
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (this.settled) return;
    this.settled = true;
    const code = (err as NodeJS.ErrnoException).code ?? err.name ?? 'error';
    this.transport.finish(this, false, code, null);
  }
}

function parseCommands(text: string): PendingCommand[] {
  try {
    const doc = JSON.parse(text) as { commands?: unknown };
    return Array.isArray(doc.commands) ? (doc.commands as PendingCommand[]) : [];
  } catch {
    return [];
  }
}
