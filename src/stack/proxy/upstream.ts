import { connect, type Socket } from 'node:net';
import type { OutgoingHttpHeaders } from 'node:http';

/**
 * The proxy's lean HTTP/1.1 client for requests whose body is already in memory (none, or up to
 * BUFFER_BODY_BYTES): the common case, a check-in. Why not undici here: a CPU profile of the
 * proxy under the proxy benchmark put undici's per-request machinery (dispatcher, header
 * validation, two writes per request, its async body plumbing) at the top; this client writes
 * each request as one buffer and parses responses itself, strictly.
 *
 * Response framing it accepts (anything else fails the exchange as HPE_*, answered 502, and the
 * connection is dropped, never reused):
 * - a status line `HTTP/1.x NNN …`; header lines `name: value` with a token name, no obs-fold,
 *   no bare CR, at most MAX_HEAD_BYTES in all;
 * - Content-Length (one value, or repeats of the same value) or `Transfer-Encoding: chunked`,
 *   never both; neither: the body runs to the connection's end (then it is not reused);
 * - 1xx answers other than 101 are skipped; 101 to a plain request fails.
 *
 * One request at a time per connection (no pipelining); at most `connections` per backend; more
 * wait in a FIFO whose length the caller bounds (the proxy's per-backend outstanding cap).
 */

export const MAX_HEAD_BYTES = 16 * 1024;
/** Responses up to this size (declared) are collected and written to the client in one go. */
export const BUFFER_RESPONSE_BYTES = 64 * 1024;

const CRLFCRLF = Buffer.from('\r\n\r\n');
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\r\n\0]/;

/** What the forwarder hears back about one exchange. */
export interface UpstreamExchange {
  /** The request is on the wire (written to a connected socket): it must not be repeated. */
  sent: boolean;
  /** The connection carrying it, once one does (for pause/resume/abort). */
  conn: UpstreamConnection | null;
  /** Status ≥ 200 and the end-to-end headers (hop-by-hop ones already dropped), once. */
  onHead(status: number, headers: OutgoingHttpHeaders): void;
  /** A piece of the body; return false to pause the upstream until resume() is called. */
  onData(chunk: Buffer): boolean;
  /** The whole body in one piece, when it was collected (declared ≤ BUFFER_RESPONSE_BYTES). */
  onEnd(body: Buffer | null): void;
  /** `code`: connect/timeout/framing/socket error; `sent` tells whether the request left. */
  onError(code: string): void;
}

export interface UpstreamOptions {
  host: string;
  port: number;
  connections: number;
  connectMs: number;
  /** Waiting for the response head, and between body pieces. */
  headersMs: number;
  /** Idle keep-alive connections older than this are not reused (the backend closes at 5 s). */
  keepAliveMs: number;
}

const enum Phase {
  Idle,
  Head,
  Body,
  ToEnd,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailer,
}

/** Hop-by-hop response headers (RFC 9110 §7.6.1), dropped on the way to the client. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * A response header name, validated (an RFC 9110 token) and lower-cased. Backends repeat the same
 * few names, so the answers are cached, up to NAME_CACHE_MAX names.
 */
const nameCache = new Map<string, string>();
const NAME_CACHE_MAX = 512;
function headerName(raw: string): string {
  const known = nameCache.get(raw);
  if (known !== undefined) return known;
  if (!TOKEN.test(raw)) throw new FramingError('HPE_INVALID_HEADER_TOKEN');
  const lower = raw.toLowerCase();
  if (nameCache.size < NAME_CACHE_MAX) nameCache.set(raw, lower);
  return lower;
}

class FramingError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

class UpstreamConnection {
  socket: Socket | null = null;
  private connected = false;
  private pending: Buffer | null = null;
  ex: UpstreamExchange | null = null;
  private phase = Phase.Idle;
  private headBuf: Buffer | null = null;
  private remaining = 0;
  private reusable = true;
  private collect: Buffer[] | null = null;
  private collected = 0;
  private lineBuf = '';
  private noBody = false;
  lastUsedMs = 0;
  private dead = false;
  /** The exchange completed during the current read; the connection goes back after it. */
  private released = false;
  private readonly onDataBound = (chunk: Buffer): void => this.onData(chunk);

  constructor(private readonly pool: UpstreamPool) {}

  get alive(): boolean {
    return !this.dead && this.socket !== null && !this.socket.destroyed;
  }

