/** The versions of the libraries whose behaviour shapes a measurement, for result.json's `versions`. */

const LIB_NAMES = ['undici', 'ws', 'hdr-histogram-js', 'yargs', 'better-sqlite3', 'pg', 'yaml', 'ajv', 'chart.js'];

export async function libraryVersions(): Promise<Record<string, string>> {
  const { createRequire } = await import('node:module');
  const { readFileSync } = await import('node:fs');
  const require = createRequire(import.meta.url);
  const out: Record<string, string> = {};
  for (const name of LIB_NAMES) {
    try {
      let dir = require.resolve(name);
      // Walk up to the package's own package.json.
      for (let i = 0; i < 6; i++) {
        dir = dir.slice(0, dir.lastIndexOf('/'));
        try {
          const pkg = JSON.parse(readFileSync(`${dir}/package.json`, 'utf8')) as { name?: string; version?: string };
          if (pkg.name === name && pkg.version) {
            out[name] = pkg.version;
            break;
          }
        } catch {
          // not here
        }
      }
    } catch {
      // not installed
    }
  }
  return out;
}
