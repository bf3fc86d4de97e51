import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { StackError } from '../../core/errors.js';
import { deriveKey, sameCredential } from '../../core/identity.js';
import { isLoopbackHost } from '../../core/loopback.js';
import { bearerToken } from '../auth.js';
import { CapacityLimiter, QueueFullError } from '../capacity.js';
import type { NodeSpec, RawFront, RawFrontRuntime, RoleHandler } from '../types.js';
import { refuse } from '../http-errors.js';
import { admissionLimits, ConnectionGate } from './admission.js';
import { NodeMetrics } from './node-metrics.js';

/**
 * One stack node's HTTP server. Admin paths (/healthz, /metrics, /admin/hdr) are answered here and
 * never reach the role; every other request goes through the capacity limiter (when the node has a
 * profile) to the role, and is measured from arrival to the end of the response.
 *
 * Who may ask: /healthz is open (liveness: the launcher, the proxy's health checks, HAProxy);
 * /metrics is open while the node listens on loopback, as Prometheus expects, and otherwise needs
 * the admin key; /admin/* always needs the admin key (`authorization: Bearer <key>`, the key
 * derived from the stack secret for 'admin'), else 401 whatever the path.
 *
 * A request that fails inside the role is answered 500 `{"error":"internal"}`: the message goes
 * to the node's stderr (at most one line a second), never to the caller.
 *
 * close(): stop accepting, let requests in flight finish (up to `graceMs`), close the role (a
 * relay sends its final acks while its tunnels are still open), then destroy what is left.
 */

export const DEFAULT_LIMITS = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, maxBodyBytes: 1024 * 1024 } as const;

/** How long close() lets requests in flight finish before their sockets are destroyed. */
export const CLOSE_GRACE_MS = 2000;

