import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/**
 * A lean HTTP/1.1 keep-alive connection pool for the shared-pool (maximum-throughput) policy.
 *
 * Why not undici here: a throughput generator must cost less per request than the server it
 * measures. undici writes headers and body as two buffers (a writev per request: ~20% of the
 * worker's CPU in a profile) and validates every header on every request. This pool writes each
 * request as one prebuilt string, parses only the status line, Content-Length / chunked framing
 * and Connection, and keeps one request in flight per connection (no pipelining), exactly like
 * autocannon's default. Per-check-in and per-agent keep-alive stay on undici, where connection
 * behaviour matters more than speed.
 */

export interface RawExchange {
  /** Called once with the status code and, when `wantBody`, the body; or with an error code. */
  done(status: number, body: Buffer | null, errorCode: string | null): void;
  wantBody: boolean;
}

export interface RawPoolOptions {
  origin: URL;
  connections: number;
  localAddresses: string[];
  timeoutMs: number;
  tls: { ca?: Buffer; insecure: boolean };
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Response framing state for one connection. */
const enum Phase {
  Head,
  Body,
  ChunkSize,
  ChunkData,
  ChunkTrailer,
}

class RawConnection {
  private socket: Socket | null = null;
  private connected = false;
  private pending: string | null = null;
  private exchange: RawExchange | null = null;
  private head: Buffer | null = null;
  private phase = Phase.Head;
  private status = 0;
  private remaining = 0;
  private closeAfter = false;
  private bodyParts: Buffer[] | null = null;
  private chunkLine = '';

  constructor(
    private readonly pool: RawPool,
    private readonly localAddress: string | undefined,
  ) {}

  /** Open the socket ahead of the first request (before the run's t = 0). */
  warm(): void {
    if (!this.socket) this.open();
  }

  /** Send one serialized request; the connection must be idle. */
  send(request: string, exchange: RawExchange): void {
    this.exchange = exchange;
    this.phase = Phase.Head;
    this.head = null;
    this.status = 0;
    this.closeAfter = false;
    this.bodyParts = exchange.wantBody ? [] : null;
    if (this.socket && this.connected) {
      this.socket.write(request);
      return;
    }
    this.pending = request;
    if (!this.socket) this.open();
  }

  private open(): void {
    const o = this.pool.opts;
    const port = Number(o.origin.port) || (o.origin.protocol === 'https:' ? 443 : 80);
    const host = o.origin.hostname.replace(/^\[|\]$/g, '');
    const tcp = netConnect({ host, port, localAddress: this.localAddress });
    const s = o.origin.protocol === 'https:' ? tlsConnect({ socket: tcp, ca: o.tls.ca, rejectUnauthorized: !o.tls.insecure, servername: host }) : tcp;
    this.socket = s;
    s.setNoDelay(true);
    s.setTimeout(o.timeoutMs);
    s.once(o.origin.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      this.connected = true;
      if (this.pending !== null) {
        s.write(this.pending);
        this.pending = null;
      }
    });
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.once('timeout', () => this.fail('UND_ERR_HEADERS_TIMEOUT'));
    s.once('error', (err: NodeJS.ErrnoException) => this.fail(err.code ?? 'ECONNRESET'));
    s.once('close', () => this.fail('UND_ERR_SOCKET'));
  }

  private reset(): void {
    const s = this.socket;
    this.socket = null;
    this.connected = false;
    this.pending = null;
    s?.removeAllListeners();
    s?.on('error', () => undefined);
    s?.destroy();
  }

  private fail(code: string): void {
    const ex = this.exchange;
    this.exchange = null;
    this.reset();
    if (ex) this.pool.release(this, ex, 0, null, code);
  }

  private complete(): void {
    const ex = this.exchange!;
    this.exchange = null;
    const body = this.bodyParts ? Buffer.concat(this.bodyParts) : null;
    if (this.closeAfter) this.reset();
    this.pool.release(this, ex, this.status, body, null);
  }

