/**
 * Number formats shared by every human-facing text: the reports (HTML, Markdown, terminal), the
 * run's progress events and warnings, the benchmarks. Pure: numbers in, strings out.
 */

export function finiteOrNull(x: number | null | undefined): number | null {
  return typeof x === 'number' && Number.isFinite(x) ? x : null;
}

/** Made on first use: building a number format costs milliseconds the CLI's start-up need not pay. */
let int: Intl.NumberFormat | null = null;
const INT = (): Intl.NumberFormat => (int ??= new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 }));

/** `12,500`; `–` for null/NaN, `∞` for Infinity. */
export function fmtCount(x: number | null | undefined): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  if (!Number.isFinite(x)) return '∞';
  return INT().format(x);
}

/** `1,234 req/s`, or one decimal under 100. */
export function fmtRate(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  return `${x < 100 ? x.toFixed(1) : INT().format(x)} req/s`;
}

/** A latency in µs as `850 µs`, `12.3 ms` or `2.10 s`. */
export function fmtUs(us: number | null | undefined): string {
  if (us === null || us === undefined || !Number.isFinite(us)) return '–';
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(us < 100_000 ? 1 : 0)} ms`;
  return `${(us / 1_000_000).toFixed(2)} s`;
}

/** A fraction 0..1 as `12.34%`. */
export function fmtPct(x: number | null | undefined, digits = 2): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  return `${(x * 100).toFixed(digits)}%`;
}

export function fmtBytes(n: number): string {
  if (!Number.isFinite(n)) return '–';
  const gib = n / 1024 ** 3;
  return gib >= 1 ? `${gib.toFixed(1)} GiB` : `${(n / 1024 ** 2).toFixed(0)} MiB`;
}
