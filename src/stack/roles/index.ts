import type { RoleFactory, RoleName } from '../types.js';

/** Roles by the name topology files use; each loads only in the process that runs it. */
export const ROLES: Partial<Record<RoleName, () => Promise<{ createRole: RoleFactory }>>> = {
  single: () => import('./single.js'),
  web: () => import('./web.js'),
  app: () => import('./app.js'),
  db: () => import('./db.js'),
  proxy: () => import('./proxy.js'),
};

export async function loadRole(role: RoleName): Promise<RoleFactory> {
  const load = ROLES[role];
  if (!load) throw new Error(`role ${role} is not built yet`);
  return (await load()).createRole;
}
