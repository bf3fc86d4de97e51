import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { RunResult } from '../run/result-types.js';
import { chartData, type ChartData } from './chart-data.js';
import { CHARTS_CLIENT_JS } from './charts-client.js';
import { STATUS_LABEL, verdictOf } from './format.js';
import { esc, latencySection, metadataSection, planSection, summarySection, windowsSection } from './html-sections.js';

/**
 * The HTML report: one self-contained file that opens offline. Chart.js is read from this
 * install's node_modules at report time and inlined; the chart data is embedded as JSON; a
 * Content-Security-Policy of `default-src 'none'` makes the browser refuse any network request,
 * so a report cannot phone home even if a later change tried to.
 */

let chartJsCache: string | null = null;

/** chart.js's UMD build, ready to sit inside a <script> element. */
export async function chartJsSource(): Promise<string> {
  if (chartJsCache) return chartJsCache;
  // chart.js's package exports do not expose dist/chart.umd.js; it sits beside the CJS entry.
  const main = createRequire(import.meta.url).resolve('chart.js');
  const file = join(dirname(main), 'chart.umd.js');
  let src: string;
  try {
    src = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`the HTML report needs Chart.js's UMD build at ${file}: ${(err as Error).message} (reinstall rmmscale's dependencies)`);
  }
  // No source-map fetch, and no early end of the inline <script> (the minified build has none today).
  chartJsCache = src.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n').replace(/<\/(script)/gi, '<\\/$1');
  return chartJsCache;
}

/** JSON for a `<script type="application/json">`: `<` escaped so no `</script>` can close it. */
export function embedJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

interface ChartSpec {
  id: keyof typeof CHART_TITLES;
  how: string;
}

const CHART_TITLES = {
  'ceiling-throughput': 'Ceiling: offered against achieved throughput',
  'ceiling-p99': 'Ceiling: p99 latency against load',
  rate: 'Request rate per node over time, stacked by tier',
  'spectrum-ops': 'Latency percentile spectrum per operation (client side)',
  'spectrum-nodes': 'Latency percentile spectrum per node (server side)',
  utilization: 'Utilization per tier over time',
  queue: 'Queue depth per tier over time',
  generator: 'Generator health per window',
  reconnect: 'Reconnect curve per tunnel fault',
  'alert-delay': 'Alert delay per fault: during it against the clean part of its stage',
  'alert-delay-timeline': 'Alert delay over time',
} as const;

function chartSpecs(d: ChartData): ChartSpec[] {
  const slo = `${d.ceiling.minAchievedRatio * 100}%`;
  return [
    {
      id: 'ceiling-throughput',
      how: `Each point is a measured window (green: met the SLO, red: breached it, amber: the generator was not trustworthy). Achieved follows offered until the stack stops keeping up; under the red dotted line (${slo} of offered) the window breaks the SLO. ${
        d.ceiling.usl ? d.ceiling.usl.caption + '.' : (d.ceiling.uslNote ?? 'No USL fit in this result.')
      }`,
    },
    {
      id: 'ceiling-p99',
      how: `Client p99 (coordinated omission corrected) per window; the red dashed line is the SLO (${d.ceiling.sloP99Ms} ms).${d.ceiling.ceilingLoad !== null ? ' The green dashed line marks the ceiling.' : ''}`,
    },
    { id: 'rate', how: 'Requests per second each node served, scraped every second. Nodes of a tier stack on each other, so the top of a tier is that tier’s total. Shaded: the measured part of each window (green met the SLO, red did not).' },
    {
      id: 'spectrum-ops',
      how: `HDR-style: the x axis is 1/(1−p) on a log scale, so 90%, 99%, 99.9% are evenly spaced and the tail gets room. ${d.spectrum.window ? `From ${d.spectrum.window}.` : ''} A line that bends up late is a tail problem; a line that is high everywhere is a throughput problem.`,
    },
    { id: 'spectrum-nodes', how: 'Server-side latency (arrival to response end, capacity queueing included), every route of a node merged. Compare with the client spectrum: the difference is network and proxy time.' },
    { id: 'utilization', how: 'Mean share of busy workers over the tier’s nodes (dashed: the database query model). A tier that sits near 1 while the others do not is the bottleneck.' },
    { id: 'queue', how: 'Requests waiting for a worker, summed over the tier’s nodes. A queue that keeps growing within a window means arrivals exceed capacity.' },
    {
      id: 'generator',
      how: 'Bars: the busiest generator worker’s CPU (red: the window was not trustworthy). Above 90% of a core a worker cannot keep its schedule; scheduling lag shows how late sends went out. Host CPU near 100% means the generator and the stack competed for cores.',
    },
    // Only for a run with tunnel faults: the others keep their charts as they were.
    ...(d.reconnect.length > 0
      ? [
          {
            id: 'reconnect' as const,
            how: 'Per tunnel fault, from the fault: the share of the agents it dropped that had a tunnel again (line), and the tunnel connects per second of every agent, reconnects and returns home alike (bars). A jittered policy spreads the bars; a fixed delay stacks them into one. After a restart the bars are the agents returning home.',
          },
        ]
      : []),
    // Only for a run with an analytics node's alerts: the others keep their charts as they were.
    ...(d.alertDelay.length > 0
      ? [
          {
            id: 'alert-delay' as const,
            how: 'Per fault, the analytics node’s alert delay (the alert’s creation minus the agent’s send of the frame that raised it): p50 and p99 of the alerts from frames sent during the fault (from its firing to the end of its duration; an instant fault: 10 s), against those sent in the clean part of the same stage (outside every fault and the 5 s after it). The count of alerts is in each bar’s tooltip.',
          },
        ]
      : []),
    ...(d.alertDelayTimeline.length > 0
      ? [
          {
            id: 'alert-delay-timeline' as const,
            how: 'Alert delay p50 and p99 per second, by the second the frames were sent, so a fault’s effect lines up with its marker. Seconds without an alert have no point.',
          },
        ]
      : []),
  ];
}

