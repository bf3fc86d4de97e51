import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder holding package.json, above a module (src/ under vitest, dist/src/ when built). */
export function packageRoot(metaUrl: string): string {
  return rootAbove(dirname(fileURLToPath(metaUrl)));
}

function rootAbove(dir: string): string {
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/**
 * Path of a sibling module to run as a child process (`fork`). From the compiled tree it is the
 * file itself; from TypeScript sources (vitest) it is the compiled twin under dist/, because child
 * processes run plain Node. `npm test` builds first, so the twin exists.
 */
export function runnableModulePath(metaUrl: string, rel: string): string {
  const p = fileURLToPath(new URL(rel, metaUrl));
  if (existsSync(p)) return p;
  const root = rootAbove(dirname(p));
  return join(root, 'dist', relative(root, p));
}
