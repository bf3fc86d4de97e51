import { StackError } from '../../core/errors.js';
import type { RoleFactory, RoleName } from '../types.js';

/**
 * Roles by the name topology files use; each module loads only in the process that runs it (no
 * registration by import side effect). Every RoleName must have an entry: a new name in
 * ROLE_NAMES without a module here fails to compile.
 */
export const ROLES = {
  single: () => import('./single.js'),
  web: () => import('./web.js'),
  app: () => import('./app.js'),
  db: () => import('./db.js'),
  proxy: () => import('./proxy.js'),
  relay: () => import('./relay.js'),
  analytics: () => import('./analytics.js'),
} satisfies Record<RoleName, () => Promise<{ createRole: RoleFactory }>>;

export type RegisteredRole = keyof typeof ROLES;

export async function loadRole(role: string): Promise<RoleFactory> {
  if (!Object.hasOwn(ROLES, role)) throw new StackError(`role: expected one of ${Object.keys(ROLES).join(', ')}, got ${JSON.stringify(role)}`);
  return (await ROLES[role as RegisteredRole]()).createRole;
}
