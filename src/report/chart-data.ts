import { uslThroughput } from '../analysis/usl.js';
import { round } from '../core/units.js';
import { decodeHistogram, mergeEncoded, type LatencyHistogram } from '../metrics/histogram.js';
import { TIER_NAMES, type NodeSecond, type NodeWindow, type RunResult } from '../run/result-types.js';
import { finiteOrNull } from '../core/format.js';
import { headlineWindow } from './format.js';

/**
 * The numbers behind the HTML report's charts, derived from a RunResult once, on the Node side, and
 * embedded in the page as JSON. The page's script only draws: no histogram decoding in the browser.
 * Every field may be empty; the page shows a "no data" note for an empty chart.
 */

/** [x, y] pairs: compact in the page and what Chart.js parses fastest. */
export type XY = [number, number];

export interface Series {
  label: string;
  /** Colour group: a tier name, or an operation. */
  group: string;
  points: XY[];
}

export interface WindowBand {
  label: string;
  /** Measured part of the window, seconds from the run's start. */
  fromSec: number;
  toSec: number;
  ok: boolean;
}

/** A fault that ran, drawn as a marker on the time charts. */
export interface FaultMarker {
  /** `kill web-agent-1`, `stop db 20 s`, `disconnect 10%`. */
  label: string;
  /** When it ran, seconds from the run's start. */
  atSec: number;
}

export interface CeilingPoint {
  label: string;
  load: number;
  offered: number;
  achieved: number;
  p99Ms: number;
  ok: boolean;
  trustworthy: boolean;
}

/** One tunnel fault's reconnect curve: share of its agents connected again, and connects/s, by seconds from the fault. */
export interface ReconnectSeries {
  label: string;
  agents: number;
  share: XY[];
  connectsPerSec: XY[];
}

/** One fault's alert delay: the alerts from frames sent during it, and in the clean part of its stage. */
export interface AlertDelayBars {
  /** `slow analytics ×10 30 s at 51.2 s`. */
  label: string;
  during: { alerts: number; p50Ms: number; p99Ms: number } | null;
  clean: { alerts: number; p50Ms: number; p99Ms: number } | null;
}

export interface ChartData {
  tiers: string[];
  bands: WindowBand[];
  faults: FaultMarker[];
  reconnect: ReconnectSeries[];
  /** Per fault that ran with an alert delay measured (a stack with an analytics node); empty otherwise. */
  alertDelay: AlertDelayBars[];
  /** Alert delay p50 and p99 per second of the run (result.json alertDelayTimeline); empty without it. */
  alertDelayTimeline: Series[];
  /** Requests/s per node per second; nodes of a tier stack together. */
  rate: Series[];
  spectrum: {
    window: string | null;
    /** Server side, per node: every route's histogram merged. */
    nodes: Series[];
    /** Client side, per operation, coordinated-omission corrected. */
    ops: Series[];
    /** Why there are no spectra, when there are none: shown as the charts' "no data" note. */
    emptyReason: { nodes: string; ops: string };
    problems: string[];
  };
  ceiling: {
    /** `agents`, or `offered req/s` when the load did not vary in agents. */
    loadAxis: 'agents' | 'offered req/s';
    points: CeilingPoint[];
    usl: { curve: XY[]; caption: string } | null;
    uslNote: string | null;
    ceilingLoad: number | null;
    sloP99Ms: number;
    minAchievedRatio: number;
  };
  utilization: Series[];
  queue: Series[];
  generator: Array<{ label: string; cpuMax: number; hostCpuMean: number | null; lagP99Ms: number; trustworthy: boolean }>;
}

