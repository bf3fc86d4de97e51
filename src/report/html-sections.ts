import { finiteOrNull, fmtBytes, fmtCount, fmtPct, fmtRate, fmtUs } from '../core/format.js';
import type { OpStatsRow } from '../metrics/op-stats.js';
import type { RunResult } from '../run/result-types.js';
import { headlineWindow, STATUS_LABEL, verdictOf } from './format.js';

/**
 * The HTML report's text parts: the summary it opens with, the tables and the run's metadata.
 * Everything from the result goes through `esc` (or `table`, which escapes every cell): scenario
 * names, labels and error messages are user text.
 */

export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Already-safe HTML for a table cell (built with esc). */
export interface Html {
  html: string;
}

type Cell = string | number | Html;

export function table(head: string[], rows: Cell[][], cls = ''): string {
  const cell = (c: Cell, tag: 'td' | 'th'): string => {
    const numeric = typeof c === 'number' || (typeof c === 'string' && /^[-–+]?[\d,.]+(\s?(%|µs|ms|s|req\/s|agents))?$/.test(c));
    const body = typeof c === 'object' ? c.html : esc(c);
    return `<${tag}${numeric && tag === 'td' ? ' class="num"' : ''}>${body}</${tag}>`;
  };
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${head.map((h) => cell(h, 'th')).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => cell(c, 'td')).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

export function summarySection(r: RunResult): string {
  const v = verdictOf(r);
  const s = r.summary;
  const untrusted = !s.trustworthy;
  const hw = headlineWindow(r);
  const p99 = r.headline?.client.latency.p99Us ?? null;
  const tiles: Array<[string, string]> = [
    ['Ceiling', s.ceilingAgents === null ? (r.search ? 'none found' : 'not searched (staged run)') : `${fmtCount(s.ceilingAgents)} agents`],
    ['Ceiling throughput', fmtRate(s.ceilingRps)],
    ['Limiting tier', s.limitingTier ?? '–'],
    [`Check-in p99${hw ? ` at ${fmtCount(hw.agents)} agents` : ''}`, `${fmtUs(p99)} (SLO ${r.slo.p99Ms} ms)`],
  ];
  const warnings = v.warnings.length
    ? `<div class="${untrusted ? 'alert' : 'warn'}" id="warnings"><h3>${untrusted ? 'Not trustworthy: do not use these ceilings' : 'Warnings'}</h3>${
        untrusted
          ? '<p>The load generator or the host saturated, so the numbers measure the test rig, not the stack. Rerun with more generator workers, on a bigger or separate machine, or at a lower load.</p>'
          : ''
      }<ul>${v.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></div>`
    : untrusted
      ? '<div class="alert" id="warnings"><h3>Not trustworthy: do not use these ceilings</h3><p>The run marked its measurement untrustworthy without a recorded reason.</p></div>'
      : '';
  const tierRows = s.tiers.map((t) => [t.tier + (t.tier === s.limitingTier ? ' (limiting)' : ''), fmtCount(t.ceilingAgents), fmtRate(t.ceilingRps), t.limitedBy]);
  return `<section id="summary">
<div class="verdict ${v.status}"><span class="badge">${STATUS_LABEL[v.status]}</span> <span class="headline">${esc(v.headline)}</span></div>
${warnings}
<div class="tiles">${tiles.map(([k, x]) => `<div class="tile"><div class="k">${esc(k)}</div><div class="v">${esc(x)}</div></div>`).join('')}</div>
<h2>Ceiling per tier</h2>
${tierRows.length ? table(['tier', 'ceiling (agents)', 'ceiling (req/s)', 'why it stops there'], tierRows) : '<p class="nodata">No per-tier ceilings in this result.</p>'}
${diagnosis(r)}
</section>`;
}

/** The evidence of the lowest-load window that broke the SLO: what broke first. */
function diagnosis(r: RunResult): string {
  const bad = [...r.windows].filter((w) => !w.verdict.ok).sort((a, b) => a.agents - b.agents || a.index - b.index)[0];
  if (!bad) return '';
  const lines = [...bad.verdict.breaches.map((b) => `breach: ${b}`), ...bad.diagnosis.evidence];
  const suspect = bad.generator.trustworthy ? '' : ' (not trustworthy: the generator saturated)';
  return `<h3>Diagnosis at the first load over the SLO: window #${bad.index} (${esc(bad.label)}, ${fmtCount(bad.agents)} agents)${suspect}</h3>
<ul class="evidence">${lines.map((l) => `<li>${esc(l)}</li>`).join('')}</ul>`;
}

export function planSection(r: RunResult): string {
  const p = r.plan;
  if (!p) return '<section id="plan"><h2>Capacity plan</h2><p class="nodata">No plan in this result (the run had no plan target, or no ceiling to plan from).</p></section>';
  const rows = p.tiers.map((t) => [
    t.tier + (t.tier === p.firstToSaturate.tier ? ' (first to saturate)' : ''),
    t.nodes,
    fmtRate(t.demandRps),
    fmtRate(t.capacityRps),
    fmtPct(t.headroom, 1),
    fmtCount(finiteOrNull(t.maxAgents) ?? Infinity),
    t.oneDown.capacityRps > 0 ? `${fmtPct(t.oneDown.headroom, 1)} ${t.oneDown.ok ? '✓' : '✗'}` : 'no spare node ✗',
    t.note ?? '',
  ]);
  return `<section id="plan"><h2>Capacity plan for ${fmtCount(p.agents)} agents: ${p.feasible ? 'feasible' : '<span class="bad">not feasible</span>'}</h2>
<p>${esc(p.firstToSaturate.tier)} saturates first, at ${fmtCount(finiteOrNull(p.firstToSaturate.atAgents))} agents.</p>
${table(['tier', 'nodes', 'demand', 'capacity', 'headroom', 'max agents', 'one node down', 'note'], rows)}</section>`;
}

export function latencySection(r: RunResult): string {
  const h = r.headline;
  if (!h) return '<section id="latency"><h2>Key latencies</h2><p class="nodata">No headline window: no latencies to show.</p></section>';
  const row = (name: string, s: OpStatsRow, svc: string): Cell[] => [
    name,
    fmtCount(s.count),
    fmtPct(s.errorRate),
    ...[s.latency.p50Us, s.latency.p90Us, s.latency.p95Us, s.latency.p99Us, s.latency.p999Us, s.latency.maxUs].map(fmtUs),
    svc,
  ];
  const rows = [row('all operations', h.client, '–'), ...Object.entries(h.client.ops).map(([op, s]) => row(op, s, fmtUs(s.serviceTime.p99Us)))];
  const nodes = h.nodes.filter((n) => n.erlang);
  const erlang = nodes.length
    ? `<h3>Erlang C (M/M/c) against the measured server-side latency</h3>${table(
        ['node', 'servers', 'arrivals', 'utilization', 'predicted mean', 'measured mean', 'predicted p99', 'measured p99', 'note'],
        nodes.map((n) => {
          const e = n.erlang!;
          return [n.node, e.servers, `${e.arrivalPerSec.toFixed(1)}/s`, fmtPct(e.utilization, 1), `${e.predictedMeanMs.toFixed(2)} ms`, `${e.measuredMeanMs.toFixed(2)} ms`, `${e.predictedP99Ms.toFixed(2)} ms`, `${e.measuredP99Ms.toFixed(2)} ms`, e.note ?? ''];
        }),
      )}`
    : '';
  const w = headlineWindow(r);
  return `<section id="latency"><h2>Key latencies${w ? ` at the headline window #${w.index} (${esc(w.label)})` : ' (all measured windows merged)'}</h2>
<p>Client side, from the intended send time (coordinated omission corrected); the last column is the p99 from the actual send time.</p>
${table(['operation', 'requests', 'errors', 'p50', 'p90', 'p95', 'p99', 'p99.9', 'max', 'service p99'], rows)}${erlang}</section>`;
}

export function windowsSection(r: RunResult): string {
  if (r.windows.length === 0) return '<section id="windows"><h2>Windows</h2><p class="nodata">No measured windows.</p></section>';
  const rows = r.windows.map((w) => [
    `#${w.index}${r.headline?.windowIndex === w.index ? ' ★' : ''}`,
    w.kind,
    w.label,
    fmtCount(w.agents),
    fmtRate(w.client.offeredRatePerSec),
    fmtRate(w.client.achievedRatePerSec),
    fmtUs(w.client.latency.p99Us),
    fmtPct(w.client.errorRate),
    w.generator.trustworthy ? 'yes' : { html: '<span class="bad">no</span>' },
    w.verdict.ok ? { html: '<span class="ok">met</span>' } : { html: `<span class="bad">breached</span>: ${esc(w.verdict.breaches.join('; '))}` },
    w.diagnosis.limitingTier ?? '',
  ]);
  return `<section id="windows"><h2>Windows</h2><p>★ marks the headline window.</p>
${table(['window', 'kind', 'label', 'agents', 'offered', 'achieved', 'p99', 'errors', 'trustworthy', 'SLO', 'limiting tier'], rows)}</section>`;
}

