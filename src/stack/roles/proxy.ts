import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ADMIN_PATHS } from '../../core/protocol.js';
import { BodyError, closeAfter, readBody } from '../http-body.js';
import { Backend, DEFAULT_QUEUE_PER_BACKEND, type UpstreamTimeouts } from '../proxy/backend.js';
import { pickBackend, poolOf } from '../proxy/balancer.js';
import { refuse } from '../http-errors.js';
import { BodyTooLargeError, forwardBuffered, forwardOnce, TIMEOUT_CODES, type AttemptOutcome, type ForwardBody } from '../proxy/forward.js';
import { requestHead, requestHeaders } from '../proxy/headers.js';
import { DEFAULT_HEALTH, HealthChecker, isConnectionError } from '../proxy/health-checker.js';
import { DEFAULT_TUNNELS, TunnelLimits, upgradeThrough } from '../proxy/upgrade.js';
import { FastFront } from '../proxy/fast-front.js';
import { forwardFast, type FastPools } from '../proxy/fast-forward.js';
import { DEFAULT_LIMITS } from '../runtime/node-server.js';
import type { RoleContext, RoleFactory, RoleHandler } from '../types.js';

/**
 * The built-in layer-7 reverse proxy of the split topologies (docs/proxy.md).
 * - Balancing: least outstanding requests among the healthy backends of a pool (ties rotate).
 * - Health: active checks (GET /healthz every 250 ms, 2 failures eject) and passive ejection (a
 *   refused or reset connection ejects the backend at once); a passing check re-admits it.
 * - Routing: /agent/ → agent pool; /api/ → user pool, falling back to the agent pool when no user
 *   backend is healthy. Anything else, and /metrics, /healthz, /admin/: 404, never forwarded.
 * - Retries on another backend only when nothing was written to the first (the connection
 *   failed): a check-in is never sent twice.
 * - X-Served-By, hop-by-hop headers dropped both ways, X-Forwarded-For/Proto; bodies over the
 *   limit 413; upstream timeouts 504, other upstream failures 502, no healthy backend 503.
 * - Bodies up to BUFFER_BODY_BYTES are read before forwarding (cheap, and resendable) and go out
 *   over the lean upstream client (proxy/upstream.ts) with their head in one write; larger or
 *   chunked ones stream over undici, as do large responses (with backpressure).
 * - Framing (docs/stack.md, "Proxy framing and bounds"): Node's parser refuses conflicting
 *   Content-Length/Transfer-Encoding, obs-fold, bare CR/LF and bad chunks (400, connection
 *   closed); this role also refuses Transfer-Encoding outside HTTP/1.1 and dot-segment or
 *   encoded-slash paths (400, closed). A body over the limit gets 413 and the connection is
 *   closed, never read to its end; a slow body meets the node's request timeout (408, closed).
 * - Bounds: each backend holds at most CONNECTIONS_PER_BACKEND + queuePerBackend requests; when
 *   every candidate is full the answer is 503 + retry-after. Tunnels: see proxy/upgrade.ts.
 */

export const BUFFER_BODY_BYTES = 64 * 1024;
const CONNECT_TIMEOUT_MS = 1000;

function isAdminPath(path: string): boolean {
  return ADMIN_PATHS.some((p) => (p.endsWith('/') ? path.startsWith(p) : path === p));
}

/** Dot segments, encoded dots or slashes, backslashes: a path a backend might read otherwise than the router did. */
const AMBIGUOUS_PATH = /(?:^|\/)(?:\.|%2e)(?:\.|%2e)?(?:\/|$)|%2f|%5c|\\/i;

/** Answer and close the connection: the rest of the request is not read (413, 400 on framing). */
function refuseAndClose(req: IncomingMessage, res: ServerResponse, status: number, message: string): void {
  closeAfter(req, res);
  const text = JSON.stringify({ error: message });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

/** The request's body framing, read from the raw headers (req.headers would build an object per request). */
interface Framing {
  contentLength: string | undefined;
  transferEncoding: boolean;
}

function framingOf(raw: readonly string[]): Framing {
  let contentLength: string | undefined;
  let transferEncoding = false;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i];
    // Node's parser has refused duplicate or conflicting lengths already.
    if (k.length === 14 && k.toLowerCase() === 'content-length') contentLength = raw[i + 1];
    else if (k.length === 17 && k.toLowerCase() === 'transfer-encoding') transferEncoding = true;
  }
  return { contentLength, transferEncoding };
}

function pathOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}

export class ProxyHandler implements RoleHandler {
  readonly agent: Backend[];
  readonly user: Backend[];
  readonly health: HealthChecker;
  private readonly maxBodyBytes: number;
  private rotation = 0;
  readonly tunnels: TunnelLimits;
  /** The fast path (proxy/fast-front.ts): every request in its subset is forwarded from the raw socket. */
  readonly rawFront: FastFront;

  constructor(private readonly ctx: RoleContext) {
    const p = ctx.spec.proxy ?? { agentPool: [], userPool: [], names: {} };
    const requestMs = ctx.spec.limits?.requestTimeoutMs ?? DEFAULT_LIMITS.requestTimeoutMs;
    const timeouts: UpstreamTimeouts = { connectMs: CONNECT_TIMEOUT_MS, headersMs: requestMs, bodyMs: requestMs };
    const make = (u: string): Backend => new Backend(u, p.names[u] ?? u, timeouts, p.queuePerBackend ?? DEFAULT_QUEUE_PER_BACKEND);
    this.agent = p.agentPool.map(make);
    this.user = p.userPool.map(make);
    this.maxBodyBytes = ctx.spec.limits?.maxBodyBytes ?? DEFAULT_LIMITS.maxBodyBytes;
    this.health = new HealthChecker([...this.agent, ...this.user], ctx.metrics, DEFAULT_HEALTH, (m) => ctx.log(m));
    this.tunnels = new TunnelLimits({ ...DEFAULT_TUNNELS, ...p.tunnels }, ctx.metrics);
    const pools: FastPools = { agent: this.agent, user: this.user, health: this.health, metrics: ctx.metrics };
    this.rawFront = new FastFront({
      kindOf: (url) => {
        const path = pathOf(url);
        const kind = poolOf(path);
        return kind === null || isAdminPath(path) || AMBIGUOUS_PATH.test(path) ? null : kind;
      },
      routeName: (kind) => (kind === 'agent' ? 'proxy:agent' : 'proxy:user'),
      forward: (kind, req, remote, reply) => forwardFast(pools, kind, req, remote, reply, this.rotation++),
      maxBodyBytes: Math.min(this.maxBodyBytes, BUFFER_BODY_BYTES),
    });
  }

  routeOf(_method: string, path: string): string {
    const kind = poolOf(path);
    return kind === null || isAdminPath(path) ? 'proxy:other' : `proxy:${kind}`;
  }