export function chartData(r: RunResult): ChartData {
  const tierOf = nodeTiers(r);
  const nodeNames = Object.keys(r.timeline ?? {}).sort((a, b) => tierRank(tierOf(a)) - tierRank(tierOf(b)) || a.localeCompare(b));
  const tiers = [...new Set([...nodeNames.map(tierOf), ...r.stack.nodes.map((n) => n.tier)])].sort((a, b) => tierRank(a) - tierRank(b));
  return {
    tiers,
    bands: r.windows.map((w) => ({ label: w.label, fromSec: w.startSec + w.warmupSec, toSec: w.startSec + w.warmupSec + w.measuredSec, ok: w.verdict.ok })),
    faults: faultMarkers(r),
    reconnect: reconnectSeries(r),
    alertDelay: alertDelayBars(r),
    alertDelayTimeline: alertDelayTimeline(r),
    rate: nodeNames.map((n) => ({ label: n, group: tierOf(n), points: r.timeline[n].map((s) => [s.tSec, round(s.requestsPerSec, 3)] as XY) })),
    spectrum: spectra(r),
    ceiling: ceiling(r),
    ...tierGauges(r, nodeNames, tierOf),
    generator: r.windows.map((w) => ({
      label: `#${w.index} ${w.label}`,
      cpuMax: w.generator.cpuMax,
      hostCpuMean: w.generator.hostCpuMean,
      lagP99Ms: w.generator.schedulingLagP99Us / 1000,
      trustworthy: w.generator.trustworthy,
    })),
  };
}

/** Faults that ran (results written before faults existed have none). */
export function faultMarkers(r: RunResult): FaultMarker[] {
  return (r.faults ?? [])
    .filter((f) => f.outcome === 'done' && f.firedAtSec !== null)
    .map((f) => {
      const what = f.action === 'disconnect' ? `${round((f.fraction ?? 0) * 100, 1)}%` : (f.node ?? '');
      const lasting = f.forSec !== null ? ` ${f.forSec} s` : '';
      const by = f.bySec !== null ? ` +${round(f.bySec * 1000, 1)} ms` : f.byFactor ? ` ×${f.byFactor}` : '';
      return { label: `${f.action} ${what}${by}${lasting}`, atSec: f.firedAtSec! };
    });
}

/** Each tunnel fault with a curve (results written before curves existed have none). */
export function reconnectSeries(r: RunResult): ReconnectSeries[] {
  const markers = faultMarkers(r);
  return (r.faults ?? [])
    .filter((f) => f.outcome === 'done' && f.firedAtSec !== null && f.reconnectCurve && f.reconnect)
    .map((f) => {
      const c = f.reconnectCurve!;
      const agents = f.reconnect!.agents;
      const stepSec = c.stepMs / 1000;
      const label = markers.find((m) => m.atSec === f.firedAtSec)?.label ?? f.action;
      return {
        label: `${label} at ${f.firedAtSec} s`,
        agents,
        share: agents > 0 ? c.back.map((n, i) => [round((i + 1) * stepSec, 3), round(n / agents, 4)] as XY) : [],
        connectsPerSec: c.connects.map((n, i) => [round((i + 1) * stepSec, 3), round(n / stepSec, 1)] as XY),
      };
    });
}

/** Each fault that ran with an alert delay, during it or in its stage's clean part (results without them have none). */
export function alertDelayBars(r: RunResult): AlertDelayBars[] {
  const markers = faultMarkers(r);
  const pick = (d: { alerts: number; p50Ms: number; p99Ms: number } | null | undefined): AlertDelayBars['during'] => (d ? { alerts: d.alerts, p50Ms: d.p50Ms, p99Ms: d.p99Ms } : null);
  return (r.faults ?? [])
    .filter((f) => f.outcome === 'done' && f.firedAtSec !== null && (f.alertDelayMs || f.alertDelayCleanMs))
    .map((f) => ({
      label: `${markers.find((m) => m.atSec === f.firedAtSec)?.label ?? f.action} at ${f.firedAtSec} s`,
      during: pick(f.alertDelayMs),
      clean: pick(f.alertDelayCleanMs),
    }));
}

/** The run's alert delay per second, as a p50 and a p99 line (seconds from the run's start, as the other timelines). */
export function alertDelayTimeline(r: RunResult): Series[] {
  const t = r.alertDelayTimeline ?? [];
  if (t.length === 0) return [];
  return [
    { label: 'p50', group: 'p50', points: t.map((s) => [s.tSec, s.p50Ms] as XY) },
    { label: 'p99', group: 'p99', points: t.map((s) => [s.tSec, s.p99Ms] as XY) },
  ];
}

