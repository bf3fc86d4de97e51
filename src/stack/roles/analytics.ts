import type { IncomingMessage, ServerResponse } from 'node:http';
import { deriveKey, sameCredential } from '../../core/identity.js';
import { StackError } from '../../core/errors.js';
import { ANALYTICS_PATHS as ANALYTICS_ROUTES } from '../analytics/analytics-client.js';
import { AnalyticsStore, ALERTS_PAGE_MAX } from '../analytics/analytics-store.js';
import { bearerToken } from '../auth.js';
import { bodyOrReply, readJson, sendError, sendJson } from '../http-body.js';
import { refuse } from '../http-errors.js';
import { LEDGER_PAGE_MAX } from '../store/schema.js';
import type { NodeMetricsApi, RoleFactory, RoleHandler, TelemetrySample } from '../types.js';

/**
 * The analytics plane as its own node (seed 004's third plane): its own process, port, /metrics and
 * SQLite file (analytics-store.ts). Relays send it their telemetry batches; it stores each frame once
 * per key and raises alerts from them, and answers only once the batch has committed, so a relay's
 * ack still means "durably stored". The control plane's database never sees telemetry, so a slow or
 * dead analytics node cannot slow check-ins, presence, sessions' audit or the DBAgent; it only
 * delays telemetry acks and alerts.
 *
 *   POST /analytics/v1/telemetry    body: TelemetrySample[]   → {"stored", "duplicates", "alerts"}
 *   POST /analytics/v1/ledger-keys  body: [fromSeq, after, limit]   → {"result": LedgerRow[]}   (the run's ledger)
 *   POST /analytics/v1/alerts       body: [afterId, limit]          → {"result": [id, sentMs, createdMs][]}
 *
 * Every call needs the stack's analytics key (deriveKey(secret, 'analytics-rpc')) as a bearer
 * token, checked before the body is read (401 otherwise).
 *
 * Batches are written one at a time (a single writer, as SQLite allows), in arrival order; at most
 * MAX_QUEUED wait (then 503 + retry-after, and the relay does not ack those frames). A `slow` fault
 * (`slow: analytics, by: 10x` or `by: 200ms`) holds the writer before each batch for `by`, or for
 * (N − 1) × the recent mean time of an unslowed batch, so the sink takes N times as long and its
 * throughput falls N times; the node's capacity profile, if any, is stretched by the runtime too.
 */

const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_QUEUED = 256;
/** Weight of the newest batch in the mean batch time (an exponential moving average). */
const EWMA_WEIGHT = 0.1;

