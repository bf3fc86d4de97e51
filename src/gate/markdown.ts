import { formatMetricValue } from './grammar.js';
import { summaryLine, type CheckResult, type CheckVerdict, type GateReport } from './gate.js';

/**
 * The gate as GitHub-flavoured Markdown, for `$GITHUB_STEP_SUMMARY`: a headline, the reasons a
 * measurement is invalid, then one table row per threshold (threshold, current, baseline, verdict,
 * why).
 */

const BADGE: Record<CheckVerdict, string> = { pass: '✅ pass', fail: '❌ fail', inconclusive: '❔ inconclusive', invalid: '⚠️ invalid' };
const OUTCOME: Record<GateReport['outcome'], string> = { pass: '✅ passed', fail: '❌ failed', invalid: '⚠️ invalid measurement' };

/** Text for a table cell: no line breaks, pipes escaped, HTML inert. */
export function mdCell(s: string): string {
  return s.replace(/\r?\n/g, ' ').replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A code span that survives any backticks inside it. */
function code(s: string): string {
  const longest = Math.max(0, ...(s.match(/`+/g) ?? []).map((x) => x.length));
  const fence = '`'.repeat(longest + 1);
  const pad = s.startsWith('`') || s.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${s.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|')}${pad}${fence}`;
}

function value(c: CheckResult, side: 'current' | 'baseline'): string {
  const v = side === 'current' ? c.current : c.baseline;
  if (!v || v.value === null) return '—';
  const f = (x: number): string => formatMetricValue(c.threshold.metric.valueKind, x);
  if (v.values.length === 1) return f(v.value);
  const how = c.threshold.value.kind === 'relative' ? 'mean' : 'median';
  const lo = Math.min(...v.values);
  if (lo === Math.max(...v.values)) return `${f(lo)} (all ${v.values.length} runs)`;
  return `${f(v.value)} (${how} of ${v.values.length}: ${f(Math.min(...v.values))}–${f(Math.max(...v.values))})`;
}

function verdict(c: CheckResult, r: GateReport): string {
  if (c.verdict === 'inconclusive' && r.method.inconclusive === 'fail') return `${BADGE.inconclusive} (counted as failed)`;
  return BADGE[c.verdict];
}

export function gateMarkdown(r: GateReport): string {
  const out: string[] = [];
  out.push(`### rmmscale gate: ${OUTCOME[r.outcome]}`, '');
  out.push(`${mdCell(summaryLine(r))} · scenario ${code(r.scenario)} · exit ${r.exitCode}`, '');
  if (r.invalid.length) {
    out.push('**The measurement is invalid**, so no threshold is judged:', '');
    for (const p of r.invalid) out.push(`- ${mdCell(p)}`);
    out.push('');
  }
  if (r.warnings.length) {
    for (const w of r.warnings) out.push(`> ⚠️ ${mdCell(w)}`);
    out.push('');
  }
  out.push('| threshold | current | baseline | verdict | details |', '| --- | --- | --- | --- | --- |');
  for (const c of r.checks) {
    out.push(`| ${code(c.threshold.text)} | ${mdCell(value(c, 'current'))} | ${mdCell(value(c, 'baseline'))} | ${verdict(c, r)} | ${mdCell(c.message)} |`);
  }
  out.push('');
  const pct = Math.round(r.method.confidence * 100);
  out.push(
    `<sub>Relative rules: ${pct}% Fieller interval on mean(current) ÷ mean(baseline); single runs on both sides assume ${Math.round(r.method.noiseCv * 1000) / 10}% run-to-run noise. ` +
      `Absolute rules: the median of the current runs. Inconclusive counts as ${r.method.inconclusive === 'fail' ? 'failed' : 'passed'}.</sub>`,
    '',
  );
  return out.join('\n');
}
