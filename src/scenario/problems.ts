import { RmmscaleError, formatValue } from '../core/errors.js';

/**
 * Problems found in a YAML file (a scenario, a mapping file), each with its path, so that the
 * loader (yaml-checked.ts) can put the file's line in front: `FILE:LINE PATH: expected …, got …`.
 */

export type Segment = string | number;

export interface Problem {
  /** Where the problem is; its line is looked up from this. */
  at: Segment[];
  /** One line, starting with the path. */
  message: string;
}

/** `['stages', 2, 'rate']` → `stages[2].rate`. */
export function formatPath(at: readonly Segment[]): string {
  let out = '';
  for (const s of at) out += typeof s === 'number' ? `[${s}]` : out ? `.${s}` : s;
  return out || '(top level)';
}

export function isPrefix(prefix: readonly Segment[], at: readonly Segment[]): boolean {
  return prefix.length <= at.length && prefix.every((s, i) => s === at[i]);
}

/**
 * Semantic problems. A path that already has a schema problem (or sits under one) gets no second
 * problem, and checks that compare fields run only when those fields passed the schema (`ok`).
 */
export class Problems {
  readonly list: Problem[] = [];
  constructor(private readonly schemaPaths: readonly Segment[][]) {}

  /** No schema problem at, above or below any of these paths: safe to compare their values. */
  ok(...paths: Segment[][]): boolean {
    return paths.every((at) => !this.schemaPaths.some((s) => isPrefix(s, at) || isPrefix(at, s)));
  }

  add(at: Segment[], message: string): void {
    if (!this.schemaPaths.some((s) => isPrefix(s, at))) this.list.push({ at, message });
  }

  /** `PATH: expected …, got VALUE` */
  expected(at: Segment[], allowed: string, value: unknown): void {
    this.expectedWords(at, allowed, formatValue(value));
  }

  /** `PATH: expected …, got WORDS` (words, not a value). */
  expectedWords(at: Segment[], allowed: string, got: string): void {
    this.add(at, `${formatPath(at)}: expected ${allowed}, got ${got}`);
  }

  /** Run a shared parser with the path as its field name; its error becomes a problem. */
  take<T>(at: Segment[], parse: (field: string) => T, fallback: T): T {
    try {
      return parse(formatPath(at));
    } catch (err) {
      if (!(err instanceof RmmscaleError)) throw err;
      this.add(at, err.message);
      return fallback;
    }
  }
}
