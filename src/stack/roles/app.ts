import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidArgumentError } from '../../core/errors.js';
import { sendError } from '../http-body.js';
import { LeaseFencedError } from '../store/errors.js';
import { OFFLINE_AFTER_MS } from '../store/schema.js';
import type { RoleContext, RoleFactory, RoleHandler, Store } from '../types.js';

/**
 * The application server: the DBAgent, a single-instance service whose periodic loops work
 * against the database (rebuild groups, approve patches, detect offline agents and raise alerts,
 * queue email), as Automate's DBAgent does. A lease row in the database makes it a singleton
 * across processes and hosts, and a standby waits on it:
 *
 *   start ── acquire(ttl) ── term T ──► leader: loops run while now < leaseUntil, each write fenced by T
 *     │                    └─ held by another ──► standby: try again every ttl/30, and at the lease's lapse
 *     └── leader, every renewMs: acquire again (a renewal keeps T); leaseUntil moves on only when it
 *         succeeds, so a DBAgent cut off from its database stops its loops before another may take
 *         over; a renewal refused (another holds it) demotes it to standby.
 *   stop ── release (a clean shutdown frees the lease at once; a crash frees it after ttl)
 *
 * Fencing: each lease holder gets a term (the store's fencing token, a new one for each new holder),
 * and every loop write carries it; the store refuses a write whose term is over (LeaseFencedError).
 * So a leader paused past its TTL (SIGSTOP, a long GC) cannot write after it wakes, even if a loop
 * run was already under way: the old leader's writes and the new one's never interleave.
 *
 * The holder is `<node>:<pid>#<random>`: only this instance knows the part after `#` (the db node
 * never returns it, and messages leave it out), so no other process can release or renew its lease.
 *
 * Each loop run is counted and timed through ctx.metrics (`loop:<name>`, `loop:<name>:rows`,
 * `loop:<name>:errors`; `dbagent:fenced` for a refused write). Runs of one loop never overlap: the
 * next is scheduled after one ends. Gauges `dbagent:leader` and `dbagent:standby` say which it is;
 * `dbagent:term` its term, `dbagent:led-since-ms` when it took the lease and `dbagent:lease-until-ms`
 * when its lease lapses unless renewed (epoch ms, 0 when it does not lead), `dbagent:lease-ttl-ms`
 * the TTL it holds the lease for: a run reads them to time a takeover (run/takeover.ts).
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

export type DbAgentState = 'standby' | 'leader' | 'stopped';

export class DbAgent {
  readonly holder: string;
  private readonly loopTimers = new Set<NodeJS.Timeout>();
  private leaseTimer: NodeJS.Timeout | null = null;
  private readonly ttlMs: number;
  private readonly renewMs: number;
  private readonly standbyPollMs: number;
  private readonly scale: number;
  private leaseUntilMs = 0;
  /** The lease term this instance leads in (its fencing token); 0 when it leads in none. */
  private term = 0;
  private state_: DbAgentState = 'standby';
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
    this.standbyPollMs = Math.max(10, Math.floor(this.ttlMs / 30));
    this.scale = opts.loopScale ?? ctx.spec.app?.loopScale ?? 1;
    if (!(this.scale > 0) || !Number.isFinite(this.scale)) throw new InvalidArgumentError(`${ctx.spec.name}.app.loopScale`, this.scale, 'a number above 0');
    if (!(this.renewMs < this.ttlMs)) throw new InvalidArgumentError('renewMs', this.renewMs, `less than the lease TTL (${this.ttlMs} ms)`);
  }

  /** True while this instance holds an unexpired lease. */
  get leader(): boolean {
    return this.state_ === 'leader' && Date.now() < this.leaseUntilMs;
  }

  get state(): DbAgentState {
    return this.state_;
  }

  /** The lease term it leads in (0: none). */
  get leaseTerm(): number {
    return this.term;
  }

  /** Lead if the lease is free, else stand by and take over when it lapses. Never throws for a held lease. */
  async start(): Promise<void> {
    this.ctx.metrics.gauge('dbagent:leader', 0);
    this.ctx.metrics.gauge('dbagent:lease-ttl-ms', this.ttlMs);
    this.ctx.metrics.gauge('dbagent:led-since-ms', 0);
    if (!(await this.tryLead())) {
      const h = await this.store.leaseHolder(LEASE_NAME);
      this.ctx.log(`standby: the DBAgent lease is held by ${publicHolder(h?.holder ?? 'another instance')}${h ? ` until ${new Date(h.untilMs).toISOString()}` : ''}; taking over when it lapses`);
      this.standBy(h?.untilMs ?? null);
    }
  }

  /** Try the lease once; on success become the leader. */
  private async tryLead(): Promise<boolean> {
    const atMs = Date.now();
    const term = await this.store.acquireLease(LEASE_NAME, this.holder, this.ttlMs, atMs);
    if (term === null || this.state_ === 'stopped') return false;
    // When this instance learned it leads (the acquire's answer), on the host's clock: a run
    // compares it with the time of the fault that ended the last leader (run/takeover.ts).
    const ledAtMs = Date.now();
    this.leaseUntilMs = atMs + this.ttlMs;
    this.term = term;
    this.state_ = 'leader';
    this.ctx.metrics.gauge('dbagent:leader', 1);
    this.ctx.metrics.gauge('dbagent:standby', 0);
    this.ctx.metrics.gauge('dbagent:term', term);
    this.ctx.metrics.gauge('dbagent:led-since-ms', ledAtMs);
    this.ctx.metrics.gauge('dbagent:lease-until-ms', this.leaseUntilMs);
    this.ctx.log(`DBAgent leading (lease term ${term})`);
    this.armLease(this.renewMs, () => this.renew());
    for (const name of Object.keys(LOOPS) as LoopName[]) this.every(LOOPS[name] * this.scale, async () => void (await this.runLoop(name)));
    return true;
  }

  /** Stand by; `untilMs`: when the holder's lease lapses, where known. */
  private standBy(untilMs: number | null = null): void {
    this.state_ = 'standby';
    this.term = 0;
    this.ctx.metrics.gauge('dbagent:leader', 0);
    this.ctx.metrics.gauge('dbagent:standby', 1);
    this.ctx.metrics.gauge('dbagent:led-since-ms', 0);
    this.ctx.metrics.gauge('dbagent:lease-until-ms', 0);
    this.armLease(this.nextTryMs(untilMs), () => this.standbyTry());
  }

  /** The poll, or 1 ms past the holder's lapse if that comes first (the store frees a lease once `now > untilMs`). */
  private nextTryMs(untilMs: number | null): number {
    return untilMs === null ? this.standbyPollMs : Math.max(1, Math.min(this.standbyPollMs, untilMs + 1 - Date.now()));
  }

  /**
   * One try of a standby. Failing, the next try is at the poll interval or at the moment the
   * holder's lease lapses, whichever comes first: the poll catches a lease released early (a clean
   * stop), the lapse a leader that died, so the loops pause for the rest of the dead leader's TTL
   * and not up to a poll beyond it.
   */
  private async standbyTry(): Promise<void> {
    let untilMs: number | null = null;
    try {
      if (await this.tryLead()) return;
      untilMs = (await this.store.leaseHolder(LEASE_NAME))?.untilMs ?? null;
    } catch (err) {
      this.ctx.metrics.count('dbagent:renew-errors');
      this.ctx.log(`DBAgent standby could not reach the lease: ${(err as Error).message}`);
    }
    if (this.state_ === 'standby') this.armLease(this.nextTryMs(untilMs), () => this.standbyTry());
  }

  /** The one lease timer: a leader's renewal or a standby's poll. */
  private armLease(ms: number, fn: () => Promise<void>): void {
    if (this.leaseTimer) clearTimeout(this.leaseTimer);
    this.leaseTimer = setTimeout(() => {
      this.leaseTimer = null;
      if (this.state_ !== 'stopped') void fn();
    }, ms);
  }

  /** Run `fn` every `ms`, never overlapping itself, until demoted or stopped. */
  private every(ms: number, fn: () => Promise<void>): void {
    const tick = (): void => {
      const t = setTimeout(() => {
        this.loopTimers.delete(t);
        if (this.state_ !== 'leader') return;
        this.running++;
        void fn().finally(() => {
          if (--this.running === 0) this.idle?.();
          if (this.state_ === 'leader') tick();
        });
      }, ms);
      this.loopTimers.add(t);
    };
    tick();
  }

  private async renew(): Promise<void> {
    const atMs = Date.now();
    try {
      const term = await this.store.acquireLease(LEASE_NAME, this.holder, this.ttlMs, atMs);
      if (this.state_ !== 'leader') return;
      if (term === this.term) {
        this.leaseUntilMs = atMs + this.ttlMs;
        this.ctx.metrics.gauge('dbagent:lease-until-ms', this.leaseUntilMs);
        this.armLease(this.renewMs, () => this.renew());
        return;
      }
      // Held by another (null), or ours again under a new term after it lapsed: either way this
      // term is over. Stand down; a standby takes the lease again with its own term.
      this.ctx.log(term === null ? 'lost the DBAgent lease to another instance: standing by' : `the DBAgent lease lapsed (term ${this.term} over): standing by`);
      this.ctx.metrics.count('dbagent:lease-lost');
      this.demote();
    } catch (err) {
      // Keep trying; the loops pause on their own once leaseUntilMs passes.
      this.ctx.metrics.count('dbagent:renew-errors');
      this.ctx.log(`DBAgent lease renewal failed: ${(err as Error).message}`);
      if (this.state_ === 'leader') this.armLease(this.renewMs, () => this.renew());
    }
  }

  private demote(): void {
    this.stopLoops();
    this.leaseUntilMs = 0;
    this.standBy();
  }

  /** One run of a loop; returns the rows it touched (null when it did not run). */
  async runLoop(name: LoopName): Promise<number | null> {
    if (!this.leader) return null;
    const t0 = performance.now();
    const now = Date.now();
    const fence = { name: LEASE_NAME, token: this.term };
    try {
      const rows =
        name === 'rebuild-groups'
          ? await this.store.rebuildGroups(now, fence)
          : name === 'approve-patches'
            ? await this.store.approvePatches(now, fence)
            : name === 'detect-offline'
              ? await this.store.detectOffline(OFFLINE_AFTER_MS, now, fence)
              : await this.store.queueEmail(now, fence);
      this.ctx.metrics.count(`loop:${name}`);
      this.ctx.metrics.count(`loop:${name}:rows`, rows);
      this.ctx.metrics.observeUs(`loop:${name}`, (performance.now() - t0) * 1000);
      return rows;
    } catch (err) {
      if (err instanceof LeaseFencedError) {
        this.ctx.metrics.count('dbagent:fenced');
        this.ctx.log(`DBAgent loop ${name} refused: ${err.message}; standing by`);
        if (this.state_ === 'leader' && this.term === fence.token) this.demote();
        return null;
      }
      this.ctx.metrics.count(`loop:${name}:errors`);
      this.ctx.log(`DBAgent loop ${name} failed: ${(err as Error).message}`);
      return null;
    }
  }

  private stopLoops(): void {
    for (const t of this.loopTimers) clearTimeout(t);
    this.loopTimers.clear();
  }

  /** Stop the loops, wait for a running one, and release the lease (when leading). */
  async stop(): Promise<void> {
    if (this.state_ === 'stopped') return;
    const wasLeader = this.state_ === 'leader';
    this.state_ = 'stopped';
    if (this.leaseTimer) clearTimeout(this.leaseTimer);
    this.leaseTimer = null;
    this.stopLoops();
    if (this.running > 0) await new Promise<void>((r) => (this.idle = r));
    this.leaseUntilMs = 0;
    this.ctx.metrics.gauge('dbagent:leader', 0);
    this.ctx.metrics.gauge('dbagent:standby', 0);
    this.ctx.metrics.gauge('dbagent:led-since-ms', 0);
    this.ctx.metrics.gauge('dbagent:lease-until-ms', 0);
    if (wasLeader) await this.store.releaseLease(LEASE_NAME, this.holder).catch((err: unknown) => this.ctx.log(`DBAgent lease release failed: ${(err as Error).message}`));
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
  const agent = new DbAgent(ctx, ctx.store, { leaseTtlMs: ctx.spec.app?.leaseTtlMs, renewMs: ctx.spec.app?.renewMs });
  await agent.start();
  return new AppHandler(agent);
};
