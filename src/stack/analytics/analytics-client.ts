import { Pool } from 'undici';
import { deriveKey } from '../../core/identity.js';
import { StoreUnavailableError } from '../store/errors.js';
import type { LedgerRow, TelemetrySample } from '../types.js';
import type { AlertTiming, IngestOutcome } from './analytics-store.js';

/** The analytics node's routes (src/stack/roles/analytics.ts). */
export const ANALYTICS_PATHS = { telemetry: '/analytics/v1/telemetry', ledgerKeys: '/analytics/v1/ledger-keys', alerts: '/analytics/v1/alerts' } as const;

/**
 * A client of the analytics node: the relays' telemetry sink, and the run's reader of the ledger
 * and the alerts. Every call carries the analytics key (deriveKey(secret, 'analytics-rpc')).
 * `connections` bounds the calls in flight (a relay: its batcher's maxInFlight); a call that fails
 * to connect, times out or is answered 503 is a StoreUnavailableError (the relay then leaves the
 * batch's frames unacked).
 */
export class AnalyticsClient {
  private readonly pool: Pool;
  private readonly headers: Record<string, string>;

  constructor(
    readonly url: string,
    secret: string,
    opts: { connections?: number; timeoutMs?: number } = {},
  ) {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    this.headers = { 'content-type': 'application/json', authorization: `Bearer ${deriveKey(secret, 'analytics-rpc')}` };
    this.pool = new Pool(url, { connections: opts.connections ?? 4, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  }

  private async call<T>(path: string, body: unknown): Promise<T> {
    let status: number;
    let text: string;
    try {
      const res = await this.pool.request({ method: 'POST', path, headers: this.headers, body: JSON.stringify(body) });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      const e = err as { code?: string; message?: string };
      throw new StoreUnavailableError(`analytics node ${this.url}: ${e.code ?? e.message ?? String(err)}`);
    }
    if (status === 503) throw new StoreUnavailableError(`analytics node ${this.url} is overloaded (503)`);
    if (status !== 200) throw new Error(`analytics node ${this.url} answered ${status} to ${path}: ${text.slice(0, 200)}`);
    return JSON.parse(text) as T;
  }

  /** Store a batch; resolves once the analytics node has committed it. */
  telemetry(samples: TelemetrySample[]): Promise<IngestOutcome> {
    return this.call<IngestOutcome>(ANALYTICS_PATHS.telemetry, samples);
  }

  async ledgerKeys(fromSeq: number, after: { agentId: string; seq: number } | null, limit: number): Promise<LedgerRow[]> {
    return (await this.call<{ result: LedgerRow[] }>(ANALYTICS_PATHS.ledgerKeys, [fromSeq, after, limit])).result;
  }

  async alerts(afterId: number, limit: number): Promise<AlertTiming[]> {
    return (await this.call<{ result: AlertTiming[] }>(ANALYTICS_PATHS.alerts, [afterId, limit])).result;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
