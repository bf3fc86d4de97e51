import type { ErrorObject } from 'ajv';
import { editDistance } from '../../core/edit-distance.js';
import { formatValue } from '../../core/errors.js';
import { schemaValidator } from '../../core/schemas.js';
import type { Segment } from './compile-protocol.js';

/**
 * A protocol document's schema problems, one per path, worded like the scenario loader's:
 * `PATH: expected …, got …` with the schema's `errorMessage` where it has one.
 */

interface SchemaNode {
  type?: string | string[];
  enum?: unknown[];
  errorMessage?: string;
  properties?: Record<string, SchemaNode>;
  $ref?: string;
}

export interface SchemaProblem {
  at: Segment[];
  detail: string;
}

const TYPE_WORDS: Record<string, string> = { object: 'a map', array: 'a list', string: 'a string', integer: 'a whole number', number: 'a number', boolean: 'true or false' };

function segments(instancePath: string, data: unknown): Segment[] {
  const out: Segment[] = [];
  let cur = data;
  for (const raw of instancePath.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out.push(Array.isArray(cur) && /^\d+$/.test(part) ? Number(part) : part);
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[part] : undefined;
  }
  return out;
}

function expectedOf(node: SchemaNode | undefined): string {
  const defs = (schemaValidator('protocol').schema as { definitions: Record<string, SchemaNode> }).definitions;
  const n = node?.$ref && !node.errorMessage ? defs[node.$ref.replace('#/definitions/', '')] : node;
  if (n?.errorMessage) return n.errorMessage.replace(/^expected /, '');
  if (n?.enum) return `one of ${n.enum.map(String).join(', ')}`;
  const types = n?.type === undefined ? [] : Array.isArray(n.type) ? n.type : [n.type];
  return types.map((t) => TYPE_WORDS[t] ?? t).join(' or ') || 'a value';
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
  const at = segments(e.instancePath, data);
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