  start(request: Buffer, ex: UpstreamExchange, noBody: boolean): void {
    this.ex = ex;
    ex.conn = this;
    this.phase = Phase.Head;
    this.headBuf = null;
    this.reusable = true;
    this.collect = null;
    this.collected = 0;
    this.noBody = noBody;
    if (this.socket && this.connected) {
      ex.sent = true; // (the socket's timeout is already headersMs: set once at connect)
      this.socket.write(request);
      return;
    }
    this.pending = request;
    if (!this.socket) this.open();
  }

  private open(): void {
    const o = this.pool.opts;
    const s = connect({ host: o.host, port: o.port });
    this.socket = s;
    s.setNoDelay(true);
    s.setTimeout(o.connectMs);
    s.once('connect', () => {
      this.connected = true;
      s.setTimeout(o.headersMs);
      if (this.pending !== null && this.ex) {
        this.ex.sent = true;
        s.write(this.pending);
      }
      this.pending = null;
    });
    s.on('data', this.onDataBound);
    s.on('timeout', () => this.fail(this.connected ? (this.phase === Phase.Head ? 'UND_ERR_HEADERS_TIMEOUT' : 'UND_ERR_BODY_TIMEOUT') : 'UND_ERR_CONNECT_TIMEOUT'));
    s.on('error', (err: NodeJS.ErrnoException) => this.fail(err.code ?? 'ECONNRESET'));
    s.on('close', () => this.fail(this.phase === Phase.ToEnd ? '' : 'UND_ERR_SOCKET'));
  }

  /** Drop the socket; report `code` to the exchange in progress (or complete a read-to-end body). */
  fail(code: string): void {
    if (this.dead) return;
    this.dead = true;
    const ex = this.ex;
    const toEnd = this.phase === Phase.ToEnd;
    this.ex = null;
    this.phase = Phase.Idle;
    const s = this.socket;
    this.socket = null;
    this.connected = false;
    this.pending = null;
    if (s) {
      s.removeAllListeners();
      s.on('error', () => undefined);
      s.destroy();
    }
    this.pool.dropped(this);
    if (!ex) return;
    if (toEnd && code === '') ex.onEnd(null);
    else ex.onError(code || 'UND_ERR_SOCKET');
  }

  /** The client stopped reading: stop reading the backend until resume(). */
  pause(): void {
    this.socket?.pause();
  }

  resume(): void {
    this.socket?.resume();
  }

  /** The client went away mid-exchange (or the connection is stale): drop it, report nothing. */
  abort(): void {
    this.ex = null;
    this.phase = Phase.Idle;
    this.fail('');
  }

  private onData(chunk: Buffer): void {
    try {
      this.consume(chunk);
    } catch (err) {
      this.released = false;
      this.fail(err instanceof FramingError ? err.code : 'HPE_INTERNAL');
      return;
    }
    // Back to the pool only once the whole read was consumed: bytes after a complete response
    // (a backend answering more than was asked) fail the connection above instead of being
    // taken for the next request's answer.
    if (this.released) {
      this.released = false;
      if (!this.reusable) this.fail('');
      else this.pool.idleAgain(this);
    }
  }

