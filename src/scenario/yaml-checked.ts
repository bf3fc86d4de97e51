import type { ErrorObject } from 'ajv';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { ValidationError, formatValue } from '../core/errors.js';
import { editDistance } from '../core/edit-distance.js';
import { schemaValidator } from '../core/schemas.js';
import { schemaExpected, schemaSegments, yamlOffsetOf, type SchemaNode } from '../core/schema-words.js';
import { Problems, formatPath, type Problem, type Segment } from './problems.js';

/**
 * A YAML file checked against one of the shipped schemas, then resolved by `resolve` (which adds
 * the semantic problems): every problem as `FILE:LINE PATH: …`, all thrown as one ValidationError.
 * Scenario files and mapping files (src/scenario/mapping.ts) both come through here.
 */
export function parseYamlChecked<T>(text: string, file: string, schemaName: 'scenario' | 'mapping', resolve: (data: unknown, p: Problems) => T): T {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const lineAt = (offset: number): number => Math.max(1, lineCounter.linePos(offset).line);
  if (doc.errors.length > 0) {
    throw new ValidationError(doc.errors.map((e) => `${file}:${lineAt(e.pos[0])} (syntax): expected valid YAML, got "${e.message.split('\n')[0].trim()}" at column ${lineCounter.linePos(e.pos[0]).col}`));
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (err) {
    // e.g. an alias expanded too often (the `yaml` package's guard against exponential documents)
    throw new ValidationError([`${file}:1 (syntax): expected valid YAML, got "${(err as Error).message}"`]);
  }
  const schema = schemaProblems(data, schemaName);
  const semantic = new Problems(schema.map((p) => p.at));
  const resolved = resolve(data, semantic);

  const all = [...schema, ...semantic.list].map((p, i) => ({ line: lineOf(doc, lineAt, p.at), i, message: p.message }));
  if (all.length > 0) {
    all.sort((a, b) => a.line - b.line || a.i - b.i);
    throw new ValidationError([...new Set(all.map((p) => `${file}:${p.line} ${p.message}`))]);
  }
  return resolved;
}

// ---------------------------------------------------------------------------------------------
// Paths and lines

/** The line of the deepest node on the path that exists (a key's line for map entries). */
function lineOf(doc: Document, lineAt: (offset: number) => number, at: readonly Segment[]): number {
  return lineAt(yamlOffsetOf(doc, at));
}

// ---------------------------------------------------------------------------------------------
// Schema

/** What a node of schema `name` accepts, in words. */
function expectedOf(node: SchemaNode | undefined, name: 'scenario' | 'mapping'): string {
  return schemaExpected(name, node);
}

/** Near misses for an unknown key: same letters in another case, or at most two edits away. */
function didYouMean(key: string, allowed: readonly string[]): string | null {
  const lower = key.toLowerCase();
  let best: string | null = null;
  let bestDistance = 3;
  for (const a of allowed) {
    const d = a.toLowerCase() === lower ? 0 : editDistance(lower, a.toLowerCase());
    if (d < bestDistance && d <= Math.max(1, Math.floor(a.length / 3))) [best, bestDistance] = [a, d];
  }
  return best;
}


function describeSchemaError(e: ErrorObject, data: unknown, name: 'scenario' | 'mapping'): Problem | null {
  const at = schemaSegments(e.instancePath, data);
  const parent = e.parentSchema as SchemaNode | undefined;
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'propertyNames') return null; // the key's own error follows
  if (e.propertyName !== undefined) {
    const child = [...at, e.propertyName];
    return { at: child, message: `${formatPath(child)}: expected ${expectedOf(parent, name)}, got ${formatValue(e.propertyName)}` };
  }
  switch (e.keyword) {
    case 'if': // the branch's own error says it better
      return null;
    case 'additionalProperties': {
      const key = String(p.additionalProperty);
      const allowed = Object.keys(parent?.properties ?? {}).filter((k) => k !== '$schema');
      const near = didYouMean(key, allowed);
      const child = [...at, key];
      return { at: child, message: `${formatPath(child)}: expected a known key (${near ? `did you mean "${near}"?` : allowed.join(', ')}), got ${formatValue(key)}` };
    }
    case 'required': {
      const key = String(p.missingProperty);
      const child = [...at, key];
      return { at: child, message: `${formatPath(child)}: expected ${expectedOf(parent?.properties?.[key], name)}, got nothing` };
    }
    case 'minItems':
    case 'maxItems':
      return { at, message: `${formatPath(at)}: expected ${e.keyword === 'minItems' ? 'at least' : 'at most'} ${String(p.limit)} item${p.limit === 1 ? '' : 's'}, got ${formatValue(e.data)}` };
    case 'minLength':
      return { at, message: `${formatPath(at)}: expected ${parent?.errorMessage ? expectedOf(parent, name) : 'a non-empty string'}, got ${formatValue(e.data)}` };
    case 'enum':
      return { at, message: `${formatPath(at)}: expected one of ${(p.allowedValues as unknown[]).map(String).join(', ')}, got ${formatValue(e.data)}` };
    default:
      return { at, message: `${formatPath(at)}: expected ${expectedOf(parent, name)}, got ${formatValue(e.data)}` };
  }
}

/** Every schema problem, at most one per path. */
function schemaProblems(data: unknown, name: 'scenario' | 'mapping'): Problem[] {
  const validate = schemaValidator(name);
  if (validate(data)) return [];
  const byPath = new Map<string, Problem>();
  // A value that fits none of an anyOf's branches: the anyOf's own wording, not a branch's.
  const anyOf = (validate.errors ?? []).filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath);
  const underAnyOf = (e: ErrorObject): boolean => e.keyword !== 'anyOf' && anyOf.some((a) => e.instancePath === a || e.instancePath.startsWith(`${a}/`));
  for (const e of validate.errors ?? []) {
    if (underAnyOf(e)) continue;
    const problem = describeSchemaError(e, data, name);
    if (problem && !byPath.has(formatPath(problem.at))) byPath.set(formatPath(problem.at), problem);
  }
  return [...byPath.values()];
}