  /** The client's body as it will be forwarded, or undefined when it was refused (413 sent, connection closing). */
  private async body(req: IncomingMessage, res: ServerResponse, f: Framing): Promise<ForwardBody | undefined> {
    const declared = f.contentLength === undefined ? null : Number(f.contentLength);
    const chunked = f.transferEncoding;
    if (!chunked && (declared === null || declared === 0)) return { kind: 'none' };
    if (declared !== null && declared > this.maxBodyBytes) {
      refuseAndClose(req, res, 413, `body of ${declared} bytes is over the ${this.maxBodyBytes}-byte limit`);
      return undefined;
    }
    if (!chunked && declared !== null && declared <= BUFFER_BODY_BYTES) {
      // Usually the whole body came with the head and Node has parsed it already: take it now.
      if (req.complete) {
        const parts: Buffer[] = [];
        for (let c = req.read() as Buffer | null; c !== null; c = req.read() as Buffer | null) parts.push(c);
        const data = parts.length === 1 ? parts[0] : Buffer.concat(parts);
        if (data.length === declared) return { kind: 'buffer', data };
        refuseAndClose(req, res, 400, 'body does not match its content-length'); // (the parser makes this unreachable)
        return undefined;
      }
      try {
        return { kind: 'buffer', data: await readBody(req, this.maxBodyBytes) };
      } catch (err) {
        if (!(err instanceof BodyError)) throw err;
        refuseAndClose(req, res, err.status, err.message);
        return undefined;
      }
    }
    return { kind: 'stream', req, maxBytes: this.maxBodyBytes, declaredBytes: chunked ? null : declared };
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = pathOf(req.url);
    const kind = poolOf(path);
    if (kind === null || isAdminPath(path)) return refuse(req, res, 404, 'not found');
    if (AMBIGUOUS_PATH.test(path)) return refuseAndClose(req, res, 400, 'dot segments, encoded slashes and backslashes are not allowed in paths');
    const framing = framingOf(req.rawHeaders);
    if (req.httpVersionMinor !== 1 && framing.transferEncoding) return refuseAndClose(req, res, 400, 'transfer-encoding is only allowed in HTTP/1.1');
    const body = await this.body(req, res, framing);
    if (body === undefined) return;
    // Bodies in memory go over the lean client as one buffer; streamed ones over undici.
    let headers: Record<string, string> | null = null;
    const tried = new Set<Backend>();
    const start = this.rotation++;
    let lastCode = '';
    for (;;) {
      const b = pickBackend({ agent: this.agent, user: this.user }, kind, tried, start);
      if (!b) {
        if (tried.size === 0) return refuse(req, res, 503, `no healthy backend in the ${kind} pool`, { 'retry-after': '1' });
        return refuse(req, res, TIMEOUT_CODES.has(lastCode) ? 504 : 502, `no backend reachable: ${lastCode}`);
      }
      if (b.full) {
        // Least outstanding picked it, so every other candidate is as full: shed, don't queue.
        this.ctx.metrics.count('proxy-shed');
        return refuse(req, res, 503, `every ${kind} backend holds its limit of ${b.maxOutstanding} requests`, { 'retry-after': '1' });
      }
      tried.add(b);
      b.outstanding++;
      b.requests++;
      this.ctx.metrics.count(b.metricRequests);
      const t0 = process.hrtime.bigint();
      let out: AttemptOutcome;
      if (body.kind === 'stream') {
        headers ??= requestHeaders(req.headers, req.socket.remoteAddress, 'http');
        out = await forwardOnce(b, req, res, headers, body);
      } else {
        const data = body.kind === 'buffer' ? body.data : null;
        // The head names this backend as Host, so it is built per backend (a retry is rare).
        const head = requestHead(req.method ?? 'GET', req.url ?? '/', req.rawHeaders, req.socket.remoteAddress, 'http', b.authority, data ? data.length : 0);
        const headBytes = Buffer.byteLength(head, 'latin1');
        const request = Buffer.allocUnsafe(headBytes + (data ? data.length : 0));
        request.write(head, 0, 'latin1');
        if (data) data.copy(request, headBytes);
        out = await forwardBuffered(b, req, res, request);
      }
      b.outstanding--;
      if (out.kind === 'relayed') {
        this.ctx.metrics.observeUs(b.metricUpstream, Number(process.hrtime.bigint() - t0) / 1000);
        return;
      }
      if (out.kind === 'failed' && out.error instanceof BodyTooLargeError) {
        // The client's fault, not the backend's: the upstream request was aborted mid-body.
        if (!res.headersSent) return refuseAndClose(req, res, 413, out.error.message);
        res.destroy();
        return;
      }
      b.errors++;
      this.ctx.metrics.count(b.metricErrors);
      lastCode = out.code;
      if (out.kind === 'not-sent') {
        if (isConnectionError(out.code)) this.health.eject(b, out.code);
        continue; // nothing reached that backend: another may take the request
      }
      if (isConnectionError(out.code)) this.health.eject(b, out.code);
      if (out.responseStarted) {
        res.destroy(); // the client sees a truncated response, never a spliced one
        return;
      }
      return refuse(req, res, TIMEOUT_CODES.has(out.code) ? 504 : 502, `upstream ${b.name} failed: ${out.code}`);
    }
  }

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = pathOf(req.url);
    const kind = poolOf(path);
    if (kind !== 'agent' || isAdminPath(path)) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    if (AMBIGUOUS_PATH.test(path)) {
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const start = this.rotation++;
    upgradeThrough(req, socket, head, (tried) => pickBackend({ agent: this.agent, user: this.user }, 'agent', tried, start), this.tunnels, {
      onAttempt: (b) => {
        b.requests++;
        this.ctx.metrics.count(b.metricRequests);
      },
      onRefused: (b, code) => {
        b.errors++;
        this.ctx.metrics.count(b.metricErrors);
        this.health.eject(b, code);
      },
    });
  }

  async close(): Promise<void> {
    this.health.close();
    this.rawFront.close();
    this.tunnels.closeAll();
    await Promise.all([...this.agent, ...this.user].map((b) => b.close()));
  }
}

export const createRole: RoleFactory = async (ctx) => new ProxyHandler(ctx);
