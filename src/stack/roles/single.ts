import type { RoleFactory } from '../types.js';
import { DbAgent } from './app.js';
import { WebHandler } from './web.js';

/** The single server: web (agent and user paths) and the DBAgent loops in one process, one DB. */
export const createRole: RoleFactory = async (ctx) => {
  const agent = new DbAgent(ctx, ctx.store!);
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
