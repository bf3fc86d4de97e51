import { Client, Pool } from 'undici';

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
 * One upstream web node: a keep-alive undici Pool for traffic, a separate one-connection Client for
 * health checks (so a check never queues behind traffic), and the balancer's state.
 */
export class Backend {
  readonly pool: Pool;
  readonly checker: Client;
  readonly host: string;
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
  ) {
    this.metricRequests = `backend:${name}:requests`;
    this.metricErrors = `backend:${name}:errors`;
    this.metricUpstream = `upstream:${name}`;
    const u = new URL(url);
    this.host = u.hostname.replace(/^\[|\]$/g, '');
    this.port = Number(u.port || 80);
    this.pool = new Pool(url, {
      connections: CONNECTIONS_PER_BACKEND,
      pipelining: 1,
      keepAliveTimeout: 4_000,
      connectTimeout: timeouts.connectMs,
      headersTimeout: timeouts.headersMs,
      bodyTimeout: timeouts.bodyMs,
    });
    this.checker = new Client(url, { pipelining: 1, keepAliveTimeout: 4_000, connectTimeout: timeouts.connectMs });
  }

  close(): Promise<void> {
    return Promise.all([this.pool.destroy(), this.checker.destroy()]).then(() => undefined);
  }
}
