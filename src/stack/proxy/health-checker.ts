import type { NodeMetricsApi } from '../types.js';
import type { Backend } from './backend.js';

export interface HealthOptions {
  /** Time between active checks of one backend. */
  intervalMs: number;
  /** A check that has not answered by then has failed. */
  timeoutMs: number;
  /** Consecutive failed checks (timeout or non-200) that eject a backend; a refused connection ejects at once. */
  fall: number;
}

/**
 * A hung backend (SIGSTOP) is ejected after two checks that time out, one after the other: at most
 * 2 × (interval + timeout) = 2 s after it stops. The timeout is under 1 s because undici keeps
 * timeouts of 1 s and more on a coarse (0.5 s) timer: with 1000 ms, ejection took 3.0 s here.
 */
export const DEFAULT_HEALTH: HealthOptions = { intervalMs: 250, timeoutMs: 750, fall: 2 };

/** Connection-level errors: the backend is not there (or just dropped us). Eject at once. */
const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);

export function isConnectionError(code: string): boolean {
  return CONNECTION_ERRORS.has(code);
}

/**
 * Active health checks (GET /healthz on each backend every intervalMs, at most one in flight per
 * backend) and the ejection bookkeeping shared with passive ejection: `eject()` takes a backend
 * out at once; only a passing active check puts it back.
 */
export class HealthChecker {
  private readonly timer: NodeJS.Timeout;
  private readonly inFlight = new Set<Backend>();
  private closed = false;

  constructor(
    private readonly backends: readonly Backend[],
    private readonly metrics: NodeMetricsApi,
    private readonly opts: HealthOptions = DEFAULT_HEALTH,
    private readonly log: (message: string) => void = () => undefined,
  ) {
    for (const b of backends) this.publish(b);
    this.timer = setInterval(() => this.tick(), opts.intervalMs);
    this.timer.unref();
    this.tick();
  }

  /** Take a backend out of rotation now (passive ejection, or a failed check). */
  eject(b: Backend, reason: string): void {
    if (!b.healthy) return;
    b.healthy = false;
    b.ejections++;
    this.metrics.count(`backend:${b.name}:ejections`);
    this.publish(b);
    this.log(`ejected ${b.name} (${reason})`);
  }

  private admit(b: Backend): void {
    b.failedChecks = 0;
    if (b.healthy) return;
    b.healthy = true;
    this.publish(b);
    this.log(`re-admitted ${b.name}`);
  }

  private publish(b: Backend): void {
    this.metrics.gauge(`backend:${b.name}:healthy`, b.healthy ? 1 : 0);
  }

  private tick(): void {
    if (this.closed) return;
    for (const b of this.backends) {
      this.metrics.gauge(`backend:${b.name}:outstanding`, b.outstanding);
      if (!this.inFlight.has(b)) void this.check(b);
    }
  }

  private async check(b: Backend): Promise<void> {
    this.inFlight.add(b);
    try {
      const r = await b.checker.request({ method: 'GET', path: '/healthz', headersTimeout: this.opts.timeoutMs, bodyTimeout: this.opts.timeoutMs });
      await r.body.dump();
      if (this.closed) return;
      if (r.statusCode === 200) this.admit(b);
      else this.failed(b, `healthz answered ${r.statusCode}`);
    } catch (err) {
      if (this.closed) return;
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (isConnectionError(code)) this.eject(b, `healthz: ${code}`);
      else this.failed(b, `healthz: ${code || (err as Error).message}`);
    } finally {
      this.inFlight.delete(b);
    }
  }

  private failed(b: Backend, reason: string): void {
    b.failedChecks++;
    if (b.failedChecks >= this.opts.fall) this.eject(b, reason);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }
}
