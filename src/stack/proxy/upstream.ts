import { connect, type Socket } from 'node:net';
import type { OutgoingHttpHeaders } from 'node:http';
import { isOws, namePositionMemo, trimOws } from './head-lines.js';

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
 *
 * Cost per exchange: sockets read into one shared buffer (net's `onread`: no Buffer and no stream
 * event per read), and the response head is handed on as the header lines to forward, sliced
 * from what the backend sent, not as an object to be serialised again. Body bytes handed to an
 * exchange (`onData`, `onEnd`) are therefore views into that shared buffer: valid only during the
 * call, copied by whoever keeps them.
 */

export const MAX_HEAD_BYTES = 16 * 1024;
/** Responses up to this size (declared) are collected and written to the client in one go. */
export const BUFFER_RESPONSE_BYTES = 64 * 1024;

const CRLFCRLF = Buffer.from('\r\n\r\n');
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * Where the line starting at `start` ends (its CR), or -1 when a bare CR or LF comes first. `text`
 * ends in CRLF, so there is always a CR.
 */
function lineEnd(text: string, start: number): number {
  const cr = text.indexOf('\r', start);
  return text.charCodeAt(cr + 1) === 10 && text.indexOf('\n', start) === cr + 1 ? cr : -1;
}
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [^\r\n]*)?$/;

/**
 * Every upstream socket reads into this one buffer (net's `onread`). Safe because each read is
 * consumed (parsed, written on, or copied) before the callback returns, and JavaScript runs one
 * callback at a time.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** What the forwarder hears back about one exchange. */
export interface UpstreamExchange {
  /** The request is on the wire (written to a connected socket): it must not be repeated. */
  sent: boolean;
  /** The connection carrying it, once one does (for pause/resume/abort). */
  conn: UpstreamConnection | null;
  /**
   * Status ≥ 200 and the end-to-end header lines, once: `name: value\r\n` each, as the backend
   * sent them (a value with surrounding whitespace trimmed), hop-by-hop ones and those the
   * Connection header names already dropped, at most one Content-Length. `hasLength`: one of
   * them is Content-Length. headersOf() turns the lines into an object.
   */
  onHead(status: number, lines: string, hasLength: boolean): void;
  /** A piece of the body (a view valid during the call only); false: pause the upstream until resume(). */
  onData(chunk: Buffer): boolean;
  /** The whole body in one piece, when it was collected (declared ≤ BUFFER_RESPONSE_BYTES); a view valid during the call only. */
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

/** What the response parser does with a header, by name. */
const enum Role {
  Forward,
  Hop,
  ContentLength,
  TransferEncoding,
  Connection,
}

/**
 * A response header name, validated (an RFC 9110 token) and classified. Backends repeat the same
 * few names, so the answers are cached, up to NAME_CACHE_MAX names.
 */
const roleCache = new Map<string, Role>();
const NAME_CACHE_MAX = 512;
function roleOf(raw: string): Role {
  const known = roleCache.get(raw);
  if (known !== undefined) return known;
  if (!TOKEN.test(raw)) throw new FramingError('HPE_INVALID_HEADER_TOKEN');
  const lower = raw.toLowerCase();
  const role = lower === 'content-length' ? Role.ContentLength : lower === 'transfer-encoding' ? Role.TransferEncoding : lower === 'connection' ? Role.Connection : HOP.has(lower) ? Role.Hop : Role.Forward;
  if (roleCache.size < NAME_CACHE_MAX) roleCache.set(raw, role);
  return role;
}

const roleAt = namePositionMemo(roleOf);

/** The lines onHead() hands on, as an object (lower-case names; repeats in an array), for node:http's writeHead. */
export function headersOf(lines: string): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  let start = 0;
  while (start < lines.length) {
    const eol = lines.indexOf('\r\n', start);
    const colon = lines.indexOf(':', start);
    const name = lines.slice(start, colon).toLowerCase();
    const value = trimOws(lines.slice(colon + 1, eol));
    const prior = headers[name];
    if (prior === undefined) headers[name] = value;
    else if (Array.isArray(prior)) prior.push(value);
    else headers[name] = [String(prior), value];
    start = eol + 2;
  }
  return headers;
}

