/**
 * Prometheus text exposition (format 0.0.4), just what rmmscale needs: rendering counters, gauges
 * and histograms with label sets for the stack nodes (PromText; values are kept by the caller),
 * and reading samples back (promSamples), the one tokenizer under every reader of /metrics text
 * (the run's node collector, the HAProxy exporter reader).
 */
export type Labels = Record<string, string>;

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(l: Labels | undefined): string {
  if (!l) return '';
  const parts = Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function num(v: number): string {
  if (v === Infinity) return '+Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

export class PromText {
  private readonly out: string[] = [];

  metric(name: string, type: 'counter' | 'gauge' | 'histogram', help: string, samples: Array<{ labels?: Labels; value: number }>): this {
    this.out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const s of samples) this.out.push(`${name}${labelText(s.labels)} ${num(s.value)}`);
    return this;
  }

  /** A histogram from cumulative bucket counts (bounds in seconds), sum and count. */
  histogram(name: string, help: string, series: Array<{ labels: Labels; boundsSec: readonly number[]; cumulative: readonly number[]; sumSec: number; count: number }>): this {
    this.out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
    for (const s of series) {
      s.boundsSec.forEach((b, i) => this.out.push(`${name}_bucket${labelText({ ...s.labels, le: num(b) })} ${s.cumulative[i]}`));
      this.out.push(`${name}_bucket${labelText({ ...s.labels, le: '+Inf' })} ${s.count}`);
      this.out.push(`${name}_sum${labelText(s.labels)} ${s.sumSec}`);
      this.out.push(`${name}_count${labelText(s.labels)} ${s.count}`);
    }
    return this;
  }

  toString(): string {
    return this.out.join('\n') + '\n';
  }
}

/** One sample line: `name{label="value",…} value [timestamp]`. */
export interface PromSample {
  name: string;
  labels: Labels;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*/y;
const VALUE = /^\s+(\S+)/;

function unescape(v: string): string {
  return v.includes('\\') ? v.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c)) : v;
}

function valueOf(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

/** Labels from just after `{` into `out`; the index after the closing `}`, or -1 when malformed. */
function readLabels(line: string, from: number, out: Labels): number {
  let at = from;
  for (;;) {
    while (line[at] === ' ' || line[at] === '\t') at++;
    if (line[at] === '}') return at + 1;
    LABEL.lastIndex = at;
    const m = LABEL.exec(line);
    if (!m) return -1;
    out[m[1]] = unescape(m[2]);
    at = LABEL.lastIndex;
    if (line[at] === ',') at++;
    else if (line[at] !== '}') return -1;
  }
}

/**
 * The samples of exposition text, in order. Comments (# HELP, # TYPE) and blank lines are
 * skipped, and so is a line that does not parse (a reader takes what it can rather than fail a
 * whole scrape). Label values are unescaped (\\, \", \n); a trailing timestamp is ignored.
 */
export function* promSamples(text: string): Generator<PromSample> {
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const name = NAME.exec(line)?.[0];
    if (!name) continue;
    const labels: Labels = {};
    const end = line[name.length] === '{' ? readLabels(line, name.length + 1, labels) : name.length;
    const v = end < 0 ? null : VALUE.exec(line.slice(end));
    if (v) yield { name, labels, value: valueOf(v[1]) };
  }
}
