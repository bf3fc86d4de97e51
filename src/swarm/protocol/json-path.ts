/**
 * The small JSON path subset protocol files use to read a response, compiled once:
 *
 *   path     = "$" , { segment } ;
 *   segment  = "." , name | "[" , index , "]" | "[" , quoted , "]" ;
 *   name     = letter or "_" , { letter | digit | "_" | "-" } ;
 *   index    = digit , { digit } ;
 *   quoted   = '"' , { any character but '"' } , '"' ;
 *
 * e.g. `$.node_key`, `$.queries`, `$.commands[0].id`, `$["x-y"]`. No wildcards or filters: a
 * protocol names one value, and `{{#each PATH}}` walks a list or map.
 */

export type PathSegment = string | number;

export interface JsonPath {
  readonly text: string;
  readonly segments: readonly PathSegment[];
}

/** Parse a path; a malformed one throws an Error whose message says what is wrong. */
export function compileJsonPath(text: string): JsonPath {
  const fail = (why: string): never => {
    throw new Error(`a JSON path like $.node_key or $.queries[0] (${why})`);
  };
  if (!text.startsWith('$')) fail('it must start with "$"');
  const segments: PathSegment[] = [];
  let i = 1;
  while (i < text.length) {
    const c = text[i];
    if (c === '.') {
      let j = i + 1;
      while (j < text.length && /[A-Za-z0-9_-]/.test(text[j])) j++;
      const name = text.slice(i + 1, j);
      if (!/^[A-Za-z_]/.test(name)) fail(`expected a name after "." at character ${i + 1}`);
      segments.push(name);
      i = j;
    } else if (c === '[') {
      const close = text.indexOf(']', i);
      if (close < 0) fail(`"[" at character ${i + 1} is not closed`);
      const inner = text.slice(i + 1, close);
      if (/^\d+$/.test(inner)) segments.push(Number(inner));
      else if (/^"[^"]*"$/.test(inner)) segments.push(inner.slice(1, -1));
      else fail(`expected an index or a quoted name inside [], got [${inner}]`);
      i = close + 1;
    } else {
      fail(`unexpected ${JSON.stringify(c)} at character ${i + 1}`);
    }
  }
  return { text, segments };
}

/** The value at `path` in a parsed JSON document, or undefined when any step is missing. */
export function readJsonPath(doc: unknown, path: JsonPath): unknown {
  let cur = doc;
  for (const seg of path.segments) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (typeof seg === 'number') {
      if (!Array.isArray(cur)) return undefined;
      cur = cur[seg];
    } else {
      if (Array.isArray(cur)) return undefined;
      cur = (cur as Record<string, unknown>)[seg];
    }
  }
  return cur;
}

/** A value counts as present when it exists and is not null, an empty list or an empty map. */
export function isPresent(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') {
    for (const _k in v as object) return true;
    return false;
  }
  return true;
}