/** The lines without those whose name the Connection header listed (Content-Length stays: it frames the body). */
function dropNamed(lines: string, named: ReadonlySet<string>): string {
  let out = '';
  let start = 0;
  while (start < lines.length) {
    const eol = lines.indexOf('\r\n', start) + 2;
    const name = lines.slice(start, lines.indexOf(':', start)).toLowerCase();
    if (name === 'content-length' || !named.has(name)) out += lines.slice(start, eol);
    start = eol;
  }
  return out;
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
  /** Reads land in READ_BUFFER; false pauses the socket (backpressure from the client). */
  private readonly onReadBound = (bytes: number, buf: Uint8Array): boolean => {
    this.onData((buf as Buffer).subarray(0, bytes));
    return !this.paused;
  };
  private paused = false;

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
    if (this.paused) this.resume(); // (a client that stopped reading the last answer)
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
    const s = connect({ host: o.host, port: o.port, onread: { buffer: READ_BUFFER, callback: this.onReadBound } });
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
    s.on('timeout', () => this.fail(this.connected ? (this.phase === Phase.Head ? 'UND_ERR_HEADERS_TIMEOUT' : 'UND_ERR_BODY_TIMEOUT') : 'UND_ERR_CONNECT_TIMEOUT'));
    s.on('error', (err: NodeJS.ErrnoException) => this.fail(err.code ?? 'ECONNRESET'));
    // The backend's end (a read-to-end body is complete; otherwise the connection is unusable):
    // dropped at once, not after node:net's own shutdown of the socket, so no request is written
    // to it meanwhile.
    const ended = (): void => this.fail(this.phase === Phase.ToEnd ? '' : 'UND_ERR_SOCKET');
    s.on('end', ended);
    s.on('close', ended);
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
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
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
            this.headBuf = joined === buf ? Buffer.from(buf) : joined; // (buf is a view into READ_BUFFER)
            return;
          }
          if (end > MAX_HEAD_BYTES) throw new FramingError('HPE_HEADER_OVERFLOW');
          this.headBuf = null;
          buf = joined.subarray(end + 4);
          // With the first CRLF of the blank line: every header line ends in CRLF.
          this.head(joined.toString('latin1', 0, end + 2), ex);
          break;
        }
        case Phase.Body: {
          const take = Math.min(this.remaining, buf.length);
          const piece = take === buf.length ? buf : buf.subarray(0, take);
          this.remaining -= take;
          buf = buf.subarray(take);
          if (this.collect) this.collectPiece(piece);
          else this.body(piece, ex);
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

  /** A piece of a collected body: kept as a view when it completes the body in this read, else copied. */
  private collectPiece(piece: Buffer): void {
    this.collect!.push(this.remaining === 0 ? piece : Buffer.from(piece));
    this.collected += piece.length;
  }

  private body(piece: Buffer, ex: UpstreamExchange): void {
    if (!ex.onData(piece)) this.pause();
  }

  /** `text`: the status line and header lines, each ending in CRLF. */
  private head(text: string, ex: UpstreamExchange): void {
    if (text.indexOf('\0') >= 0) throw new FramingError('HPE_INVALID_HEADER_TOKEN');
    const eol = lineEnd(text, 0);
    if (eol < 0) throw new FramingError('HPE_INVALID_HEADER_TOKEN');
    const m = STATUS_LINE.exec(text.slice(0, eol));
    if (!m) throw new FramingError('HPE_INVALID_STATUS');
    const status = Number(m[2]);
    if (m[1] === '0') this.reusable = false;
    let length = -1;
    let chunked = false;
    let named: Set<string> | null = null;
    let lines = '';
    /** Start of the run of lines forwarded as received, not yet copied into `lines`. */
    let run = eol + 2;
    let start = run;
    let line = 0;
    while (start < text.length) {
      const end = lineEnd(text, start);
      if (end < 0) throw new FramingError('HPE_INVALID_HEADER_TOKEN'); // a bare CR or LF
      const c0 = text.charCodeAt(start);
      if (c0 === 32 || c0 === 9) throw new FramingError('HPE_INVALID_HEADER_TOKEN'); // obs-fold
      const colon = text.indexOf(':', start);
      if (colon <= start || colon > end) throw new FramingError('HPE_INVALID_HEADER_TOKEN');
      const role = roleAt(text, start, colon, line++);
      const next = end + 2;
      let keep = role === Role.Forward;
      if (role === Role.ContentLength) {
        const value = trimOws(text.slice(colon + 1, end));
        if (!/^\d{1,15}$/.test(value) || (length >= 0 && length !== Number(value))) throw new FramingError('HPE_UNEXPECTED_CONTENT_LENGTH');
        keep = length < 0; // a repeat of the same value is passed on once
        length = Number(value);
      } else if (role === Role.TransferEncoding) {
        if (chunked || trimOws(text.slice(colon + 1, end)).toLowerCase() !== 'chunked') throw new FramingError('HPE_INVALID_TRANSFER_ENCODING');
        chunked = true;
      } else if (role === Role.Connection) {
        const v = trimOws(text.slice(colon + 1, end)).toLowerCase();
        if (v !== 'keep-alive') {
          // (keep-alive, the common case, names nothing beyond a hop-by-hop header)
          for (const t of v.split(',')) {
            const tok = t.trim();
            if (tok === 'close') this.reusable = false;
            else if (tok) (named ??= new Set()).add(tok);
          }
        }
      }
      if (keep) {
        // As received when the value is `: value` with no other surrounding whitespace.
        const plain = text.charCodeAt(colon + 1) === 32 && colon + 2 < end && !isOws(text.charCodeAt(colon + 2)) && !isOws(text.charCodeAt(end - 1));
        if (!plain) {
          lines += `${text.slice(run, start)}${text.slice(start, colon)}: ${trimOws(text.slice(colon + 1, end))}\r\n`;
          run = next;
        }
      } else {
        if (run < start) lines += text.slice(run, start);
        run = next;
      }
      start = next;
    }
    if (run < text.length) lines += text.slice(run);
    if (chunked && length >= 0) throw new FramingError('HPE_UNEXPECTED_CONTENT_LENGTH');
    if (named) lines = dropNamed(lines, named);
    if (status < 200) {
      if (status === 101) throw new FramingError('HPE_UNEXPECTED_UPGRADE');
      this.phase = Phase.Head; // informational: the real answer follows
      return;
    }
    ex.onHead(status, lines, length >= 0);
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
