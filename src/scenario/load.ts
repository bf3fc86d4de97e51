import { readFileSync } from 'node:fs';
import type { ErrorObject } from 'ajv';
import { LineCounter, isMap, isNode, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { InvalidArgumentError, ValidationError, formatValue } from '../core/errors.js';
import { schemaValidator } from '../core/schemas.js';
import { Problems, formatPath, resolveScenario, type Problem, type Segment } from './resolve-scenario.js';
import type { Scenario } from './types.js';
import { editDistance } from '../core/edit-distance.js';

/**
 * Scenario files: YAML, checked against schemas/scenario.schema.json (the same file editors use
 * for completion), then for what a schema cannot say (units, exactly one of stages and ceiling,
 * topology names, fleet sizes against stages). Every problem is collected and reported on its own
 * line with the file, the line and the path, then all of them are thrown as one ValidationError:
 *
 *   scenarios/x.yaml:14 stages[2].rate: expected "N/s" or "N%/min", got "fast"
 *
 * Schema problems take their wording from the schema (`errorMessage`, which editors show too);
 * semantic ones (src/scenario/resolve-scenario.ts) from the shared unit parsers. A path that already has a
 * schema problem gets no second, semantic one.
 */

// ---------------------------------------------------------------------------------------------
// Entry points

/** Read, validate and resolve a scenario file; throws ValidationError listing every problem. */
export function loadScenario(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError('SCENARIO', file, `a readable scenario file (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  return parseScenario(text, file);
}

/** Validate and resolve scenario text; `file` names it in messages and anchors relative paths. */
export function parseScenario(text: string, file: string): Scenario {
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
  const schema = schemaProblems(data);
  const semantic = new Problems(schema.map((p) => p.at));
  const scenario = resolveScenario(data, semantic, file);

  const all = [...schema, ...semantic.list].map((p, i) => ({ line: lineOf(doc, lineAt, p.at), i, message: p.message }));
  if (all.length > 0) {
    all.sort((a, b) => a.line - b.line || a.i - b.i);
    throw new ValidationError([...new Set(all.map((p) => `${file}:${p.line} ${p.message}`))]);
  }
  return scenario;
}

// ---------------------------------------------------------------------------------------------
// Paths and lines

/** The line of the deepest node on the path that exists (a key's line for map entries). */
function lineOf(doc: Document, lineAt: (offset: number) => number, at: readonly Segment[]): number {
  let node: unknown = doc.contents;
  let offset = isNode(node) && node.range ? node.range[0] : 0;
  for (const seg of at) {
    if (isMap(node)) {
      const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
      if (!pair) break;
      if (isNode(pair.key) && pair.key.range) offset = pair.key.range[0];
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item: unknown = node.items[seg];
      if (!isNode(item)) break;
      if (item.range) offset = item.range[0];
      node = item;
    } else {
      break;
    }
  }
  return lineAt(offset);
}

// ---------------------------------------------------------------------------------------------
// Schema

interface SchemaNode {
  type?: string | string[];
  enum?: unknown[];
  errorMessage?: string;
  properties?: Record<string, SchemaNode>;
  $ref?: string;
}

/** The scenario schema's definitions, which `expectedOf` reads for a `$ref`'s wording. */
function definitions(): Record<string, SchemaNode> {
  return (schemaValidator('scenario').schema as { definitions: Record<string, SchemaNode> }).definitions;
}

/** `/stages/2/rate` → `['stages', 2, 'rate']`: indexes become numbers where the data is a list. */
function segments(instancePath: string, data: unknown): Segment[] {
  const out: Segment[] = [];
  let cur = data;
  for (const raw of instancePath.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const seg: Segment = Array.isArray(cur) && /^\d+$/.test(part) ? Number(part) : part;
    out.push(seg);
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[part] : undefined;
  }
  return out;
}

const TYPE_WORDS: Record<string, string> = { object: 'a map', array: 'a list', string: 'a string', integer: 'a whole number', number: 'a number', boolean: 'true or false' };

/** What a schema node accepts, in words. */
function expectedOf(node: SchemaNode | undefined): string {
  const defs = definitions();
  const n = node?.$ref && !node.errorMessage ? defs[node.$ref.replace('#/definitions/', '')] : node;
  if (n?.errorMessage) return n.errorMessage.replace(/^expected /, '');
  if (n?.enum) return `one of ${n.enum.map(String).join(', ')}`;
  const types = n?.type === undefined ? [] : Array.isArray(n.type) ? n.type : [n.type];
  return types.map((t) => TYPE_WORDS[t] ?? t).join(' or ') || 'a value';
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


function describeSchemaError(e: ErrorObject, data: unknown): Problem | null {
  const at = segments(e.instancePath, data);
  const parent = e.parentSchema as SchemaNode | undefined;
  const p = e.params as Record<string, unknown>;
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
      return { at: child, message: `${formatPath(child)}: expected ${expectedOf(parent?.properties?.[key])}, got nothing` };
    }
    case 'minItems':
    case 'maxItems':
      return { at, message: `${formatPath(at)}: expected ${e.keyword === 'minItems' ? 'at least' : 'at most'} ${String(p.limit)} item${p.limit === 1 ? '' : 's'}, got ${formatValue(e.data)}` };
    case 'minLength':
      return { at, message: `${formatPath(at)}: expected ${parent?.errorMessage ? expectedOf(parent) : 'a non-empty string'}, got ${formatValue(e.data)}` };
    case 'enum':
      return { at, message: `${formatPath(at)}: expected one of ${(p.allowedValues as unknown[]).map(String).join(', ')}, got ${formatValue(e.data)}` };
    default:
      return { at, message: `${formatPath(at)}: expected ${expectedOf(parent)}, got ${formatValue(e.data)}` };
  }
}

/** Every schema problem, at most one per path. */
function schemaProblems(data: unknown): Problem[] {
  const validate = schemaValidator('scenario');
  if (validate(data)) return [];
  const byPath = new Map<string, Problem>();
  for (const e of validate.errors ?? []) {
    const problem = describeSchemaError(e, data);
    if (problem && !byPath.has(formatPath(problem.at))) byPath.set(formatPath(problem.at), problem);
  }
  return [...byPath.values()];
}
