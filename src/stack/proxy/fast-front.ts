import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { RawFront, RawFrontRuntime } from '../types.js';
import type { FastExchange } from './fast-forward.js';
import { INCOMPLETE, parseFastRequest, type FastRequest } from './request-head.js';

/**
 * The proxy's fast path: client connections are read here first, on the raw socket, and each
 * request inside the strict subset of request-head.ts (a check-in, a dashboard call) is forwarded
 * without node:http's per-request objects. The first request outside it — malformed, chunked,
 * an Upgrade, an admin path, a body still arriving, the node closing or at its in-flight bound —
 * hands the connection, with every byte not yet served, to the node's http server for good
 * (`runtime.handoff`), which refuses or serves it as it always has. Requests are served one at a
 * time per connection, in order; pipelined bytes wait (at most MAX_PENDING_BYTES, then the socket
 * is paused). Idle connections close after `keepAliveMs`, as node:http's keep-alive timeout does.
 */

/** What the fast path needs from the proxy role. */
export interface FastProxy {
  /** Route, or null to hand the request over (not forwarded, admin, ambiguous path). */
  kindOf(url: string): 'agent' | 'user' | null;
  routeName(kind: 'agent' | 'user'): string;
  /** Forward one request; the reply goes to `reply`. */
  forward(kind: 'agent' | 'user', req: FastRequest, remoteAddress: string | undefined, reply: FastReply): void;
  readonly maxBodyBytes: number;
}

/** How the forwarder answers a fast-path client. */
export interface FastReply {
  /** The client went away: set once, the forwarder stops. */
  onClose: (() => void) | null;
  readonly closed: boolean;
  /** The response head was written. */
  readonly started: boolean;
  /** The forwarder's state for this connection, kept across its requests (fast-forward.ts). */
  exchange: FastExchange | null;
  /** The head of a streamed response: `lines` as UpstreamExchange.onHead hands them on. */
  head(status: number, lines: string, hasLength: boolean, servedBy: string): void;
  /** A piece of a streamed body (copied: it may be a view into a shared read buffer); false: wait for `onDrain`. */
  data(chunk: Buffer): boolean;
  onDrain: (() => void) | null;
  /** The end of a streamed response. */
  end(): void;
  /** A whole response (head and collected body, or none) in one write; `body` is copied. */
  whole(status: number, lines: string, servedBy: string, body: Buffer | null): void;
  /** An error answer of the proxy's own (JSON `{"error": message}`), keep-alive. */
  refuse(status: number, message: string, retryAfter: boolean): void;
  /** Cut the connection (a response that failed after it started). */
  destroy(): void;
}

const MAX_PENDING_BYTES = 256 * 1024;
const SWEEP_MS = 1000;
const KEEP_ALIVE_TAIL = 'connection: keep-alive\r\nkeep-alive: timeout=5\r\n';

const statusLines: string[] = [];
function statusLine(status: number): string {
  return (statusLines[status] ??= `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`);
}

class FrontConnection implements FastReply {
  private pending: Buffer | null = null;
  private busy = false;
  private paused = false;
  idleSweeps = 0;
  onClose: (() => void) | null = null;
  onDrain: (() => void) | null = null;
  exchange: FastExchange | null = null;
  closed = false;
  started = false;
  private chunked = false;
  private status = 0;
  private startNs = 0n;
  private route = '';
  private handedOff = false;
  /** The client half-closed: answer what was complete, then end. */
  private ended = false;

  constructor(
    private readonly front: FastFront,
    readonly socket: Socket,
  ) {
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('drain', this.drained);
    socket.on('error', this.onError);
    socket.on('close', this.onSocketClose);
    socket.on('end', this.onEnd);
  }

  private readonly onEnd = (): void => {
    this.ended = true;
    if (!this.busy) this.next();
  };

