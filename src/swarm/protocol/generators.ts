/**
 * Payload generators of a given size, built once when a template compiles (never per send):
 *
 *   {{fill SIZE}}      exactly SIZE bytes of letters and digits (safe inside a JSON string)
 *   {{records SIZE}}   a JSON array of exactly SIZE bytes: rows {"row":N,"name":"…","value":"…"}
 *
 * SIZE is bytes, or a number with b, kb or mb (1024-based): `512`, `4kb`, `1mb`.
 */

export const MAX_GENERATED_BYTES = 16 * 1024 * 1024;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** `4kb` → 4096; null when the text is not a size or is beyond MAX_GENERATED_BYTES. */
export function parseSize(text: string): number | null {
  const m = /^(\d+)(b|kb|mb)?$/i.exec(text.trim());
  if (!m) return null;
  const bytes = Number(m[1]) * { b: 1, kb: 1024, mb: 1024 * 1024 }[(m[2] ?? 'b').toLowerCase() as 'b' | 'kb' | 'mb'];
  return bytes <= MAX_GENERATED_BYTES ? bytes : null;
}

/** `n` characters cycling through a–z, 0–9. */
export function fill(n: number): string {
  const whole = Math.floor(n / ALPHABET.length);
  return ALPHABET.repeat(whole) + ALPHABET.slice(0, n - whole * ALPHABET.length);
}

function row(i: number, valueChars: number): string {
  return `{"row":${i},"name":"row_${i}","value":"${fill(valueChars)}"}`;
}

const ROW_VALUE_CHARS = 64;

/**
 * A JSON array of rows, exactly `n` bytes (n ≥ 2). Whole rows go in while they fit; the last row's
 * value then grows to take up what is left. Below one row's size the array is `[` and `]` with
 * spaces between (still valid JSON, still n bytes).
 */
export function records(n: number): string {
  const rows: string[] = [];
  let used = 2; // "[" and "]"
  for (let i = 0; ; i++) {
    const r = row(i, ROW_VALUE_CHARS);
    const cost = r.length + (rows.length > 0 ? 1 : 0);
    if (used + cost > n) break;
    rows.push(r);
    used += cost;
  }
  if (rows.length === 0) return '[' + ' '.repeat(Math.max(0, n - 2)) + ']';
  const last = rows.length - 1;
  rows[last] = row(last, ROW_VALUE_CHARS + (n - used));
  return '[' + rows.join(',') + ']';
}