/** Three decimals: µs for latencies in ms, far below what a chart shows; keeps the page small. */
function tierRank(t: string): number {
  const i = (TIER_NAMES as readonly string[]).indexOf(t);
  return i < 0 ? TIER_NAMES.length : i;
}

function nodeTiers(r: RunResult): (node: string) => string {
  const m = new Map<string, string>();
  for (const w of r.windows) for (const n of w.nodes) m.set(n.node, n.tier);
  for (const n of r.headline?.nodes ?? []) m.set(n.node, n.tier);
  for (const n of r.stack.nodes) m.set(n.name, n.tier);
  return (node) => m.get(node) ?? 'unknown';
}

/**
 * HDR-style percentile spectrum: x = 1/(1−p), ten points per decade from p = 0 (x = 1) to the
 * resolution of the sample (x = count), then the maximum at x = count. y in milliseconds.
 */
export function spectrumPoints(h: LatencyHistogram): XY[] {
  const n = h.totalCount;
  if (n === 0) return [];
  const out: XY[] = [];
  for (let k = 0; ; k++) {
    const x = 10 ** (k / 10);
    if (x > n) break;
    out.push([x, round(h.getValueAtPercentile(100 * (1 - 1 / x)) / 1000, 3)]);
  }
  out.push([Math.max(n, out[out.length - 1][0]), round(h.getValueAtPercentile(100) / 1000, 3)]);
  return out;
}

function spectra(r: RunResult): ChartData['spectrum'] {
  const problems: string[] = [];
  const w = headlineWindow(r);
  const nodes: NodeWindow[] = r.headline?.nodes ?? w?.nodes ?? [];
  const ops = r.headline?.client.ops ?? {};
  const decode = (what: string, f: () => LatencyHistogram): LatencyHistogram | null => {
    try {
      return f();
    } catch (err) {
      problems.push(`${what}: the histogram could not be decoded (${(err as Error).message})`);
      return null;
    }
  };
  const nodeSeries: Series[] = [];
  for (const n of nodes) {
    const h = decode(`node ${n.node}`, () => mergeEncoded(Object.values(n.routes).map((x) => x.histogram)));
    if (h && h.totalCount > 0) nodeSeries.push({ label: n.node, group: n.tier, points: spectrumPoints(h) });
  }
  const opSeries: Series[] = [];
  for (const [op, s] of Object.entries(ops)) {
    const h = decode(`operation ${op}`, () => decodeHistogram(s.histograms.corrected));
    if (h && h.totalCount > 0) opSeries.push({ label: op, group: op, points: spectrumPoints(h) });
  }
  const window = r.headline ? (w ? `window #${w.index} (${w.label})` : 'all measured windows merged') : null;
  const noHeadline = r.search && r.search.outcome !== 'found' && r.search.outcome !== 'above-max' ? `no headline window: the search claimed no ceiling (${r.search.outcome})` : 'no headline window in this result';
  const emptyReason = {
    nodes: !r.headline ? noHeadline : nodes.length === 0 ? 'no nodes were scraped (an external target)' : 'no server-side histograms in the headline window',
    ops: !r.headline ? noHeadline : 'no client operations in the headline window',
  };
  return { window, nodes: nodeSeries, ops: opSeries, emptyReason, problems };
}

