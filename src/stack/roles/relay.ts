import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { StackError } from '../../core/errors.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { AuditSpool } from '../relay/audit-spool.js';
import { AnalyticsClient } from '../analytics/analytics-client.js';
import { SessionApi } from '../relay/session-api.js';
import { SiblingForwarder } from '../relay/sibling-forward.js';
import { DEFAULT_TELEMETRY_BATCH, type TelemetryBatchOptions } from '../relay/telemetry-batcher.js';
import { TelemetrySpool } from '../relay/telemetry-spool.js';
import { TunnelServer } from '../relay/tunnel-server.js';
import type { NodeMetricsApi, RoleContext, RoleFactory, RoleHandler } from '../types.js';

/**
 * The relay role (relay topology): agents hold WebSocket tunnels to it, it batches their
 * telemetry into the database, and it brokers operator sessions down those tunnels. This file
 * wires the parts in src/stack/relay/:
 *
 *   tunnel-server.ts     agent side: WebSocket tunnels, telemetry batches and acks, presence
 *   session-api.ts       operator side: POST /api/v1/sessions, brokered down the agent's tunnel
 *   sibling-forward.ts   a session for an agent held by a sibling relay, forwarded there once
 *
 * Test and bench hook: RMMSCALE_RELAY_BATCH="SAMPLES:DELAY_MS[:IN_FLIGHT]" overrides the batch
 * policy ("1:0:32" is the unbatched peer in bench/relay.ts).
 */

export const RELAY_BATCH_ENV = 'RMMSCALE_RELAY_BATCH';

/** Parse RMMSCALE_RELAY_BATCH; a bad value is a one-line StackError naming the variable. */
export function batchPolicyFrom(raw: string | undefined): TelemetryBatchOptions {
  if (raw === undefined || raw === '') return DEFAULT_TELEMETRY_BATCH;
  const m = /^(\d+):(\d+)(?::(\d+))?$/.exec(raw.trim());
  const samples = m ? Number(m[1]) : NaN;
  const inFlight = m?.[3] !== undefined ? Number(m[3]) : DEFAULT_TELEMETRY_BATCH.maxInFlight;
  if (!m || samples < 1 || samples > 10_000 || Number(m[2]) > 60_000 || inFlight < 1 || inFlight > 256) {
    throw new StackError(`${RELAY_BATCH_ENV}: expected SAMPLES:DELAY_MS[:IN_FLIGHT] with 1-10000 samples, 0-60000 ms, 1-256 in flight, got ${JSON.stringify(raw)}`);
  }
  return { ...DEFAULT_TELEMETRY_BATCH, maxSamples: samples, maxDelayMs: Number(m[2]), maxInFlight: inFlight };
}

/** How long a stopping relay keeps forwarding spooled telemetry to the analytics node. */
const SPOOL_DRAIN_MS = 1000;

export class RelayHandler implements RoleHandler {
  private readonly metrics: NodeMetricsApi;
  private readonly log: (m: string) => void;
  private readonly forwarder: SiblingForwarder;
  private readonly api: SessionApi;
  private readonly tunnels: TunnelServer;
  private readonly gaugeTimer: NodeJS.Timeout;
  /** The analytics node, when the stack has one: telemetry goes there, not into the control plane's database. */
  private readonly analytics: AnalyticsClient | null;
  private shutDown = false;
  private lastErrorLogMs = 0;

  private readonly audit: AuditSpool;
  /** Telemetry waiting for the analytics node (null without one). */
  private readonly spool: TelemetrySpool | null;
  private readonly ownSpoolDir: string | null;