export function metadataSection(r: RunResult): string {
  const h = r.host;
  const kv = (pairs: Array<[string, string]>): string => `<dl>${pairs.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`;
  const libs = Object.entries(r.versions.libraries ?? {}).map(([k, v]) => `${k} ${v}`).join(', ');
  const st = r.stack;
  let definition: string;
  try {
    definition = JSON.stringify(r.scenario.definition, null, 2) ?? 'null';
  } catch {
    definition = String(r.scenario.definition);
  }
  return `<section id="metadata"><h2>Run</h2>
${kv([
  ['scenario', r.scenario.name],
  ['scenario file', r.scenario.file ?? '(built in)'],
  ['description', r.scenario.description || '–'],
  ['seed', r.scenario.seed],
  ['started', r.startedAt],
  ['ended', r.endedAt],
  ['complete', r.complete ? 'yes' : `no${r.interrupted ? ' (interrupted)' : ''}${r.error ? `: ${r.error}` : ''}`],
  ['stack', st.target ? `external target ${st.target}` : `${st.topology}, profile ${st.profile}, proxy ${st.proxy}, db ${st.db}`],
  ['nodes', st.nodes.length ? st.nodes.map((n) => `${n.name} (${n.tier})`).join(', ') : 'none (not started by rmmscale)'],
  ['SLO', `p99 ≤ ${r.slo.p99Ms} ms, errors ≤ ${fmtPct(r.slo.errorRate)}, achieved ≥ ${fmtPct(r.slo.minAchievedRatio, 0)} of offered`],
  ['thresholds', r.thresholds.length ? r.thresholds.join('; ') : 'none'],
  ['search', r.search ? `${r.search.outcome} (by ${r.search.unit}, last good ${fmtCount(r.search.lastGood)}, first bad ${fmtCount(r.search.firstBad)}, precision ${fmtPct(r.search.precision, 1)})` : 'none (staged run)'],
  ['interval logs', r.hlogFiles.length ? r.hlogFiles.join(', ') : 'none'],
])}
<h3>Versions and host</h3>
${kv([
  ['rmmscale', r.versions.rmmscale],
  ['node', r.versions.node],
  ['libraries', libs || '–'],
  ['host', `${h.hostname}: ${h.platform}, kernel ${h.kernel}`],
  ['CPU', `${h.cpus} × ${h.cpuModel}`],
  ['memory', fmtBytes(h.memBytes)],
  ['open files', `${fmtCount(h.openFilesSoft)} soft / ${fmtCount(h.openFilesHard)} hard`],
  ['ephemeral ports', h.ephemeralPorts ? `${h.ephemeralPorts[0]}–${h.ephemeralPorts[1]}` : '–'],
])}
<details><summary>Scenario definition</summary><pre>${esc(definition)}</pre></details></section>`;
}
