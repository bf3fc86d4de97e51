import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidArgumentError, RmmscaleError } from '../../core/errors.js';
import { EXIT } from '../../core/exit-codes.js';
import { sendError } from '../http-body.js';
import { OFFLINE_AFTER_MS } from '../store/schema.js';
import type { RoleContext, RoleFactory, RoleHandler, Store } from '../types.js';

/**
 * The application server: the DBAgent, a single-instance service whose periodic loops work
 * against the database (rebuild groups, approve patches, detect offline agents and raise alerts,
 * queue email), as Automate's DBAgent does. A lease row in the database makes it a singleton
 * across processes and hosts:
 *
 *   start ── acquire(ttl) ── ok ──► loops run while now < leaseUntil
 *     │                      └─ held by another ──► DbAgentLeaseError (one line: holder, until)
 *     └── every renewMs: acquire again (a renewal); leaseUntil moves on only when it succeeds,
 *         so a DBAgent cut off from its database stops its loops before another may take over.
 *   stop ── release (a clean shutdown frees the lease at once; a crash frees it after ttl)
 *
 * The holder is `<node>:<pid>#<random>`: only this instance knows the part after `#` (the db node
 * never returns it, and messages leave it out), so no other process can release or renew its lease.
 *
 * Each loop run is counted and timed through ctx.metrics (`loop:<name>`, `loop:<name>:rows`,
 * `loop:<name>:errors`). Runs of one loop never overlap: the next is scheduled after one ends.
 */

export const LEASE_NAME = 'dbagent';

/** Base loop periods (ms); spec.app.loopScale multiplies them (tests use small scales). */
export const LOOPS = {
  'rebuild-groups': 60_000,
  'approve-patches': 120_000,
  'detect-offline': 30_000,
  'queue-email': 60_000,
} as const;
export type LoopName = keyof typeof LOOPS;

export interface DbAgentOptions {
  leaseTtlMs?: number;
  renewMs?: number;
  /** Multiplies every loop period (spec.app.loopScale). */
  loopScale?: number;
}

export const DEFAULT_LEASE_TTL_MS = 15_000;
export const DEFAULT_LEASE_RENEW_MS = 5_000;

/** A lease holder as messages and the db RPC show it: without its private part. */
export function publicHolder(holder: string): string {
  const i = holder.indexOf('#');
  return i < 0 ? holder : holder.slice(0, i);
}

export class DbAgentLeaseError extends RmmscaleError {
  constructor(
    readonly holder: string,
    readonly untilMs: number,
  ) {
    super(
      'ERR_DBAGENT_LEASE',
      `another DBAgent is running (lease held by ${publicHolder(holder)} until ${new Date(untilMs).toISOString()}); only one may run per stack`,
      EXIT.sutFailed,
    );
  }
}

export class DbAgent {
  readonly holder: string;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly ttlMs: number;
  private readonly renewMs: number;
  private readonly scale: number;
  private leaseUntilMs = 0;
  private stopped = false;
  private running = 0;
  private idle: (() => void) | null = null;

  constructor(
    private readonly ctx: RoleContext,
    private readonly store: Store,
    opts: DbAgentOptions = {},
  ) {
    this.holder = `${ctx.spec.name}:${process.pid}#${randomBytes(12).toString('base64url')}`;
    this.ttlMs = opts.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
    this.renewMs = opts.renewMs ?? DEFAULT_LEASE_RENEW_MS;
    this.scale = opts.loopScale ?? ctx.spec.app?.loopScale ?? 1;
    if (!(this.scale > 0) || !Number.isFinite(this.scale)) throw new InvalidArgumentError(`${ctx.spec.name}.app.loopScale`, this.scale, 'a number above 0');
    if (!(this.renewMs < this.ttlMs)) throw new InvalidArgumentError('renewMs', this.renewMs, `less than the lease TTL (${this.ttlMs} ms)`);
  }

  /** True while this instance holds an unexpired lease. */
  get leader(): boolean {
    return !this.stopped && Date.now() < this.leaseUntilMs;
  }