  private consume(chunk: Buffer): void {
    let buf = chunk;
    while (buf.length > 0) {
      const ex = this.ex;
      if (!ex) throw new FramingError('HPE_UNEXPECTED_DATA'); // bytes with no request outstanding
      switch (this.phase) {
        case Phase.Head: {
          const joined = this.headBuf ? Buffer.concat([this.headBuf, buf]) : buf;
          const end = joined.indexOf(CRLFCRLF);
          if (end < 0) {
            if (joined.length > MAX_HEAD_BYTES) throw new FramingError('HPE_HEADER_OVERFLOW');
            this.headBuf = joined;
            return;
          }
          if (end > MAX_HEAD_BYTES) throw new FramingError('HPE_HEADER_OVERFLOW');
          this.headBuf = null;
          buf = joined.subarray(end + 4);
          this.head(joined.toString('latin1', 0, end), ex);
          break;
        }
        case Phase.Body: {
          const take = Math.min(this.remaining, buf.length);
          const piece = take === buf.length ? buf : buf.subarray(0, take);
          this.remaining -= take;
          buf = buf.subarray(take);
          this.body(piece, ex);
          if (this.remaining === 0) this.complete(ex);
          break;
        }
        case Phase.ToEnd:
          this.body(buf, ex);
          return;
        case Phase.ChunkSize:
        case Phase.ChunkDataEnd:
        case Phase.Trailer: {
          const nl = buf.indexOf(10);
          if (nl < 0) {
            this.lineBuf += buf.toString('latin1');
            if (this.lineBuf.length > 1024) throw new FramingError('HPE_INVALID_CHUNK_SIZE');
            return;
          }
          const line = this.lineBuf + buf.toString('latin1', 0, nl);
          this.lineBuf = '';
          buf = buf.subarray(nl + 1);
          if (!line.endsWith('\r')) throw new FramingError('HPE_LF_EXPECTED');
          const text = line.slice(0, -1);
          if (this.phase === Phase.ChunkDataEnd) {
            if (text !== '') throw new FramingError('HPE_INVALID_CHUNK_SIZE');
            this.phase = Phase.ChunkSize;
          } else if (this.phase === Phase.Trailer) {
            if (text === '') this.complete(ex);
          } else {
            const semi = text.indexOf(';');
            const hex = semi < 0 ? text : text.slice(0, semi);
            if (!/^[0-9A-Fa-f]{1,8}$/.test(hex)) throw new FramingError('HPE_INVALID_CHUNK_SIZE');
            const size = parseInt(hex, 16);
            if (size === 0) this.phase = Phase.Trailer;
            else {
              this.remaining = size;
              this.phase = Phase.ChunkData;
            }
          }
          break;
        }
        case Phase.ChunkData: {
          const take = Math.min(this.remaining, buf.length);
          this.remaining -= take;
          const piece = take === buf.length ? buf : buf.subarray(0, take);
          buf = buf.subarray(take);
          this.body(piece, ex);
          if (this.remaining === 0) this.phase = Phase.ChunkDataEnd;
          break;
        }
        case Phase.Idle:
          throw new FramingError('HPE_UNEXPECTED_DATA');
      }
    }
  }

  private body(piece: Buffer, ex: UpstreamExchange): void {
    if (this.collect) {
      this.collect.push(piece);
      this.collected += piece.length;
      return;
    }
    if (!ex.onData(piece)) this.socket?.pause();
  }

  private head(text: string, ex: UpstreamExchange): void {
    const eol = text.indexOf('\r\n');
    const m = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [^\r\n]*)?$/.exec(eol < 0 ? text : text.slice(0, eol));
    if (!m) throw new FramingError('HPE_INVALID_STATUS');
    const status = Number(m[2]);
    if (m[1] === '0') this.reusable = false;
    const headers: OutgoingHttpHeaders = {};
    let length = -1;
    let chunked = false;
    let named: Set<string> | null = null;
    let start = eol;
    while (start >= 0) {
      start += 2;
      let end = text.indexOf('\r\n', start);
      if (end < 0) end = text.length;
      const line = text.slice(start, end);
      start = end < text.length ? end : -1;
      const c0 = line.charCodeAt(0);
      if (c0 === 32 || c0 === 9) throw new FramingError('HPE_INVALID_HEADER_TOKEN'); // obs-fold
      const colon = line.indexOf(':');
      if (colon <= 0) throw new FramingError('HPE_INVALID_HEADER_TOKEN');
      const name = headerName(line.slice(0, colon));
      const value = line.slice(colon + 1).trim();
      if (BAD_VALUE.test(value)) throw new FramingError('HPE_INVALID_HEADER_TOKEN');
      if (name === 'content-length') {
        if (!/^\d{1,15}$/.test(value) || (length >= 0 && length !== Number(value))) throw new FramingError('HPE_UNEXPECTED_CONTENT_LENGTH');
        length = Number(value);
        headers[name] = value;
        continue;
      }
      if (name === 'transfer-encoding') {
        if (chunked || value.toLowerCase() !== 'chunked') throw new FramingError('HPE_INVALID_TRANSFER_ENCODING');
        chunked = true;
        continue;
      }
      if (name === 'connection') {
        const v = value.toLowerCase();
        if (v === 'keep-alive') continue; // the common case: nothing named beyond a hop-by-hop header
        for (const t of v.split(',')) {
          const tok = t.trim();
          if (tok === 'close') this.reusable = false;
          else if (tok) (named ??= new Set()).add(tok);
        }
        continue;
      }
      if (HOP.has(name)) continue;
      const prior = headers[name];
      if (prior === undefined) headers[name] = value;
      else if (Array.isArray(prior)) prior.push(value);
      else headers[name] = [String(prior), value];
    }
    if (chunked && length >= 0) throw new FramingError('HPE_UNEXPECTED_CONTENT_LENGTH');
    if (named) for (const n of named) if (n !== 'content-length') delete headers[n];
    if (status < 200) {
      if (status === 101) throw new FramingError('HPE_UNEXPECTED_UPGRADE');
      this.phase = Phase.Head; // informational: the real answer follows
      return;
    }
    ex.onHead(status, headers);
    if (this.noBody || status === 204 || status === 304) {
      this.complete(ex);
      return;
    }
    if (chunked) {
      this.phase = Phase.ChunkSize;
      return;
    }
    if (length < 0) {
      this.reusable = false;
      this.phase = Phase.ToEnd;
      return;
    }
    if (length === 0) return this.complete(ex);
    if (length <= BUFFER_RESPONSE_BYTES) this.collect = [];
    this.remaining = length;
    this.phase = Phase.Body;
  }

  private complete(ex: UpstreamExchange): void {
    this.phase = Phase.Idle;
    this.ex = null;
    const body = this.collect ? (this.collect.length === 1 ? this.collect[0] : Buffer.concat(this.collect, this.collected)) : null;
    this.collect = null;
    this.released = true; // onData hands the connection back once this read is done
    ex.onEnd(body);
  }
}

