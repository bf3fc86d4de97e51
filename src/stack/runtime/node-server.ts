import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { StackError } from '../../core/errors.js';
import { CapacityLimiter, QueueFullError } from '../capacity.js';
import type { RoleHandler, NodeSpec } from '../types.js';
import { refuse } from '../http-errors.js';
import { admissionLimits, ConnectionGate } from './admission.js';
import { NodeMetrics } from './node-metrics.js';

/**
 * One stack node's HTTP server. Admin paths (/healthz, /metrics, /admin/hdr) are answered here and
 * never reach the role; every other request goes through the capacity limiter (when the node has a
 * profile) to the role, and is measured from arrival to the end of the response.
 */

export const DEFAULT_LIMITS = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, maxBodyBytes: 1024 * 1024 } as const;

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
  private readonly gate: ConnectionGate;
  private readonly maxInflight: number;

  constructor(spec: NodeSpec, role: RoleHandler, metrics: NodeMetrics) {
    this.spec = spec;
    this.role = role;
    this.metrics = metrics;
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
    this.server.on('connection', (s: Socket) => {
      if (!this.gate.admit(s, this.sockets.size)) return;
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
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
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(this.metrics.prometheus());
      return true;
    }
    if (path === '/admin/hdr') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.metrics.snapshot()));
      return true;
    }
    if (path.startsWith('/admin/')) {
      res.writeHead(404).end();
      return true;
    }
    void req;
    return false;
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
    const done = (): void => {
      if (counted) return;
      counted = true;
      this.metrics.inflight--;
      this.metrics.request(route, res.statusCode, Number(process.hrtime.bigint() - startNs) / 1000);
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
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'internal', message: (err as Error)?.message ?? String(err) }));
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
    await this.role.close();
    this.metrics.close();
  }
}
