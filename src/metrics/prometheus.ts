/**
 * Prometheus text exposition (format 0.0.4), just what the stack nodes need: counters, gauges and
 * histograms with label sets. Values are kept by the caller; this only renders.
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
