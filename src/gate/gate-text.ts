import type { GateReport } from './gate.js';

/**
 * A gate report as text: what `rmmscale gate` prints, and the one line `rmmscale run` gives as the
 * reason for its exit code. Its own module, free of the gate's readers and statistics, so that the
 * CLI can load it without them.
 */

/**
 * The report for a terminal: a headline, then one line per threshold. `heading` (e.g. `thresholds`
 * in `rmmscale run`, whose exit code is its own) replaces `rmmscale gate` and the gate's exit code.
 */
export function gateText(r: GateReport, heading?: string): string {
  const lines = [heading === undefined ? `rmmscale gate: ${r.outcome.toUpperCase()} (exit ${r.exitCode}): ${summaryLine(r)}` : `${heading}: ${r.outcome.toUpperCase()}: ${summaryLine(r)}`];
  for (const p of r.invalid) lines.push(`  invalid measurement: ${p}`);
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  const width = Math.max(...r.checks.map((c) => c.threshold.text.length));
  for (const c of r.checks) lines.push(`  ${c.verdict.padEnd(12)}  ${c.threshold.text.padEnd(width)}  ${c.message}`);
  return lines.join('\n') + '\n';
}

export function summaryLine(r: GateReport): string {
  const n = r.checks.length;
  const parts = (['pass', 'fail', 'inconclusive', 'invalid'] as const).filter((k) => r.counts[k] > 0).map((k) => `${r.counts[k]} ${k === 'pass' ? 'passed' : k === 'fail' ? 'failed' : k}`);
  const runs = `${r.current.length} current run${r.current.length === 1 ? '' : 's'}${r.baseline.length ? ` vs ${r.baseline.length} baseline run${r.baseline.length === 1 ? '' : 's'}` : ''}`;
  return `${n} threshold${n === 1 ? '' : 's'}: ${parts.join(', ')} (${runs})`;
}
