import type { ErrorObject } from 'ajv';
import { editDistance } from '../../core/edit-distance.js';
import { formatValue } from '../../core/errors.js';
import { schemaValidator } from '../../core/schemas.js';
import { schemaExpected, schemaSegments, type SchemaNode } from '../../core/schema-words.js';
import type { Segment } from './compile-protocol.js';

/**
 * A protocol document's schema problems, one per path, worded like the scenario loader's:
 * `PATH: expected …, got …` with the schema's `errorMessage` where it has one.
 */

export interface SchemaProblem {
  at: Segment[];
  detail: string;
}

function expectedOf(node: SchemaNode | undefined): string {
  return schemaExpected('protocol', node);
}

function near(key: string, allowed: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = 3;
  for (const a of allowed) {
    const d = a.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key.toLowerCase(), a.toLowerCase());
    if (d < bestD && d <= Math.max(1, Math.floor(a.length / 3))) [best, bestD] = [a, d];
  }
  return best;
}

function describe(e: ErrorObject, data: unknown): SchemaProblem | null {
  const at = schemaSegments(e.instancePath, data);
  const parent = e.parentSchema as SchemaNode | undefined;
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(p.additionalProperty);
      const allowed = Object.keys(parent?.properties ?? {}).filter((k) => k !== '$schema');
      const guess = near(key, allowed);
      return { at: [...at, key], detail: `expected a known key (${guess ? `did you mean "${guess}"?` : allowed.join(', ')}), got ${formatValue(key)}` };
    }
    case 'required': {
      const key = String(p.missingProperty);
      return { at: [...at, key], detail: `expected ${expectedOf(parent?.properties?.[key])}, got nothing` };
    }
    case 'propertyNames':
      return null; // the pattern error on the name says it
    case 'pattern':
      if (e.propertyName !== undefined) return { at: [...at, e.propertyName], detail: `expected ${expectedOf(parent)}, got ${formatValue(e.propertyName)}` };
      return { at, detail: `expected ${expectedOf(parent)}, got ${formatValue(e.data)}` };
    case 'minItems':
      return { at, detail: `expected at least ${String(p.limit)} item${p.limit === 1 ? '' : 's'}, got ${formatValue(e.data)}` };
    case 'enum':
      return { at, detail: `expected one of ${(p.allowedValues as unknown[]).map(String).join(', ')}, got ${formatValue(e.data)}` };
    default:
      return { at, detail: `expected ${expectedOf(parent)}, got ${formatValue(e.data)}` };
  }
}

export function protocolSchemaProblems(data: unknown): SchemaProblem[] {
  const validate = schemaValidator('protocol');
  if (validate(data)) return [];
  const byPath = new Map<string, SchemaProblem>();
  for (const e of validate.errors ?? []) {
    const problem = describe(e, data);
    const key = problem ? problem.at.join('\0') : '';
    if (problem && !byPath.has(key)) byPath.set(key, problem);
  }
  return [...byPath.values()];
}
