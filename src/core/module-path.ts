import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Path of a sibling module to run as a child process (`fork`). From the compiled tree it is the
 * file itself; from TypeScript sources (vitest) it is the compiled twin under dist/, because child
 * processes run plain Node. `npm test` builds first, so the twin exists.
 */
export function runnableModulePath(metaUrl: string, rel: string): string {
  const p = fileURLToPath(new URL(rel, metaUrl));
  if (existsSync(p)) return p;
  let root = dirname(p);
  while (!existsSync(join(root, 'package.json')) && dirname(root) !== root) root = dirname(root);
  return join(root, 'dist', relative(root, p));
}
