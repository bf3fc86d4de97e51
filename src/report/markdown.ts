import { finiteOrNull, fmtCount, fmtPct, fmtRate, fmtUs } from '../core/format.js';
import { round } from '../core/units.js';
import type { OpStatsRow } from '../metrics/op-stats.js';
import type { RunResult } from '../run/result-types.js';
import { headlineWindow, latencyVsCleanParts, STATUS_LABEL, verdictOf } from './format.js';

/**
 * The Markdown summary, for a CI step summary (`$GITHUB_STEP_SUMMARY`) or a PR comment: the
 * verdict, the ceiling per tier, the limiting tier, every warning and the key latencies. GitHub
 * renders the `> [!CAUTION]` alert; other renderers show a plain quote.
 */

/** Text for a table cell or a line: no pipes, newlines or raw HTML from the result. */
export function mdEsc(s: unknown): string {
  return String(s).replace(/\r?\n/g, ' ').replace(/\|/g, '\\|').replace(/</g, '&lt;');
}

function mdTable(head: string[], align: Array<'l' | 'r'>, rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `|${align.map((a) => (a === 'r' ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(mdEsc).join(' | ')} |`),
  ].join('\n');
}

function latencyRow(name: string, s: OpStatsRow): string[] {
  const l = s.latency;
  return [name, fmtCount(s.count), fmtPct(s.errorRate), ...[l.p50Us, l.p90Us, l.p95Us, l.p99Us, l.p999Us, l.maxUs].map(fmtUs)];
}

/** `kill web-agent-1`, `stop db for 20 s`, `slow db +200 ms for 60 s`, `slow analytics ×10 for 30 s`, `disconnect 10% (100 tunnels)`. */
export function faultText(f: NonNullable<RunResult['faults']>[number]): string {
  if (f.action === 'disconnect') return `disconnect ${round((f.fraction ?? 0) * 100, 1)}%${f.dropped !== null ? ` (${f.dropped} tunnels)` : ''}`;
  const by = f.bySec !== null ? ` +${round(f.bySec * 1000, 3)} ms` : f.byFactor ? ` ×${f.byFactor}` : '';
  return `${f.action} ${f.node ?? ''}${by}${f.forSec !== null ? ` for ${f.forSec} s` : ''}`;
}

/**
 * A fault's DBAgent takeover in one phrase: `app-standby led 14,612 ms after (term 2; TTL 15,000 ms,
 * within it; 112 ms after the old lease lapsed)`, or `none: <reason>`.
 */
export function takeoverText(t: NonNullable<NonNullable<RunResult['faults']>[number]['takeover']>): string {
  const ttl = t.leaseTtlMs === null ? 'TTL unknown' : `TTL ${fmtCount(t.leaseTtlMs)} ms`;
  if (t.node === null || t.takeoverMs === null) return `none: ${t.reason ?? 'no app node took the lease'}${t.withinTtl === false ? ` (${ttl}: NOT within it)` : ''}`;
  const within = t.withinTtl === null ? '' : t.withinTtl ? ', within it' : ', NOT within it';
  const lapse = t.afterLapseMs === null ? '' : `; ${fmtCount(t.afterLapseMs)} ms after the old lease lapsed`;
  return `${t.node} led ${fmtCount(t.takeoverMs)} ms after (term ${t.term ?? '?'}; ${ttl}${within}${lapse})`;
}