  async start(): Promise<void> {
    const atMs = Date.now();
    if (!(await this.store.acquireLease(LEASE_NAME, this.holder, this.ttlMs, atMs))) {
      const h = await this.store.leaseHolder(LEASE_NAME);
      throw new DbAgentLeaseError(h?.holder ?? 'another instance', h?.untilMs ?? atMs);
    }
    this.leaseUntilMs = atMs + this.ttlMs;
    this.ctx.metrics.gauge('dbagent:leader', 1);
    this.every(this.renewMs, () => this.renew());
    for (const name of Object.keys(LOOPS) as LoopName[]) this.every(LOOPS[name] * this.scale, async () => void (await this.runLoop(name)));
  }

  /** Run `fn` every `ms`, never overlapping itself, until stop(). */
  private every(ms: number, fn: () => Promise<void>): void {
    const tick = (): void => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        if (this.stopped) return;
        this.running++;
        void fn().finally(() => {
          if (--this.running === 0) this.idle?.();
          if (!this.stopped) tick();
        });
      }, ms);
      this.timers.add(t);
    };
    tick();
  }

  private async renew(): Promise<void> {
    const atMs = Date.now();
    try {
      if (await this.store.acquireLease(LEASE_NAME, this.holder, this.ttlMs, atMs)) {
        this.leaseUntilMs = atMs + this.ttlMs;
        return;
      }
      this.ctx.log(`lost the DBAgent lease to another instance: stopping loops`);
      this.ctx.metrics.count('dbagent:lease-lost');
      this.ctx.metrics.gauge('dbagent:leader', 0);
      this.stopLoops();
    } catch (err) {
      // Keep trying; the loops pause on their own once leaseUntilMs passes.
      this.ctx.metrics.count('dbagent:renew-errors');
      this.ctx.log(`DBAgent lease renewal failed: ${(err as Error).message}`);
    }
  }

  /** One run of a loop; returns the rows it touched (null when it did not run). */
  async runLoop(name: LoopName): Promise<number | null> {
    if (!this.leader) return null;
    const t0 = performance.now();
    const now = Date.now();
    try {
      const rows =
        name === 'rebuild-groups'
          ? await this.store.rebuildGroups(now)
          : name === 'approve-patches'
            ? await this.store.approvePatches(now)
            : name === 'detect-offline'
              ? await this.store.detectOffline(OFFLINE_AFTER_MS, now)
              : await this.store.queueEmail(now);
      this.ctx.metrics.count(`loop:${name}`);
      this.ctx.metrics.count(`loop:${name}:rows`, rows);
      this.ctx.metrics.observeUs(`loop:${name}`, (performance.now() - t0) * 1000);
      return rows;
    } catch (err) {
      this.ctx.metrics.count(`loop:${name}:errors`);
      this.ctx.log(`DBAgent loop ${name} failed: ${(err as Error).message}`);
      return null;
    }
  }

  private stopLoops(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** Stop the loops, wait for a running one, and release the lease. */
  async stop(): Promise<void> {
    if (this.stopped && this.leaseUntilMs === 0) return;
    this.stopLoops();
    if (this.running > 0) await new Promise<void>((r) => (this.idle = r));
    this.leaseUntilMs = 0;
    this.ctx.metrics.gauge('dbagent:leader', 0);
    await this.store.releaseLease(LEASE_NAME, this.holder).catch((err: unknown) => this.ctx.log(`DBAgent lease release failed: ${(err as Error).message}`));
  }
}

class AppHandler implements RoleHandler {
  constructor(private readonly agent: DbAgent) {}
  routeOf(): string {
    return 'not-found';
  }
  handle(req: IncomingMessage, res: ServerResponse): void {
    sendError(req, res, 404, 'the application server serves no client paths');
  }
  async close(): Promise<void> {
    await this.agent.stop();
  }
}

export const createRole: RoleFactory = async (ctx) => {
  if (!ctx.store) throw new Error('the app role needs a store');
  const agent = new DbAgent(ctx, ctx.store);
  await agent.start();
  return new AppHandler(agent);
};
