import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Pool } from 'undici';
import { ADMIN_PATHS, AGENT_PREFIX, HEADER_SERVED_BY, USER_PREFIX } from '../../core/protocol.js';
import { bodyOrReply, readBody, sendError } from '../http-body.js';
import { DEFAULT_LIMITS } from '../runtime/node-server.js';
import type { RoleContext, RoleFactory, RoleHandler } from '../types.js';

/**
 * The built-in layer-7 reverse proxy of the split topologies.
 * - Balancing: least outstanding requests among the healthy backends of a pool.
 * - Health: active checks (GET /healthz every 250 ms) and passive ejection (a connection error
 *   ejects the backend at once; the next passing check re-admits it). A SIGKILLed node is routed
 *   around on the first refused connection, well within 2 s.
 * - Routing: /agent/ → agent pool; /api/ → user pool, falling back to the agent pool when every
 *   user backend is down.
 * - Retries only when the connection failed before the request was sent (refused, unreachable):
 *   a check-in is never sent twice.
 * - X-Served-By names the backend; hop-by-hop headers are dropped both ways; bodies are limited
 *   (413) and upstream timeouts answer 504. /metrics, /healthz and /admin/ are never forwarded.
 */

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);
const HEALTH_INTERVAL_MS = 250;
const HEALTH_TIMEOUT_MS = 1000;
/** Errors that prove nothing reached the backend, so another backend may take the request. */
const NOT_SENT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'EADDRNOTAVAIL']);

class Backend {
  readonly pool: Pool;
  healthy = true;
  outstanding = 0;
  requests = 0;
  ejections = 0;
  constructor(
    readonly url: string,
    readonly name: string,
    timeoutMs: number,
  ) {
    this.pool = new Pool(url, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, connectTimeout: 2000 });
  }
}

function forwardHeaders(h: IncomingHttpHeaders, remote: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const named = new Set(String(h.connection ?? '').toLowerCase().split(',').map((s) => s.trim()));
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || HOP_BY_HOP.has(k) || named.has(k) || k === 'content-length') continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  out['x-forwarded-for'] = h['x-forwarded-for'] ? `${h['x-forwarded-for']}, ${remote ?? ''}` : (remote ?? '');
  out['x-forwarded-proto'] = 'http';
  return out;
}

class ProxyHandler implements RoleHandler {
  private readonly agent: Backend[];
  private readonly user: Backend[];
  private readonly timer: NodeJS.Timeout;
  private readonly maxBody: number;
  private closed = false;

  constructor(private readonly ctx: RoleContext) {
    const p = ctx.spec.proxy ?? { agentPool: [], userPool: [], names: {} };
    const timeoutMs = ctx.spec.limits?.requestTimeoutMs ?? DEFAULT_LIMITS.requestTimeoutMs;
    this.agent = p.agentPool.map((u) => new Backend(u, p.names[u] ?? u, timeoutMs));
    this.user = p.userPool.map((u) => new Backend(u, p.names[u] ?? u, timeoutMs));
    this.maxBody = ctx.spec.limits?.maxBodyBytes ?? DEFAULT_LIMITS.maxBodyBytes;
    this.timer = setInterval(() => void this.checkAll(), HEALTH_INTERVAL_MS);
  }

  private async checkAll(): Promise<void> {
    await Promise.all([...this.agent, ...this.user].map((b) => this.check(b)));
    for (const b of [...this.agent, ...this.user]) {
      this.ctx.metrics.gauge(`backend:${b.name}:healthy`, b.healthy ? 1 : 0);
      this.ctx.metrics.gauge(`backend:${b.name}:outstanding`, b.outstanding);
    }
  }

  private async check(b: Backend): Promise<void> {
    if (this.closed) return;
    try {
      const r = await b.pool.request({ method: 'GET', path: '/healthz', headersTimeout: HEALTH_TIMEOUT_MS, bodyTimeout: HEALTH_TIMEOUT_MS });
      await r.body.dump();
      this.setHealth(b, r.statusCode === 200);
    } catch {
      this.setHealth(b, false);
    }
  }

  private setHealth(b: Backend, ok: boolean): void {
    if (b.healthy && !ok) {
      b.ejections++;
      this.ctx.metrics.count(`backend:${b.name}:ejections`);
    }
    b.healthy = ok;
  }

  routeOf(_method: string, path: string): string {
    return path.startsWith(AGENT_PREFIX) ? 'proxy:agent' : path.startsWith(USER_PREFIX) ? 'proxy:user' : 'proxy:other';
  }

  private rotation = 0;

  /**
   * Least outstanding among healthy backends, skipping ones already tried for this request. Ties
   * rotate, so light sequential traffic (always 0 outstanding) still spreads.
   */
  private pick(path: string, tried: Set<Backend>): Backend | null {
    const start = this.rotation++;
    const choose = (pool: Backend[]): Backend | null => {
      let best: Backend | null = null;
      for (let i = 0; i < pool.length; i++) {
        const b = pool[(start + i) % pool.length];
        if (b.healthy && !tried.has(b) && (!best || b.outstanding < best.outstanding)) best = b;
      }
      return best;
    };
    if (path.startsWith(AGENT_PREFIX)) return choose(this.agent);
    if (path.startsWith(USER_PREFIX)) return choose(this.user) ?? choose(this.agent);
    return null;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (ADMIN_PATHS.some((p) => path === p || (p.endsWith('/') && path.startsWith(p))) || !(path.startsWith(AGENT_PREFIX) || path.startsWith(USER_PREFIX))) {
      return sendError(req, res, 404, 'not found');
    }
    // Buffered (bodies are bounded): a request refused before it reached a backend can be retried.
    const body = await bodyOrReply(req, res, (r) => readBody(r, this.maxBody));
    if (body === undefined) return;
    const headers = forwardHeaders(req.headers, req.socket.remoteAddress);
    const tried = new Set<Backend>();
    for (;;) {
      const b = this.pick(path, tried);
      if (!b) return sendError(req, res, 503, 'no healthy backend');
      tried.add(b);
      b.outstanding++;
      b.requests++;
      this.ctx.metrics.count(`backend:${b.name}:requests`);
      try {
        const up = await b.pool.request({ method: (req.method ?? 'GET') as 'GET', path: req.url ?? '/', headers, body: body.length > 0 ? body : undefined });
        const out: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
        out[HEADER_SERVED_BY] = b.name;
        res.writeHead(up.statusCode, out);
        for await (const chunk of up.body) res.write(chunk);
        res.end();
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (NOT_SENT.has(code) || code === 'UND_ERR_SOCKET' || code === 'ECONNRESET') this.setHealth(b, false);
        this.ctx.metrics.count(`backend:${b.name}:errors`);
        if (res.headersSent) {
          res.destroy();
          return;
        }
        if (NOT_SENT.has(code)) continue; // nothing reached that backend: another may take it
        if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return sendError(req, res, 504, 'upstream timeout');
        return sendError(req, res, 502, `upstream failed: ${code || (err as Error).message}`);
      } finally {
        b.outstanding--;
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await Promise.all([...this.agent, ...this.user].map((b) => b.pool.destroy()));
  }
}

export const createRole: RoleFactory = async (ctx) => new ProxyHandler(ctx);
