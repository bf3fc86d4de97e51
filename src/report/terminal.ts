import { fmtCount, fmtPct, fmtRate, fmtUs } from '../core/format.js';
import type { RunResult } from '../run/result-types.js';
import { headlineWindow, latencyVsCleanParts, STATUS_LABEL, verdictOf } from './format.js';
import { takeoverText } from './markdown.js';

/**
 * The compact summary printed at the end of `rmmscale run` and by `rmmscale report`: the verdict,
 * one row per tier, the key latencies and every warning. Plain text, no colour: it lands in CI logs.
 */

/** Columns padded to their widest cell; numbers right-aligned. */
export function textTable(head: string[], rows: string[][], right: boolean[]): string {
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 && !right[i] ? c : right[i] ? c.padStart(width[i]) : c.padEnd(width[i])))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].map((l) => `  ${l}`).join('\n');
}

function clip(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

export function terminalSummary(r: RunResult): string {
  const v = verdictOf(r);
  const s = r.summary;
  const out: string[] = [`${STATUS_LABEL[v.status]}: ${v.headline}`];
  if (!s.trustworthy) out.push('', '!! NOT TRUSTWORTHY: the load generator or the host saturated; these numbers measure the test rig, not the stack.');
  if (s.tiers.length) {
    out.push(
      '',
      textTable(
        ['tier', 'agents', 'req/s', 'why it stops there'],
        s.tiers.map((t) => [t.tier + (t.tier === s.limitingTier ? ' *' : ''), fmtCount(t.ceilingAgents), fmtRate(t.ceilingRps).replace(' req/s', ''), clip(t.limitedBy, 70)]),
        [false, true, true, false],
      ),
    );
    if (s.limitingTier) out.push(`  * limiting tier: ${s.limitingTier}`);
  }
  if (!s.limitingTier && s.noTierNamed) out.push('', `limiting tier: none could be named: ${s.noTierNamed}`);
  const h = r.headline;
  if (h) {
    const w = headlineWindow(r);
    // "requests" = the requests the latency columns describe (completed + failed in the window), for
    // every row alike; the client's `count` is sends attempted, which differs at the window's edges.
    const rows = [['all', h.client] as const, ...Object.entries(h.client.ops)].map(([op, x]) => {
      const l = x.latency;
      return [op, fmtCount(x.completed + x.failed), fmtPct(x.errorRate), ...[l.p50Us, l.p90Us, l.p95Us, l.p99Us, l.p999Us, l.maxUs].map(fmtUs)];
    });
    out.push(
      '',
      `latency${w ? ` at ${fmtCount(w.agents)} agents (window #${w.index})` : ''}, SLO p99 ${r.slo.p99Ms} ms; achieved ${fmtRate(h.client.achievedRatePerSec)} of ${fmtRate(h.client.offeredRatePerSec)} offered`,
      textTable(['op', 'requests', 'errors', 'p50', 'p90', 'p95', 'p99', 'p99.9', 'max'], rows, [false, true, true, true, true, true, true, true, true]),
    );
  }
  // A stack with an analytics node: the alert delay over the run, and each fault's against its clean part.
  if (r.alertDelayMs) {
    const a = r.alertDelayMs;
    out.push('', `alert delay (analytics node, agent send → alert): ${fmtCount(a.alerts)} alerts, p50 ${fmtCount(a.p50Ms)} ms, p99 ${fmtCount(a.p99Ms)} ms, max ${fmtCount(a.maxMs)} ms`);
    for (const f of r.faults ?? []) {
      if (!f.alertDelayMs) continue;
      const clean = f.alertDelayCleanMs ? `${fmtCount(f.alertDelayCleanMs.p50Ms)} ms` : '–';
      out.push(`  during ${f.action} ${f.node ?? ''} at ${f.at} s: p50 ${fmtCount(f.alertDelayMs.p50Ms)} ms (clean ${clean}), p99 ${fmtCount(f.alertDelayMs.p99Ms)} ms, ${fmtCount(f.alertDelayMs.alerts)} alerts`);
    }
  }
  // A fault on an app node: which node took the DBAgent lease, and how long after the fault.
  const takeovers = (r.faults ?? []).filter((f) => f.takeover);
  if (takeovers.length) {
    out.push('', 'DBAgent takeover (from the fault to the new leader\'s own lease stamp):');
    for (const f of takeovers) out.push(`  after ${f.action} ${f.node ?? ''} at ${f.at} s: ${takeoverText(f.takeover!)}`);
  }
  // Each fault's client latency against the clean part of its stage: is the p50 within 10%?
  const compared = (r.faults ?? []).filter((f) => (f.latencyVsClean ?? []).length > 0);
  if (compared.length) {
    out.push('', 'latency during each fault (p50 during ÷ clean part of its stage, 95% interval; within 10%: held, broken or unresolved):');
    for (const f of compared) {
      out.push(`  ${f.action} ${f.node ?? ''} at ${f.at} s:`);
      const rows = f.latencyVsClean!.map((l) => {
        const p = latencyVsCleanParts(l);
        return [`  ${l.op}`, `${p.cleanP50} → ${p.faultP50}`, p.ratio, p.interval, p.within, `${fmtCount(l.cleanCount)} / ${fmtCount(l.faultCount)}`];
      });
      out.push(textTable(['  op', 'p50 clean → during', 'ratio', '95% interval', 'within 10%', 'samples clean / during'], rows, [false, true, true, true, false, true]));
    }
  }
  if (r.plan) {
    const p = r.plan;
    out.push('', `plan for ${fmtCount(p.agents)} agents: ${p.feasible ? 'feasible' : 'NOT feasible'}; ${p.tiers.map((t) => `${t.tier} ×${t.nodes}`).join(', ')}`);
  }
  if (v.warnings.length) out.push('', 'warnings:', ...v.warnings.map((w) => `  - ${w}`));
  return out.join('\n') + '\n';
}