  constructor(ctx: RoleContext, batch: TelemetryBatchOptions) {
    if (!ctx.store) throw new StackError(`${ctx.spec.name}: the relay role needs a store (spec.db)`);
    const { name, secret } = ctx.spec;
    this.metrics = ctx.metrics;
    this.log = ctx.log;
    this.forwarder = new SiblingForwarder(name, ctx.spec.relay?.siblings ?? [], ctx.store, ctx.metrics, { secret, caFiles: ctx.spec.relay?.siblingCaFiles });
    const store = ctx.store;
    // Without a spool file from the launcher: one in a temp folder of this process, removed at close if empty.
    this.ownSpoolDir = ctx.spec.relay?.auditSpoolFile ? null : mkdtempSync(join(tmpdir(), `rmmscale-${name}-`));
    const spoolFile = ctx.spec.relay?.auditSpoolFile ?? join(this.ownSpoolDir!, 'audit.spool');
    this.audit = new AuditSpool({ file: spoolFile, store, metrics: ctx.metrics, logError: (m) => this.logError(m), maxRecords: ctx.spec.relay?.auditSpoolMax });
    this.api = new SessionApi({ name, secret, metrics: ctx.metrics, store, audit: this.audit, logError: (m) => this.logError(m), tunnelOf: (agentId) => this.tunnels.openTunnel(agentId), forwarder: this.forwarder });
    const analyticsUrl = ctx.spec.relay?.analyticsUrl;
    // One connection per batch the batcher may have committing: a slow sink holds at most those.
    this.analytics = analyticsUrl ? new AnalyticsClient(analyticsUrl, secret, { connections: batch.maxInFlight }) : null;
    const sink = this.analytics;
    // With an analytics node, telemetry is acked once on this relay's disk and forwarded behind the
    // ack (telemetry-spool.ts): a slow analytics plane delays alerts, not the agents.
    this.spool = sink
      ? new TelemetrySpool({
          dir: ctx.spec.relay?.telemetrySpoolDir ?? join(this.ownSpoolDir ?? dirname(spoolFile), `${name}-telemetry`),
          sink: (samples) => sink.telemetry(samples),
          metrics: ctx.metrics,
          logError: (m) => this.logError(m),
          maxInFlight: batch.maxInFlight,
          maxSamples: ctx.spec.relay?.telemetrySpoolMax,
        })
      : null;
    const spool = this.spool;
    this.tunnels = new TunnelServer({
      name,
      secret,
      store: ctx.store,
      metrics: ctx.metrics,
      batch,
      telemetrySink: spool ? (samples) => spool.append(samples) : undefined,
      sessions: this.api.sessions,
      logError: (m) => this.logError(m),
    });
    this.gaugeTimer = setInterval(() => this.gauges(), 1000);
    this.gaugeTimer.unref();
    this.gauges();
  }

  /** Take over the audit records a predecessor on the same spool file left. */
  async load(): Promise<void> {
    await this.audit.load();
    await this.spool?.load();
  }

  /** At most one error line a second, so a database outage cannot flood stderr. */
  private logError(message: string): void {
    if (this.shutDown) return; // work cut off by the shutdown deadline fails against a closed store
    const now = Date.now();
    if (now - this.lastErrorLogMs < 1000) return;
    this.lastErrorLogMs = now;
    this.log(message);
  }

  private gauges(): void {
    this.metrics.gauge('tunnels-open', this.tunnels.size);
    this.metrics.gauge('sessions-pending', this.api.sessions.size);
    this.metrics.gauge('telemetry-buffered', this.tunnels.telemetryBuffered);
    if (this.spool) {
      this.metrics.gauge('telemetry-spooled', this.spool.waiting);
      this.metrics.gauge('telemetry-spool-age-ms', Math.round(this.spool.oldestAgeMs));
    }
    this.metrics.gauge('presence-waiting', this.tunnels.presenceWaiting);
  }

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.tunnels.upgrade(req, socket, head);
  }

  routeOf(method: string, path: string): string {
    return this.api.routeOf(method, path);
  }

  handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    return this.api.handle(req, res);
  }

  setSiblings(urls: string[]): void {
    this.forwarder.setSiblings(urls);
  }

  /** The tunnel side's shutdown (about 3 s at most), then the sibling pool. */
  async close(): Promise<void> {
    clearInterval(this.gaugeTimer);
    await this.tunnels.close();
    if (this.spool) {
      // What the analytics node takes within the deadline; the rest stays on disk for the next relay here.
      await this.spool.drain(SPOOL_DRAIN_MS);
      await this.spool.close();
    }
    await this.audit.close();
    if (this.ownSpoolDir && this.audit.size === 0 && (this.spool?.waiting ?? 0) === 0) rmSync(this.ownSpoolDir, { recursive: true, force: true });
    await this.forwarder.close();
    await this.analytics?.close();
    this.shutDown = true;
  }
}

export const createRole: RoleFactory = async (ctx) => {
  const relay = new RelayHandler(ctx, batchPolicyFrom(process.env[RELAY_BATCH_ENV]));
  await relay.load();
  return relay;
};