function ceiling(r: RunResult): ChartData['ceiling'] {
  const distinctAgents = new Set(r.windows.map((w) => w.agents)).size;
  const loadAxis = r.search?.unit === 'rate' || distinctAgents < 2 ? 'offered req/s' : 'agents';
  const load = (agents: number, offered: number): number => (loadAxis === 'agents' ? agents : offered);
  const points = r.windows
    .map((w) => ({
      label: `#${w.index} ${w.label}`,
      load: load(w.agents, w.client.offeredRatePerSec),
      offered: w.client.offeredRatePerSec,
      achieved: w.client.achievedRatePerSec,
      p99Ms: w.client.latency.p99Us / 1000,
      ok: w.verdict.ok,
      trustworthy: w.generator.trustworthy,
    }))
    .sort((a, b) => a.load - b.load);
  const u = r.fits?.usl ?? null;
  let usl: ChartData['ceiling']['usl'] = null;
  let uslNote: string | null = r.fits?.uslError ? `No USL fit: ${r.fits.uslError}` : null;
  // The fit is drawn on the chart only over the axis it was fitted on (result.fits.usl.loadUnit).
  if (u && u.loadUnit === (loadAxis === 'agents' ? 'agents' : 'rate')) {
    // The measured range and a little beyond; the peak too when it is near enough to matter.
    const measured = Math.max(...points.map((p) => p.load), ...u.points.map((p) => p.load));
    const nMax = finiteOrNull(u.nMax);
    const maxLoad = nMax !== null && nMax <= measured * 1.6 ? nMax * 1.1 : measured * 1.25;
    const curve: XY[] = [];
    for (let i = 1; i <= 80; i++) {
      const n = (maxLoad * i) / 80;
      curve.push([round(n, 3), round(uslThroughput(u, n), 3)]);
    }
    const peak = finiteOrNull(u.nMax) === null ? 'no peak (κ = 0)' : `peak ${Math.round(u.xMax)} req/s at ${Math.round(u.nMax)} ${loadAxis === 'agents' ? 'agents' : 'offered req/s'}`;
    usl = { curve, caption: `USL fit: σ = ${u.sigma.toPrecision(3)}, κ = ${u.kappa.toPrecision(3)}, λ = ${u.lambda.toPrecision(4)}; ${peak}; R² = ${u.r2.toFixed(3)}` };
  } else if (u) {
    uslNote = `The USL fit is over ${u.loadUnit}, not this chart's load axis (${loadAxis}): σ = ${u.sigma.toPrecision(3)}, κ = ${u.kappa.toPrecision(3)}, R² = ${u.r2.toFixed(3)}`;
  }
  const ceilingLoad = loadAxis === 'agents' ? r.summary.ceilingAgents : r.summary.ceilingRps;
  return { loadAxis, points, usl, uslNote, ceilingLoad, sloP99Ms: r.slo.p99Ms, minAchievedRatio: r.slo.minAchievedRatio };
}

/** Per tier and second: mean utilization over the tier's nodes, total queue depth. */
function tierGauges(r: RunResult, nodeNames: string[], tierOf: (n: string) => string): { utilization: Series[]; queue: Series[] } {
  const gauges: Array<{ key: keyof NodeSecond; suffix: string; into: 'utilization' | 'queue'; combine: 'mean' | 'sum' }> = [
    { key: 'utilization', suffix: '', into: 'utilization', combine: 'mean' },
    { key: 'dbUtilization', suffix: ' (db queries)', into: 'utilization', combine: 'mean' },
    { key: 'queueDepth', suffix: '', into: 'queue', combine: 'sum' },
    { key: 'dbQueueDepth', suffix: ' (db queries)', into: 'queue', combine: 'sum' },
  ];
  const out = { utilization: [] as Series[], queue: [] as Series[] };
  const byTier = new Map<string, string[]>();
  for (const n of nodeNames) byTier.set(tierOf(n), [...(byTier.get(tierOf(n)) ?? []), n]);
  for (const g of gauges) {
    for (const [tier, nodes] of byTier) {
      const acc = new Map<number, { sum: number; n: number }>();
      for (const node of nodes) {
        for (const s of r.timeline[node]) {
          const v = s[g.key];
          if (typeof v !== 'number' || !Number.isFinite(v)) continue;
          const a = acc.get(s.tSec) ?? { sum: 0, n: 0 };
          a.sum += v;
          a.n += 1;
          acc.set(s.tSec, a);
        }
      }
      if (acc.size === 0) continue;
      const points = [...acc.entries()].sort((a, b) => a[0] - b[0]).map(([t, a]) => [t, round(g.combine === 'mean' ? a.sum / a.n : a.sum, 3)] as XY);
      out[g.into].push({ label: tier + g.suffix, group: tier, points });
    }
  }
  return out;
}
