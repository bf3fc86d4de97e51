import { isMap, isNode, isScalar, isSeq, type Document } from 'yaml';
import { schemaValidator, type SchemaName } from './schemas.js';

/**
 * What the YAML loaders (scenario, mapping and protocol files) share to turn a schema error into
 * a `FILE:LINE PATH: expected …, got …` line: the path as segments, the line it sits on, and what
 * the schema accepts there, in words.
 */

export type PathSegment = string | number;

/** The part of a JSON schema node the wording reads. */
export interface SchemaNode {
  type?: string | string[];
  enum?: unknown[];
  errorMessage?: string;
  properties?: Record<string, SchemaNode>;
  $ref?: string;
}

/** `/stages/2/rate` → `['stages', 2, 'rate']`: indexes become numbers where the data is a list. */
export function schemaSegments(instancePath: string, data: unknown): PathSegment[] {
  const out: PathSegment[] = [];
  let cur = data;
  for (const raw of instancePath.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out.push(Array.isArray(cur) && /^\d+$/.test(part) ? Number(part) : part);
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[part] : undefined;
  }
  return out;
}

const TYPE_WORDS: Record<string, string> = { object: 'a map', array: 'a list', string: 'a string', integer: 'a whole number', number: 'a number', boolean: 'true or false' };

/** What a node of schema `name` accepts, in words (its `errorMessage` first, a `$ref`'s wording, an enum, its types). */
export function schemaExpected(name: SchemaName, node: SchemaNode | undefined): string {
  const defs = (schemaValidator(name).schema as { definitions: Record<string, SchemaNode> }).definitions;
  const n = node?.$ref && !node.errorMessage ? defs[node.$ref.replace('#/definitions/', '')] : node;
  if (n?.errorMessage) return n.errorMessage.replace(/^expected /, '');
  if (n?.enum) return `one of ${n.enum.map(String).join(', ')}`;
  const types = n?.type === undefined ? [] : Array.isArray(n.type) ? n.type : [n.type];
  return types.map((t) => TYPE_WORDS[t] ?? t).join(' or ') || 'a value';
}

/** The offset of the deepest node on the path that exists (a key's, for map entries). */
export function yamlOffsetOf(doc: Document, at: readonly PathSegment[]): number {
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
    } else break;
  }
  return offset;
}
