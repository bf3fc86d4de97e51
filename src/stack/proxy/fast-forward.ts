import type { NodeMetricsApi } from '../types.js';
import type { Backend } from './backend.js';
import { pickBackend } from './balancer.js';
import type { FastReply } from './fast-front.js';
import { TIMEOUT_CODES } from './forward.js';
import { isConnectionError, type HealthChecker } from './health-checker.js';
import type { FastRequest } from './request-head.js';
import type { UpstreamConnection, UpstreamExchange } from './upstream.js';

/** What the fast path forwards with: the proxy role's pools, health checker and metrics. */
export interface FastPools {
  agent: readonly Backend[];
  user: readonly Backend[];
  health: HealthChecker;
  metrics: NodeMetricsApi;
}

const NONE: ReadonlySet<Backend> = new Set();

/**
 * The upstream request: the client's request line and end-to-end header lines as parsed
 * (request-head.ts), then the backend's Host, X-Forwarded-For/Proto and the body's length; head
 * and body in one buffer, so one write.
 */
export function upstreamRequest(req: FastRequest, remote: string | undefined, authority: string): Buffer {
  const ip = remote ?? '';
  const bodyBytes = req.body.length;
  const length = bodyBytes > 0 || req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH' ? `content-length: ${bodyBytes}\r\n` : '';
  const head = `${req.requestLine}\r\nhost: ${authority}\r\n${req.lines}x-forwarded-for: ${req.forwardedFor ? `${req.forwardedFor}, ${ip}` : ip}\r\nx-forwarded-proto: http\r\n${length}\r\n`;
  // Header text is latin1 (the parser took only visible ASCII), so its length is its byte count.
  const request = Buffer.allocUnsafe(head.length + bodyBytes);
  request.write(head, 0, 'latin1');
  if (bodyBytes > 0) req.body.copy(request, head.length);
  return request;
}

/**
 * One client connection's exchange with a backend, reused for each of its requests (a connection
 * carries one request at a time), so a request costs no closures. Forwards with the same rules
 * as the role's node:http path (roles/proxy.ts): least outstanding among the healthy backends; at
 * a full backend 503 + retry-after; a retry on another backend only when nothing reached the
 * first; after that 502 (504 on a timeout), or a cut connection when the response had started; a
 * refused or reset connection ejects the backend.
 */
export class FastExchange implements UpstreamExchange {
  sent = false;
  conn: UpstreamConnection | null = null;
  private kind: 'agent' | 'user' = 'agent';
  private req: FastRequest | null = null;
  private remote: string | undefined = undefined;
  private b: Backend | null = null;
  private tried: Set<Backend> | null = null;
  private start = 0;
  private t0 = 0n;
  private status = 0;
  private lines = '';
  private hasLength = false;
  /** The backend's outstanding count was given back (answered, failed or abandoned). */
  private over = true;

  constructor(
    private readonly pools: FastPools,
    private readonly reply: FastReply,
  ) {}

  /** The client went away mid-exchange: drop the upstream side, report nothing. */
  readonly clientClosed = (): void => {
    const b = this.b;
    if (this.conn) {
      if (this.conn.ex === this) this.conn.abort();
    } else b?.fast.cancel(this);
    this.done(false);
  };

  private readonly drained = (): void => this.conn?.resume();

  /** Forward `req` (first try: `tried` null) to a backend of `kind`'s pool. */
  forward(kind: 'agent' | 'user', req: FastRequest, remote: string | undefined, tried: Set<Backend> | null, start: number, lastCode: string): void {
    const { pools, reply } = this;
    const b = pickBackend(pools, kind, tried ?? NONE, start);
    if (!b) {
      if (tried === null) return reply.refuse(503, `no healthy backend in the ${kind} pool`, true);
      return reply.refuse(TIMEOUT_CODES.has(lastCode) ? 504 : 502, `no backend reachable: ${lastCode}`, false);
    }
    if (b.full) {
      // Least outstanding picked it, so every other candidate is as full: shed, don't queue.
      pools.metrics.count('proxy-shed');
      return reply.refuse(503, `every ${kind} backend holds its limit of ${b.maxOutstanding} requests`, true);
    }
    b.outstanding++;
    b.requests++;
    pools.metrics.count(b.metricRequests);
    this.kind = kind;
    this.req = req;
    this.remote = remote;
    this.b = b;
    this.tried = tried;
    this.start = start;
    this.t0 = process.hrtime.bigint();
    this.status = 0;
    this.lines = '';
    this.hasLength = false;
    this.over = false;
    this.sent = false;
    this.conn = null;
    reply.onClose = this.clientClosed;
    b.fast.send(upstreamRequest(req, remote, b.authority), this, false);
  }

  private done(relayed: boolean): void {
    if (this.over) return;
    this.over = true;
    const b = this.b!;
    b.outstanding--;
    if (relayed) this.pools.metrics.observeUs(b.metricUpstream, Number(process.hrtime.bigint() - this.t0) / 1000);
  }

  onHead(status: number, lines: string, hasLength: boolean): void {
    this.status = status;
    this.lines = lines;
    this.hasLength = hasLength;
  }

  onData(chunk: Buffer): boolean {
    const reply = this.reply;
    if (!reply.started) reply.head(this.status, this.lines, this.hasLength, this.b!.name);
    if (reply.data(chunk)) return true;
    reply.onDrain = this.drained;
    return false;
  }

  onEnd(body: Buffer | null): void {
    this.done(true);
    const reply = this.reply;
    if (reply.started) reply.end();
    else reply.whole(this.status, this.lines, this.b!.name, body);
  }

  onError(code: string): void {
    this.done(false);
    const { reply, pools } = this;
    const b = this.b!;
    if (reply.closed) return;
    b.errors++;
    pools.metrics.count(b.metricErrors);
    if (isConnectionError(code)) pools.health.eject(b, code);
    if (!this.sent) {
      // Nothing reached that backend: another may take the request.
      const next = this.tried ?? new Set<Backend>();
      next.add(b);
      return this.forward(this.kind, this.req!, this.remote, next, this.start, code);
    }
    if (reply.started) return reply.destroy(); // a truncated response, never a spliced one
    reply.refuse(TIMEOUT_CODES.has(code) ? 504 : 502, `upstream ${b.name} failed: ${code}`, false);
  }
}

/** Forward one fast-path request (proxy/fast-front.ts) over the backends' lean upstream pools. */
export function forwardFast(pools: FastPools, kind: 'agent' | 'user', req: FastRequest, remote: string | undefined, reply: FastReply, start: number): void {
  const ex = (reply.exchange ??= new FastExchange(pools, reply));
  ex.forward(kind, req, remote, null, start, '');
}
