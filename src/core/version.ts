import { readFileSync } from 'node:fs';

let cached: string | null = null;

/** rmmscale's own version, from package.json (dist/src/core → ../../../package.json). */
export function toolVersion(): string {
  if (cached) return cached;
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'rmmscale' && pkg.version) return (cached = pkg.version);
    } catch {
      // try the next layout (source vs dist)
    }
  }
  return (cached = 'unknown');
}