  private readonly onData = (chunk: Buffer): void => {
    this.idleSweeps = 0;
    this.pending = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.busy) {
      if (this.pending.length > MAX_PENDING_BYTES && !this.paused) {
        this.paused = true;
        this.socket.pause();
      }
      return;
    }
    this.next();
  };

  private readonly drained = (): void => this.onDrain?.();
  private readonly onError = (): void => void this.socket.destroy();
  private readonly onSocketClose = (): void => {
    this.closed = true;
    this.front.forget(this);
    if (this.busy) {
      const cb = this.onClose;
      this.onClose = null;
      cb?.();
      this.finish();
    }
  };

  get idle(): boolean {
    return !this.busy && !this.handedOff;
  }

  /** Serve what is pending, or hand the connection over. */
  private next(): void {
    const buf = this.pending;
    if (this.busy || this.closed) return;
    const rt = this.front.runtime;
    const parsed = buf === null ? INCOMPLETE : parseFastRequest(buf, this.front.proxy.maxBodyBytes);
    const kind = typeof parsed === 'number' ? null : this.front.proxy.kindOf(parsed.url);
    if (this.ended && (kind === null || buf === null)) {
      // Nothing more will arrive, and node:http cannot take a connection whose end was read.
      this.socket.end();
      return;
    }
    if (buf === null) return;
    if (typeof parsed === 'number' || kind === null || !rt.begin()) return this.handoff();
    this.pending = parsed.length === buf.length ? null : buf.subarray(parsed.length);
    this.busy = true;
    this.started = false;
    this.chunked = false;
    this.status = 0;
    this.startNs = process.hrtime.bigint();
    this.route = this.front.proxy.routeName(kind);
    this.front.proxy.forward(kind, parsed, this.socket.remoteAddress, this);
  }

  private handoff(): void {
    this.handedOff = true;
    this.front.forget(this);
    const s = this.socket;
    s.off('data', this.onData);
    s.off('drain', this.drained);
    s.off('error', this.onError);
    s.off('close', this.onSocketClose);
    s.off('end', this.onEnd);
    const rest = this.pending;
    this.pending = null;
    if (this.paused) s.resume();
    this.front.runtime.handoff(s, rest);
  }

  /** The exchange is over (answered, or the client left): count it, then serve what waits. */
  private finish(): void {
    if (!this.busy) return;
    this.busy = false;
    this.onClose = null;
    this.onDrain = null;
    this.front.runtime.end(this.route, this.status, this.startNs);
    if (this.closed) return;
    if (this.front.runtime.closing) {
      this.socket.end();
      return;
    }
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
    this.idleSweeps = 0;
    if (this.pending !== null || this.ended) this.next();
  }

  /** Keep-alive, or (the node is stopping: this answer is the connection's last) close. */
  private tail(): string {
    return this.front.runtime.closing ? 'connection: close\r\n' : KEEP_ALIVE_TAIL;
  }

  head(status: number, lines: string, hasLength: boolean, servedBy: string): void {
    this.status = status;
    this.started = true;
    // No length: the body is framed in chunks (as node:http would), except where a status has
    // no body at all.
    this.chunked = !hasLength && status !== 204 && status !== 304;
    this.socket.write(`${statusLine(status)}${lines}${this.chunked ? 'transfer-encoding: chunked\r\n' : ''}x-served-by: ${servedBy}\r\n${this.tail()}\r\n`, 'latin1');
  }

  /** Head and collected body in one write. */
  whole(status: number, lines: string, servedBy: string, body: Buffer | null): void {
    this.status = status;
    this.started = true;
    const head = `${statusLine(status)}${lines}x-served-by: ${servedBy}\r\n${this.tail()}\r\n`;
    // Every character of the head is latin1 (upstream.ts decoded it so), one byte each.
    const out = Buffer.allocUnsafe(head.length + (body ? body.length : 0));
    out.write(head, 0, 'latin1');
    if (body) body.copy(out, head.length);
    this.socket.write(out);
    this.finish();
  }

  data(chunk: Buffer): boolean {
    if (!this.chunked) return this.socket.write(Buffer.from(chunk));
    const size = `${chunk.length.toString(16)}\r\n`;
    const out = Buffer.allocUnsafe(size.length + chunk.length + 2);
    out.write(size, 0, 'latin1');
    chunk.copy(out, size.length);
    out.write('\r\n', size.length + chunk.length, 'latin1');
    return this.socket.write(out);
  }

  end(): void {
    if (this.chunked) this.socket.write('0\r\n\r\n', 'latin1');
    this.finish();
  }

  refuse(status: number, message: string, retryAfter: boolean): void {
    const text = JSON.stringify({ error: message });
    this.status = status;
    this.started = true;
    this.socket.write(`${statusLine(status)}content-type: application/json\r\n${retryAfter ? 'retry-after: 1\r\n' : ''}content-length: ${Buffer.byteLength(text)}\r\n${this.tail()}\r\n${text}`);
    this.finish();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export class FastFront implements RawFront {
  private readonly conns = new Set<FrontConnection>();
  private sweeper: NodeJS.Timeout | null = null;
  runtime!: RawFrontRuntime;

  constructor(
    readonly proxy: FastProxy,
    private readonly keepAliveMs = 5000,
  ) {}

  /** Serve a new client connection (the runtime has admitted it). */
  accept(socket: Socket, runtime: RawFrontRuntime): void {
    this.runtime = runtime;
    this.conns.add(new FrontConnection(this, socket));
    if (this.sweeper === null) {
      this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
      this.sweeper.unref();
    }
  }

  /** @internal the connection closed or went to node:http. */
  forget(c: FrontConnection): void {
    this.conns.delete(c);
  }

  /** Close connections idle for keepAliveMs (counted in sweeps, so no timer per request). */
  private sweep(): void {
    const limit = Math.max(1, Math.round(this.keepAliveMs / SWEEP_MS));
    for (const c of this.conns) {
      if (!c.idle) continue;
      if (++c.idleSweeps > limit) c.socket.destroy();
    }
  }

  /** Close the connections with nothing in flight (the node is stopping). */
  closeIdle(): void {
    for (const c of this.conns) if (c.idle) c.socket.end();
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const c of this.conns) c.socket.destroy();
    this.conns.clear();
  }
}
