import type { ErrorObject } from 'ajv';
import { formatValue } from '../core/errors.js';
import { schemaValidator } from '../core/schemas.js';

/**
 * Validation of topology and profile files against the JSON Schemas shipped in schemas/. Every
 * problem is listed, each with its path in the file (`nodes[2].role: expected one of …, got "x"`),
 * so a file is fixed in one pass instead of one error per run.
 */

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
export function schemaProblems(name: 'topology' | 'profile-set' | 'capacity-profile', data: unknown, source: string): string[] {
  const validate = schemaValidator(name);
  if (validate(data)) return [];
  const lines = (validate.errors ?? []).map((e) => describe(e, '')).filter((l): l is string => l !== null);
  return [...new Set(lines.map((l) => `${source}: ${l}`))];
}