function isSample(v: unknown): v is TelemetrySample {
  const s = v as Partial<TelemetrySample> | null;
  return (
    !!s &&
    typeof s.agentId === 'string' &&
    typeof s.relay === 'string' &&
    Number.isFinite(s.atMs) &&
    Number.isFinite(s.cpuPct) &&
    Number.isFinite(s.memPct) &&
    (s.seq === undefined || Number.isInteger(s.seq)) &&
    (s.sentMs === undefined || Number.isFinite(s.sentMs))
  );
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class AnalyticsHandler implements RoleHandler {
  private readonly key: string;
  private writer: Promise<void> = Promise.resolve();
  private queued = 0;
  /** Mean time of an unslowed batch (ms), for the `Nx` slow fault. */
  private batchMeanMs = 0;
  private slowByMs = 0;
  private slowFactor = 1;
  private slowUntilMs = 0;
  private readonly gaugeTimer: NodeJS.Timeout;

  constructor(
    private readonly store: AnalyticsStore,
    secret: string,
    private readonly metrics: NodeMetricsApi,
  ) {
    this.key = deriveKey(secret, 'analytics-rpc');
    this.gaugeTimer = setInterval(() => this.metrics.gauge('ingest-queued', this.queued), 1000);
    this.gaugeTimer.unref();
  }

  routeOf(_method: string, path: string): string {
    if (path === ANALYTICS_ROUTES.telemetry) return 'ingest';
    if (path === ANALYTICS_ROUTES.ledgerKeys) return 'ledger-keys';
    if (path === ANALYTICS_ROUTES.alerts) return 'alerts';
    return 'not-found';
  }

  slow(byMs: number, factor: number, forMs: number): void {
    this.slowByMs = Math.max(0, byMs);
    this.slowFactor = Math.max(1, factor);
    this.slowUntilMs = Date.now() + Math.max(0, forMs);
  }

  /** What the fault adds before a batch now (0 when none is active). */
  private slowMs(): number {
    if (Date.now() >= this.slowUntilMs) return 0;
    return this.slowByMs + (this.slowFactor - 1) * this.batchMeanMs;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (!sameCredential(bearerToken(req), this.key)) {
      res.setHeader('www-authenticate', 'Bearer realm="rmmscale-analytics"');
      return refuse(req, res, 401, 'analytics key required');
    }
    const route = this.routeOf(req.method ?? 'GET', path);
    if (req.method !== 'POST' || route === 'not-found') return sendError(req, res, 404, 'not found');
    const body = await bodyOrReply(req, res, (r) => readJson(r, MAX_BODY_BYTES));
    if (body === undefined) return;
    if (route === 'ingest') return this.ingest(req, res, body);
    if (!Array.isArray(body)) return sendError(req, res, 400, 'expected a JSON array of arguments');
    if (route === 'ledger-keys') {
      const [fromSeq, after, limit] = body as [unknown, unknown, unknown];
      const a = after as { agentId?: unknown; seq?: unknown } | null;
      if (!Number.isFinite(fromSeq) || !Number.isFinite(limit) || (a !== null && (typeof a?.agentId !== 'string' || !Number.isFinite(a.seq)))) {
        return sendError(req, res, 400, 'expected [fromSeq, {agentId, seq} or null, limit]');
      }
      return sendJson(res, 200, { result: this.store.ledgerKeys(fromSeq as number, a as { agentId: string; seq: number } | null, Math.min(limit as number, LEDGER_PAGE_MAX)) });
    }
    const [afterId, limit] = body as [unknown, unknown];
    if (!Number.isFinite(afterId) || !Number.isFinite(limit)) return sendError(req, res, 400, 'expected [afterId, limit]');
    sendJson(res, 200, { result: this.store.alerts(afterId as number, Math.min(limit as number, ALERTS_PAGE_MAX)) });
  }

  private async ingest(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    if (!Array.isArray(body) || !body.every(isSample)) return sendError(req, res, 400, 'expected a JSON array of telemetry samples {agentId, relay, atMs, cpuPct, memPct, seq?, sentMs?}');
    if (this.queued >= MAX_QUEUED) {
      this.metrics.count('ingest-refused-queue');
      return refuse(req, res, 503, `${this.queued} batches waiting for the writer, the limit`, { 'retry-after': '1' });
    }
    this.queued++;
    const done = this.writer.then(async () => {
      const extra = this.slowMs();
      if (extra > 0) await sleep(extra);
      const t0 = performance.now();
      const out = this.store.ingest(body, Date.now());
      const tookMs = performance.now() - t0;
      if (extra === 0) this.batchMeanMs = this.batchMeanMs === 0 ? tookMs : this.batchMeanMs + EWMA_WEIGHT * (tookMs - this.batchMeanMs);
      this.metrics.observeUs('ingest-commit', tookMs * 1000);
      return out;
    });
    this.writer = done.then(
      () => undefined,
      () => undefined,
    );
    try {
      const out = await done;
      this.metrics.count('telemetry-stored', out.stored);
      this.metrics.count('telemetry-duplicates', out.duplicates);
      this.metrics.count('alerts-raised', out.alerts);
      sendJson(res, 200, out);
    } finally {
      this.queued--;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.gaugeTimer);
    // Batches already queued finish first: their relays are waiting to ack them.
    await this.writer;
    this.store.close();
  }
}

export const createRole: RoleFactory = async (ctx) => {
  const path = ctx.spec.analytics?.path;
  if (!path) throw new StackError(`${ctx.spec.name}: the analytics role needs its store's path (spec.analytics.path)`);
  return new AnalyticsHandler(new AnalyticsStore(path), ctx.spec.secret, ctx.metrics);
};
