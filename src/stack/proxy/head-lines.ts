/**
 * What the proxy's two head parsers (request-head.ts, client side; upstream.ts, backend side)
 * share: optional whitespace, and a per-parser memo that recognises a header name by its position.
 */

export function isOws(c: number): boolean {
  return c === 32 || c === 9;
}

export function trimOws(v: string): string {
  let a = 0;
  let b = v.length;
  while (a < b && isOws(v.charCodeAt(a))) a++;
  while (b > a && isOws(v.charCodeAt(b - 1))) b--;
  return a === 0 && b === v.length ? v : v.slice(a, b);
}

const MEMO_LINES = 32;

/**
 * A name's role by its position: clients (and backends) send the same names in the same order
 * every time, so the name seen at each header position of the last head parsed is usually
 * recognised by comparing it in place, without slicing a string and hashing it for `roleOf`.
 */
export function namePositionMemo<R>(roleOf: (name: string) => R): (text: string, start: number, colon: number, line: number) => R {
  const lastNames: string[] = [];
  const lastRoles: R[] = [];
  return (text, start, colon, line) => {
    const last = line < MEMO_LINES ? lastNames[line] : undefined;
    if (last !== undefined && last.length === colon - start && text.startsWith(last, start)) return lastRoles[line]!;
    const name = text.slice(start, colon);
    const role = roleOf(name);
    if (line < MEMO_LINES) {
      lastNames[line] = name;
      lastRoles[line] = role;
    }
    return role;
  };
}