const CSS = `
:root { --ok: #16a34a; --bad: #dc2626; --warn: #b45309; --muted: #6b7280; --line: #e5e7eb; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1200px; padding: 24px; color: #111827; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; } h3 { font-size: 15px; margin: 16px 0 6px; }
.sub { color: var(--muted); margin-bottom: 16px; }
.verdict { font-size: 17px; padding: 12px 14px; border-radius: 6px; border: 1px solid var(--line); background: #f9fafb; }
.badge { display: inline-block; font-weight: 700; padding: 2px 10px; border-radius: 4px; color: #fff; margin-right: 6px; }
.pass .badge { background: var(--ok); } .fail .badge { background: var(--bad); } .untrustworthy .badge { background: var(--bad); } .incomplete .badge { background: var(--warn); }
.alert { margin: 12px 0; padding: 12px 16px; border: 3px solid var(--bad); background: #fef2f2; border-radius: 6px; }
.alert h3 { color: var(--bad); font-size: 18px; margin-top: 0; }
.warn { margin: 12px 0; padding: 10px 16px; border: 1px solid #f59e0b; background: #fffbeb; border-radius: 6px; }
.warn h3 { margin-top: 0; color: var(--warn); }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 10px; margin: 14px 0; }
.tile { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.tile .k { color: var(--muted); font-size: 12px; } .tile .v { font-size: 20px; font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f9fafb; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.ok { color: var(--ok); font-weight: 600; } .bad { color: var(--bad); font-weight: 600; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 18px; align-items: start; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
figcaption { font-weight: 600; margin-bottom: 6px; }
.chart { position: relative; height: 320px; } .chart.empty { height: auto; }
.how { color: var(--muted); font-size: 12.5px; margin: 6px 0 0; }
.nodata { color: var(--muted); font-style: italic; padding: 16px 0; margin: 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 6px 0; } dt { color: var(--muted); } dd { margin: 0; }
pre { background: #f9fafb; border: 1px solid var(--line); padding: 10px; overflow: auto; font-size: 12px; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
@media print { .charts { grid-template-columns: 1fr; } }
`;

/** The complete page. Async only for the one read of Chart.js. */
export async function renderHtml(r: RunResult): Promise<string> {
  const data = chartData(r);
  const v = verdictOf(r);
  const st = r.stack;
  const problems = data.spectrum.problems.length ? `<div class="warn"><ul>${data.spectrum.problems.map((p) => `<li>${esc(p)}</li>`).join('')}</ul></div>` : '';
  const figures = chartSpecs(data)
    .map((c) => `<figure data-chart="${c.id}"><figcaption>${esc(CHART_TITLES[c.id])}</figcaption><div class="chart"></div><p class="how">${esc(c.how)}</p></figure>`)
    .join('\n');
  const title = `rmmscale report: ${r.scenario.name} (${STATUS_LABEL[v.status]})`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header><h1>rmmscale report: ${esc(r.scenario.name)}</h1>
<div class="sub">${esc(r.startedAt)} → ${esc(r.endedAt)} · ${esc(st.target ? `external target ${st.target}` : `${st.topology} (${st.profile} profile, ${st.proxy} proxy, ${st.db})`)} · seed ${esc(r.scenario.seed)} · rmmscale ${esc(r.versions.rmmscale)}</div></header>
${summarySection(r)}
<section id="charts"><h2>Charts</h2>
<noscript><p class="nodata">The charts need JavaScript (inline; the report makes no network requests).</p></noscript>
${problems}
<div class="charts">
${figures}
</div></section>
${planSection(r)}
${latencySection(r)}
${windowsSection(r)}
${metadataSection(r)}
<footer>Generated by rmmscale ${esc(r.versions.rmmscale)} from a ${esc(r.schema)} result. Self-contained: Chart.js is inlined and the page loads nothing from the network.</footer>
<script type="application/json" id="report-data">${embedJson(data)}</script>
<script>${await chartJsSource()}</script>
<script>${CHARTS_CLIENT_JS}</script>
</body>
</html>
`;
}