export class UpstreamPool {
  private readonly idle: UpstreamConnection[] = [];
  private readonly waiting: Array<{ request: Buffer; ex: UpstreamExchange; noBody: boolean }> = [];
  private waitHead = 0;
  private open = 0;
  private closed = false;

  constructor(readonly opts: UpstreamOptions) {}

  /** Exchanges waiting for a connection right now. */
  get queued(): number {
    return this.waiting.length - this.waitHead;
  }

  /**
   * Send one request (head and body in one buffer). Returns the connection carrying it, or null
   * when it waits for one (the caller's outstanding cap bounds how many wait).
   */
  send(request: Buffer, ex: UpstreamExchange, noBody: boolean): UpstreamConnection | null {
    if (this.closed) {
      ex.onError('UND_ERR_DESTROYED');
      return null;
    }
    const now = Date.now();
    let c = this.idle.pop();
    while (c && (!c.alive || now - c.lastUsedMs > this.opts.keepAliveMs)) {
      c.abort();
      c = this.idle.pop();
    }
    if (!c && this.open < this.opts.connections) {
      c = new UpstreamConnection(this);
      this.open++;
    }
    if (!c) {
      this.waiting.push({ request, ex, noBody });
      return null;
    }
    c.start(request, ex, noBody);
    return c;
  }

  /** Take a waiting exchange off the queue (its client went away before it was sent). */
  cancel(ex: UpstreamExchange): void {
    for (let i = this.waitHead; i < this.waiting.length; i++) {
      if (this.waiting[i].ex === ex) {
        this.waiting.splice(i, 1);
        return;
      }
    }
  }

  /** @internal a connection finished its exchange and may carry the next. */
  idleAgain(c: UpstreamConnection): void {
    c.lastUsedMs = Date.now();
    if (this.closed) return c.abort();
    const next = this.takeWaiting();
    if (next) c.start(next.request, next.ex, next.noBody);
    else this.idle.push(c);
  }

  /** @internal a connection's socket is gone. */
  dropped(c: UpstreamConnection): void {
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    this.open = Math.max(0, this.open - 1);
    // A waiter takes the freed slot on a fresh connection.
    const next = this.closed ? undefined : this.takeWaiting();
    if (next) {
      const fresh = new UpstreamConnection(this);
      this.open++;
      fresh.start(next.request, next.ex, next.noBody);
    }
  }

  private takeWaiting(): { request: Buffer; ex: UpstreamExchange; noBody: boolean } | undefined {
    if (this.waitHead >= this.waiting.length) return undefined;
    const next = this.waiting[this.waitHead++];
    if (this.waitHead > 1024 && this.waitHead * 2 > this.waiting.length) {
      this.waiting.splice(0, this.waitHead);
      this.waitHead = 0;
    }
    return next;
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.ex.onError('UND_ERR_DESTROYED');
    this.waitHead = 0;
    for (const c of this.idle.splice(0)) c.abort();
  }
}

export type { UpstreamConnection };