function readPem(node: string, field: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new StackError(`${node}: relay.tls.${field}: cannot read ${JSON.stringify(path)} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
}

function tlsServer(node: string, tls: { certFile: string; keyFile: string }, options: ServerOptions, onRequest: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const cert = readPem(node, 'certFile', tls.certFile);
  const key = readPem(node, 'keyFile', tls.keyFile);
  try {
    // An https.Server is an http.Server with a TLS listener underneath: same events, same timeouts.
    return createTlsServer({ ...options, cert, key }, onRequest) as unknown as Server;
  } catch (err) {
    throw new StackError(`${node}: relay.tls: certFile and keyFile are not a matching PEM certificate and key (${(err as Error).message.split('\n')[0]})`);
  }
}

export class NodeServer {
  readonly spec: NodeSpec;
  readonly metrics: NodeMetrics;
  private readonly role: RoleHandler;
  private readonly limiter: CapacityLimiter | null;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly tls: boolean;
  private readonly adminKey: string;
  private readonly metricsOpen: boolean;
  private closing = false;
  private closed: Promise<void> | null = null;
  private drained: (() => void) | null = null;
  private lastErrorLogMs = 0;
  private readonly gate: ConnectionGate;
  private readonly maxInflight: number;
  private readonly raw: RawFront | null;

  constructor(spec: NodeSpec, role: RoleHandler, metrics: NodeMetrics) {
    this.spec = spec;
    this.role = role;
    this.metrics = metrics;
    this.adminKey = deriveKey(spec.secret, 'admin');
    this.metricsOpen = isLoopbackHost(spec.host);
    // The seed keeps the class's old name: a new seed would change every sampled service time.
    this.limiter = spec.profile ? new CapacityLimiter(spec.profile, { seed: `${spec.name}\0gate` }) : null;
    metrics.limiter = this.limiter;
    const headersTimeout = spec.limits?.headersTimeoutMs ?? DEFAULT_LIMITS.headersTimeoutMs;
    // Node checks header/request timeouts on this interval (default 30 s): keep it well below them.
    const options = { connectionsCheckingInterval: Math.max(100, Math.min(1000, headersTimeout / 4)) };
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => this.onRequest(req, res);
    // A relay with spec.relay.tls serves everything (tunnels, sessions, admin) over TLS.
    const tls = spec.relay?.tls;
    this.tls = tls !== undefined;
    this.server = tls ? tlsServer(spec.name, tls, options, onRequest) : createServer(options, onRequest);
    this.server.headersTimeout = headersTimeout;
    this.server.requestTimeout = spec.limits?.requestTimeoutMs ?? DEFAULT_LIMITS.requestTimeoutMs;
    this.server.keepAliveTimeout = 5000;
    const admission = admissionLimits(spec.limits);
    this.gate = new ConnectionGate(admission.maxConnections, metrics);
    this.maxInflight = admission.maxInflight;
    // A role's raw front (the proxy's fast path) reads each admitted connection first and hands
    // it to node:http's own connection listener only for a request outside its subset.
    this.raw = !this.tls && !this.limiter && role.rawFront ? role.rawFront : null;
    const httpConnection = this.server.listeners('connection') as Array<(s: Socket) => void>;
    if (this.raw) this.server.removeAllListeners('connection');
    const isClosing = (): boolean => this.closing;
    const runtime: RawFrontRuntime = {
      begin: () => {
        if (this.closing || this.metrics.inflight >= this.maxInflight) return false;
        this.metrics.inflight++;
        return true;
      },
      end: (route, status, startNs) => this.requestDone(route, status, startNs),
      handoff: (s, unread) => {
        if (unread) s.unshift(unread);
        for (const l of httpConnection) l.call(this.server, s);
      },
      get closing() {
        return isClosing();
      },
    };
    this.server.on('connection', (s: Socket) => {
      if (!this.gate.admit(s, this.sockets.size)) return;
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      this.raw?.accept(s, runtime);
    });
    if (role.upgrade) this.server.on('upgrade', (req, socket, head) => role.upgrade!(req, socket, head));
  }

  async listen(): Promise<{ port: number; url: string }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err: NodeJS.ErrnoException) => reject(new StackError(`${this.spec.name}: cannot listen on ${this.spec.host}:${this.spec.port}: ${err.code ?? err.message}`)));
      this.server.listen(this.spec.port, this.spec.host, () => resolve());
    });
    const { port } = this.server.address() as AddressInfo;
    const host = this.spec.host.includes(':') ? `[${this.spec.host}]` : this.spec.host;
    return { port, url: `${this.tls ? 'https' : 'http'}://${host}:${port}` };
  }

  private admin(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.metrics.health()));
      return true;
    }
    const isMetrics = path === '/metrics';
    if (!isMetrics && !path.startsWith('/admin/')) return false;
    if (!(isMetrics && this.metricsOpen) && !sameCredential(bearerToken(req), this.adminKey)) {
      req.resume();
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer realm="rmmscale-admin"' }).end('{"error":"admin key required"}');
      return true;
    }
    if (isMetrics) {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(this.metrics.prometheus());
      return true;
    }
    if (path === '/admin/hdr') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.metrics.snapshot()));
      return true;
    }
    res.writeHead(404).end();
    return true;
  }

  /** One line a second at most: an error storm cannot flood stderr. */
  private logError(route: string, err: unknown): void {
    const now = Date.now();
    if (now - this.lastErrorLogMs < 1000) return;
    this.lastErrorLogMs = now;
    const msg = ((err as Error)?.message ?? String(err)).split('\n')[0].slice(0, 300);
    process.stderr.write(`[${this.spec.name}] internal error on ${route}: ${msg}\n`);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const startNs = process.hrtime.bigint();
    const q = (req.url ?? '/').indexOf('?');
    const path = q < 0 ? (req.url ?? '/') : (req.url ?? '/').slice(0, q);
    if (this.gate.refused(req.socket)) return void res.destroy();
    if (this.admin(req, res, path)) return;
    if (!this.limiter && this.metrics.inflight >= this.maxInflight) {
      // No profile, so no worker queue: this bound keeps profile `none` from queueing without end.
      this.metrics.count('inflight-refused');
      return refuse(req, res, 503, `overloaded: ${this.maxInflight} requests in flight`, { 'retry-after': '1' });
    }
    const method = req.method ?? 'GET';
    const route = this.role.routeOf(method, path);
    this.metrics.inflight++;
    let counted = false;
    if (this.closing) res.setHeader('connection', 'close');
    const done = (): void => {
      if (counted) return;
      counted = true;
      this.requestDone(route, res.statusCode, startNs);
    };
    res.once('finish', done);
    res.once('close', done);
    const handle = (): Promise<void> | void => this.role.handle(req, res);
    const limited = this.limiter && this.role.limited?.(method, path) !== false;
    const work = limited ? this.limiter!.run(handle) : Promise.resolve().then(handle);
    work.catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof QueueFullError) {
        req.resume();
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"error":"overloaded"}');
        return;
      }
      this.logError(route, err);
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"internal"}');
    });
  }

  private requestDone(route: string, status: number, startNs: bigint): void {
    this.metrics.inflight--;
    this.metrics.request(route, status, Number(process.hrtime.bigint() - startNs) / 1000);
    if (this.closing) {
      this.server.closeIdleConnections();
      this.raw?.closeIdle();
      if (this.metrics.inflight === 0) this.drained?.();
    }
  }

  close(graceMs = CLOSE_GRACE_MS): Promise<void> {
    this.closed ??= this.shutdown(graceMs);
    return this.closed;
  }

  private async shutdown(graceMs: number): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    this.raw?.closeIdle();
    if (this.metrics.inflight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    // The role closes while its upgraded sockets (a relay's tunnels) are still open.
    try {
      await this.role.close();
    } finally {
      this.raw?.close();
      for (const s of this.sockets) s.destroy();
      await closed;
      this.metrics.close();
    }
  }
}
