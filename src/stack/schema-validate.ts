import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { formatValue } from '../core/errors.js';

/**
 * Validation of topology and profile files against the JSON Schemas shipped in schemas/. Every
 * problem is listed, each with its path in the file (`nodes[2].role: expected one of …, got "x"`),
 * so a file is fixed in one pass instead of one error per run.
 */

export type SchemaName = 'topology' | 'profile-set' | 'capacity-profile';

/** schemas/ beside package.json, found from this module (src/ under vitest, dist/src/ when built). */
function schemasDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, 'schemas');
}

let compiled: Map<SchemaName, ValidateFunction> | null = null;

function validator(name: SchemaName): ValidateFunction {
  if (!compiled) {
    const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true });
    const dir = schemasDir();
    for (const n of ['capacity-profile', 'profile-set', 'topology'] as const) ajv.addSchema(JSON.parse(readFileSync(join(dir, `${n}.schema.json`), 'utf8')) as object);
    compiled = new Map();
    for (const n of ['capacity-profile', 'profile-set', 'topology'] as const) compiled.set(n, ajv.getSchema(`https://rmmscale.dev/schemas/${n}.schema.json`)!);
  }
  return compiled.get(name)!;
}

/** `/nodes/2/role` → `nodes[2].role`, under a prefix. */
export function jsonPath(prefix: string, instancePath: string): string {
  let out = prefix;
  for (const raw of instancePath.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(part) ? `[${part}]` : out ? `.${part}` : part;
  }
  return out || '(top level)';
}

function describe(e: ErrorObject, prefix: string): string | null {
  const at = jsonPath(prefix, e.instancePath);
  const p = e.params as Record<string, unknown>;
  // A bad key (propertyNames): ajv reports the key's own error, then a summary we drop.
  if (e.keyword === 'propertyNames') return null;
  if (e.propertyName !== undefined) return `${jsonPath(prefix, `${e.instancePath}/${e.propertyName}`)}: the name must match ${String(p.pattern ?? 'the schema')}, got ${JSON.stringify(e.propertyName)}`;
  switch (e.keyword) {
    case 'required':
      return `${jsonPath(prefix, `${e.instancePath}/${String(p.missingProperty)}`)}: is required`;
    case 'additionalProperties': {
      const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      return `${jsonPath(prefix, `${e.instancePath}/${String(p.additionalProperty)}`)}: is not a known field${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`;
    }
    case 'enum':
      return `${at}: expected one of ${(p.allowedValues as unknown[]).map((v) => String(v)).join(', ')}, got ${formatValue(e.data)}`;
    case 'type':
      return `${at}: expected ${String(p.type)}, got ${formatValue(e.data)}`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `${at}: expected a number ${String(p.comparison)} ${String(p.limit)}, got ${formatValue(e.data)}`;
    case 'pattern':
      return `${at}: expected a value matching ${String(p.pattern)}, got ${formatValue(e.data)}`;
    default:
      return `${at}: ${e.message ?? 'is invalid'}, got ${formatValue(e.data)}`;
  }
}

/** Every schema problem of `data`, one line each, `SOURCE: path: problem` (empty: valid). */
export function schemaProblems(name: SchemaName, data: unknown, source: string): string[] {
  const validate = validator(name);
  if (validate(data)) return [];
  const lines = (validate.errors ?? []).map((e) => describe(e, '')).filter((l): l is string => l !== null);
  return [...new Set(lines.map((l) => `${source}: ${l}`))];
}