export function renderMarkdown(r: RunResult): string {
  const v = verdictOf(r);
  const s = r.summary;
  const out: string[] = [];
  out.push(`## rmmscale: ${mdEsc(r.scenario.name)}: ${STATUS_LABEL[v.status]}`, '', `**${mdEsc(v.headline)}**`, '');
  if (!s.trustworthy) {
    out.push('> [!CAUTION]', '> **Not trustworthy:** the load generator or the host saturated, so these numbers measure the test rig, not the stack. Do not use these ceilings.');
    for (const w of v.warnings) out.push(`> - ${mdEsc(w)}`);
    out.push('');
  } else if (v.warnings.length) {
    out.push('> [!WARNING]', '> **Warnings**');
    for (const w of v.warnings) out.push(`> - ${mdEsc(w)}`);
    out.push('');
  }
  const ceiling = s.ceilingAgents === null && s.ceilingRps === null ? `none measured${r.search ? '' : ' (a staged run does not search for one)'}` : `${fmtCount(s.ceilingAgents)} agents, ${fmtRate(s.ceilingRps)}`;
  out.push(`**Ceiling:** ${ceiling} · **Limiting tier:** ${mdEsc(s.limitingTier ?? '–')}`, '');
  if (s.tiers.length) {
    out.push(
      mdTable(
        ['Tier', 'Ceiling (agents)', 'Ceiling (req/s)', 'Why it stops there'],
        ['l', 'r', 'r', 'l'],
        s.tiers.map((t) => [t.tier === s.limitingTier ? `${t.tier} (limiting)` : t.tier, fmtCount(t.ceilingAgents), fmtRate(t.ceilingRps), t.limitedBy]),
      ),
      '',
    );
  }
  const h = r.headline;
  if (h) {
    const w = headlineWindow(r);
    out.push(`### Key latencies${w ? ` at ${fmtCount(w.agents)} agents (window #${w.index}, ${mdEsc(w.label)})` : ''}`, '');
    out.push(
      mdTable(
        ['Operation', 'Requests', 'Errors', 'p50', 'p90', 'p95', 'p99', 'p99.9', 'max'],
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
        [latencyRow('all', h.client), ...Object.entries(h.client.ops).map(([op, x]) => latencyRow(op, x))],
      ),
      '',
      `SLO: p99 ≤ ${r.slo.p99Ms} ms, errors ≤ ${fmtPct(r.slo.errorRate)}, achieved ≥ ${fmtPct(r.slo.minAchievedRatio, 0)} of offered. Latencies from the intended send time (coordinated omission corrected).`,
      '',
    );
  }
  if (r.plan) {
    const p = r.plan;
    out.push(`### Plan for ${fmtCount(p.agents)} agents: ${p.feasible ? 'feasible' : 'not feasible'}`, '');
    out.push(
      mdTable(
        ['Tier', 'Nodes', 'Demand', 'Capacity', 'Headroom', 'Max agents', 'One node down'],
        ['l', 'r', 'r', 'r', 'r', 'r', 'l'],
        p.tiers.map((t) => [
          t.tier,
          String(t.nodes),
          fmtRate(t.demandRps),
          fmtRate(t.capacityRps),
          fmtPct(t.headroom, 1),
          fmtCount(finiteOrNull(t.maxAgents) ?? Infinity),
          t.oneDown.capacityRps <= 0 ? 'no spare node' : t.oneDown.ok ? `ok (${fmtPct(t.oneDown.headroom, 1)} headroom)` : `over capacity (${fmtPct(t.oneDown.headroom, 1)})`,
        ]),
      ),
      '',
    );
  }
  const faults = r.faults ?? [];
  if (faults.length > 0) {
    // Alert delay (a stack with an analytics node): a column only when some fault measured one.
    const alerts = faults.some((f) => f.alertDelayMs || f.alertDelayCleanMs);
    // The DBAgent's takeover (a fault on an app node): a column only when some fault has one.
    const takeovers = faults.some((f) => f.takeover);
    const delay = (f: (typeof faults)[number]): string => {
      const p50 = (d: typeof f.alertDelayMs): string => (d ? `${fmtCount(d.p50Ms)} ms` : '–');
      return `${p50(f.alertDelayMs)} (clean ${p50(f.alertDelayCleanMs)})`;
    };
    out.push(`### Faults`, '');
    out.push(
      mdTable(
        ['At', 'Fault', 'Ran at', 'Outcome', 'Clients saw errors', ...(alerts ? ['Alert delay p50'] : []), ...(takeovers ? ['DBAgent takeover'] : [])],
        ['r', 'l', 'r', 'l', 'l', ...(alerts ? (['r'] as const) : []), ...(takeovers ? (['l'] as const) : [])],
        faults.map((f) => [
          `${f.at} s (stage ${f.stage})`,
          mdEsc(faultText(f)),
          f.firedAtSec === null ? '–' : `${f.firedAtSec} s`,
          f.outcome === 'failed' ? `failed: ${mdEsc(f.error)}` : f.outcome,
          f.errorsSec === null ? '–' : f.errorsSec === 0 ? 'none' : `${f.errorsSec} s (${fmtCount(f.errors ?? 0)} failed)`,
          ...(alerts ? [delay(f)] : []),
          ...(takeovers ? [f.takeover ? takeoverText(f.takeover) : '–'] : []),
        ]),
      ),
      '',
    );
    // Each fault's client latency against the clean part of its stage, with the verdict on "within 10%".
    const rows = faults.flatMap((f) =>
      (f.latencyVsClean ?? []).map((l) => {
        const p = latencyVsCleanParts(l);
        return [mdEsc(`${faultText(f)} at ${f.at} s`), mdEsc(l.op), p.cleanP50, p.faultP50, p.ratio, p.interval, p.within, `${fmtCount(l.cleanCount)} / ${fmtCount(l.faultCount)}`];
      }),
    );
    if (rows.length) {
      out.push(
        '**Latency during each fault** (p50 during the fault against the clean part of its stage; the ratio\'s 95% interval, a moving-block bootstrap over runs of seconds; within 10%: held when the interval is at or below 1.10×, broken when above, else unresolved)',
        '',
        mdTable(['Fault', 'Op', 'p50 clean', 'p50 during', 'Ratio', '95% interval', 'Within 10%', 'Samples clean / during'], ['l', 'l', 'r', 'r', 'r', 'r', 'l', 'r'], rows),
        '',
      );
    }
  }
  if (r.alertDelayMs) {
    const a = r.alertDelayMs;
    out.push(`**Alert delay** (the analytics node's alerts, from the agent's send to the alert): ${fmtCount(a.alerts)} alerts, p50 ${fmtCount(a.p50Ms)} ms, p99 ${fmtCount(a.p99Ms)} ms, max ${fmtCount(a.maxMs)} ms`, '');
  }
  const st = r.stack;
  const where = st.target ? `external target ${st.target}` : `${st.topology}, ${st.profile} profile, ${st.proxy} proxy, ${st.db}`;
  out.push(
    `<sub>${mdEsc(`${r.scenario.name} · seed ${r.scenario.seed} · ${where} · ${r.windows.length} windows · rmmscale ${r.versions.rmmscale}, node ${r.versions.node} · ${r.host.cpus} × ${r.host.cpuModel} · ${r.startedAt}`)}</sub>`,
    '',
  );
  return out.join('\n');
}
