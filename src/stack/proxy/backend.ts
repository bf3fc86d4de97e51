import { Client, Pool } from 'undici';
import { UpstreamPool } from './upstream.js';

/** Upstream timeouts of one backend, in ms. */
export interface UpstreamTimeouts {
  connectMs: number;
  /** From the request written to the response headers. */
  headersMs: number;
  /** Between two chunks of the response body. */
  bodyMs: number;
}

/** How many connections the proxy keeps to one backend (keep-alive; each carries one request at a time). */
export const CONNECTIONS_PER_BACKEND = 128;
/**
 * Requests that may wait for one of those connections, per backend. Past connections + this, a
 * backend takes no more (the proxy answers 503 + retry-after when every candidate is full), so
 * neither upstream pool's queue grows without bound.
 */
export const DEFAULT_QUEUE_PER_BACKEND = 1024;

/**
 * One upstream web node: the lean pool (upstream.ts) for requests whose body is in memory, a
 * keep-alive undici Pool for streamed bodies, a separate one-connection Client for health checks
 * (so a check never queues behind traffic), and the balancer's state. Both traffic pools share
 * `connections` and `outstanding`: `full` says the backend's bound is reached.
 */
export class Backend {
  readonly pool: Pool;
  readonly fast: UpstreamPool;
  readonly checker: Client;
  /** Requests this backend may hold at once (sent or waiting for a connection). */
  readonly maxOutstanding: number;
  readonly host: string;
  /** `host:port` as the Host header names it. */
  readonly authority: string;
  readonly port: number;
  /** Routable: the last active check passed and no connection failed since. */
  healthy = true;
  /** Requests sent and not yet finished: the balancer's load measure. */
  outstanding = 0;
  requests = 0;
  errors = 0;
  ejections = 0;
  /** Metric names, built once: `backend:<name>:requests`… and the `upstream:<name>` latency op. */
  readonly metricRequests: string;
  readonly metricErrors: string;
  readonly metricUpstream: string;
  /** Consecutive failed active checks (timeouts or non-200; a refused connection ejects at once). */
  failedChecks = 0;

  constructor(
    readonly url: string,
    readonly name: string,
    readonly timeouts: UpstreamTimeouts,
    queue = DEFAULT_QUEUE_PER_BACKEND,
  ) {
    this.maxOutstanding = CONNECTIONS_PER_BACKEND + Math.max(0, queue);
    this.metricRequests = `backend:${name}:requests`;
    this.metricErrors = `backend:${name}:errors`;
    this.metricUpstream = `upstream:${name}`;
    const u = new URL(url);
    this.host = u.hostname.replace(/^\[|\]$/g, '');
    this.authority = u.host;
    this.port = Number(u.port || 80);
    this.pool = new Pool(url, {
      connections: CONNECTIONS_PER_BACKEND,
      pipelining: 1,
      keepAliveTimeout: 4_000,
      connectTimeout: timeouts.connectMs,
      headersTimeout: timeouts.headersMs,
      bodyTimeout: timeouts.bodyMs,
    });
    this.fast = new UpstreamPool({ host: this.host, port: this.port, connections: CONNECTIONS_PER_BACKEND, connectMs: timeouts.connectMs, headersMs: timeouts.headersMs, keepAliveMs: 4_000 });
    this.checker = new Client(url, { pipelining: 1, keepAliveTimeout: 4_000, connectTimeout: timeouts.connectMs });
  }

  /** At its bound: no further request may be sent or queued here now. */
  get full(): boolean {
    return this.outstanding >= this.maxOutstanding;
  }

  close(): Promise<void> {
    this.fast.close();
    return Promise.all([this.pool.destroy(), this.checker.destroy()]).then(() => undefined);
  }
}
