import type { IncomingMessage, ServerResponse } from 'node:http';
import { RmmscaleError } from '../../core/errors.js';
import { EXIT } from '../../core/exit-codes.js';
import { sendError } from '../http-body.js';
import { OFFLINE_AFTER_MS } from '../store/schema.js';
import type { RoleContext, RoleFactory, RoleHandler, Store } from '../types.js';

/**
 * The application server: the DBAgent, a single-instance service running periodic loops against
 * the database (rebuild groups, approve patches, detect offline agents, queue email). A lease row
 * in the database makes it a singleton across processes: a second instance refuses to start.
 */

export const LEASE_NAME = 'dbagent';
const LEASE_TTL_MS = 10_000;
const LEASE_RENEW_MS = 3_000;

/** Base loop periods (ms); spec.app.loopScale multiplies them (tests use small scales). */
export const LOOPS = {
  'rebuild-groups': 60_000,
  'approve-patches': 120_000,
  'detect-offline': 30_000,
  'queue-email': 60_000,
} as const;

export class DbAgentLeaseError extends RmmscaleError {
  constructor(holder: string, untilMs: number) {
    super(
      'ERR_DBAGENT_LEASE',
      `another DBAgent is running (lease held by ${holder} until ${new Date(untilMs).toISOString()}); only one may run per stack`,
      EXIT.sutFailed,
    );
  }
}

export class DbAgent {
  private readonly timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private readonly holder: string;

  constructor(
    private readonly ctx: RoleContext,
    private readonly store: Store,
  ) {
    this.holder = `${ctx.spec.name}:${process.pid}`;
  }

  async start(): Promise<void> {
    if (!(await this.store.acquireLease(LEASE_NAME, this.holder, LEASE_TTL_MS, Date.now()))) {
      const h = await this.store.leaseHolder(LEASE_NAME);
      throw new DbAgentLeaseError(h?.holder ?? 'unknown', h?.untilMs ?? Date.now());
    }
    this.timers.push(
      setInterval(() => {
        void this.store.acquireLease(LEASE_NAME, this.holder, LEASE_TTL_MS, Date.now()).then((ok) => {
          if (!ok && !this.stopped) {
            this.ctx.log('lost the DBAgent lease: stopping loops');
            void this.stop();
          }
        });
      }, LEASE_RENEW_MS),
    );
    const scale = this.ctx.spec.app?.loopScale ?? 1;
    const run = async (name: keyof typeof LOOPS): Promise<void> => {
      if (this.stopped) return;
      const t0 = performance.now();
      const now = Date.now();
      const touched =
        name === 'rebuild-groups'
          ? await this.store.rebuildGroups(now)
          : name === 'approve-patches'
            ? await this.store.approvePatches(now)
            : name === 'detect-offline'
              ? await this.store.detectOffline(OFFLINE_AFTER_MS, now)
              : await this.store.queueEmail(now);
      this.ctx.metrics.count(`loop:${name}`);
      this.ctx.metrics.count(`loop:${name}:rows`, touched);
      this.ctx.metrics.observeUs(`loop:${name}`, (performance.now() - t0) * 1000);
    };
    for (const name of Object.keys(LOOPS) as Array<keyof typeof LOOPS>) {
      this.timers.push(
        setInterval(() => {
          run(name).catch((err: unknown) => this.ctx.log(`loop ${name} failed: ${(err as Error).message}`));
        }, LOOPS[name] * scale),
      );
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    await this.store.releaseLease(LEASE_NAME, this.holder).catch(() => undefined);
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
