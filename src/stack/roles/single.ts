import type { RoleFactory } from '../types.js';
import { DbAgent } from './app.js';
import { WebHandler } from './web.js';

/**
 * The single server, as Automate starts out: web (agent and user paths) and the DBAgent loops in
 * one process on the embedded SQLite. Its dbProfile (when set) models the embedded database's
 * connections × per-query time, and the node's request profile the web tier's workers.
 */
export const createRole: RoleFactory = async (ctx) => {
  if (!ctx.store) throw new Error('the single role needs a store');
  const agent = new DbAgent(ctx, ctx.store, { leaseTtlMs: ctx.spec.app?.leaseTtlMs, renewMs: ctx.spec.app?.renewMs });
  await agent.start();
  const web = new WebHandler(ctx, 'both');
  return {
    routeOf: (m, p) => web.routeOf(m, p),
    handle: (req, res) => web.handle(req, res),
    close: async () => {
      await agent.stop();
      await web.close();
    },
  };
};