  private onData(chunk: Buffer): void {
    let buf = chunk;
    while (buf.length > 0 && this.exchange) {
      switch (this.phase) {
        case Phase.Head: {
          const joined = this.head ? Buffer.concat([this.head, buf]) : buf;
          const end = joined.indexOf(CRLFCRLF);
          if (end < 0) {
            this.head = joined;
            return;
          }
          this.head = null;
          this.parseHead(joined.toString('latin1', 0, end));
          buf = joined.subarray(end + 4);
          if ((this.phase as Phase) === Phase.Body && this.remaining === 0) this.complete();
          break;
        }
        case Phase.Body: {
          const take = Math.min(this.remaining, buf.length);
          this.bodyParts?.push(buf.subarray(0, take));
          this.remaining -= take;
          buf = buf.subarray(take);
          if (this.remaining === 0) this.complete();
          break;
        }
        case Phase.ChunkSize:
        case Phase.ChunkTrailer: {
          const nl = buf.indexOf(10);
          if (nl < 0) {
            this.chunkLine += buf.toString('latin1');
            return;
          }
          const line = (this.chunkLine + buf.toString('latin1', 0, nl)).trim();
          this.chunkLine = '';
          buf = buf.subarray(nl + 1);
          if (this.phase === Phase.ChunkTrailer) {
            if (line === '') this.complete();
            break;
          }
          const size = parseInt(line, 16);
          if (Number.isNaN(size)) return this.fail('HPE_INVALID_CHUNK_SIZE');
          if (size === 0) this.phase = Phase.ChunkTrailer;
          else {
            this.remaining = size + 2; // data + CRLF
            this.phase = Phase.ChunkData;
          }
          break;
        }
        case Phase.ChunkData: {
          // `remaining` counts the chunk's data and its closing CRLF; keep only the data.
          const take = Math.min(this.remaining, buf.length);
          this.bodyParts?.push(buf.subarray(0, Math.min(take, Math.max(0, this.remaining - 2))));
          this.remaining -= take;
          buf = buf.subarray(take);
          if (this.remaining === 0) this.phase = Phase.ChunkSize;
          break;
        }
      }
    }
  }

  private parseHead(head: string): void {
    this.status = Number(head.slice(9, 12));
    let length = -1;
    let chunked = false;
    let start = head.indexOf('\r\n') + 2;
    while (start > 1 && start < head.length) {
      let end = head.indexOf('\r\n', start);
      if (end < 0) end = head.length;
      const colon = head.indexOf(':', start);
      if (colon > start && colon < end) {
        const name = head.slice(start, colon).toLowerCase();
        if (name === 'content-length') length = Number(head.slice(colon + 1, end).trim());
        else if (name === 'transfer-encoding') chunked = head.slice(colon + 1, end).toLowerCase().includes('chunked');
        else if (name === 'connection') this.closeAfter = head.slice(colon + 1, end).toLowerCase().includes('close');
      }
      start = end + 2;
    }
    if (head.startsWith('HTTP/1.0')) this.closeAfter = true;
    if (chunked) {
      this.phase = Phase.ChunkSize;
    } else {
      this.phase = Phase.Body;
      this.remaining = length >= 0 ? length : 0;
    }
  }

  close(): void {
    this.exchange = null;
    this.reset();
  }
}

export class RawPool {
  readonly opts: RawPoolOptions;
  private readonly idle: RawConnection[] = [];
  private readonly all: RawConnection[] = [];
  private closed = false;
  readonly host: string;

  constructor(opts: RawPoolOptions) {
    this.opts = opts;
    this.host = opts.origin.host;
    for (let i = 0; i < opts.connections; i++) {
      const addrs = opts.localAddresses;
      const c = new RawConnection(this, addrs.length > 0 ? addrs[i % addrs.length] : undefined);
      this.all.push(c);
      this.idle.push(c);
    }
  }

  /** Connect every connection now, so the run does not start with a connect storm. */
  warm(): void {
    for (const c of this.all) c.warm();
  }

  /** Connections free right now; a caller with none must drop, not queue. */
  get available(): number {
    return this.idle.length;
  }

  send(request: string, exchange: RawExchange): boolean {
    const c = this.idle.pop();
    if (!c || this.closed) return false;
    c.send(request, exchange);
    return true;
  }

  release(c: RawConnection, ex: RawExchange, status: number, body: Buffer | null, errorCode: string | null): void {
    if (!this.closed) this.idle.push(c);
    ex.done(status, body, errorCode);
  }

  close(): void {
    this.closed = true;
    for (const c of this.all) c.close();
    this.idle.length = 0;
  }
}
