/**
 * TEST INPUTS: hand-built `rmmscale.run/1` results for the gate's tests. They are not produced by
 * `rmmscale run`; only the fields the gate reads carry meaningful numbers. Latencies go through real
 * HDR histograms (src/metrics/histogram.ts), so summaries and encoded histograms agree.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createLatencyHistogram, encodeHistogram, recordUs, summarize, type LatencySummary } from '../../src/metrics/histogram.js';
import { tierLayout } from '../../src/analysis/tier-sizing.js';
import { RUN_RESULT_SCHEMA, type ClientStats, type NodeWindow, type OpStats, type RunResult, type TierName, type WindowResult } from '../../src/run/result-types.js';

/** 100 latencies whose p99 is `p99Ms`: 99 evenly up to it, one outlier at 1.5×. */
export function latenciesWithP99(p99Ms: number): number[] {
  const out: number[] = [];
  for (let i = 1; i <= 99; i++) out.push((p99Ms * i) / 99);
  out.push(p99Ms * 1.5);
  return out;
}

export function histogramOf(valuesMs: readonly number[]): { summary: LatencySummary; encoded: string } {
  const h = createLatencyHistogram();
  for (const v of valuesMs) recordUs(h, v * 1000);
  return { summary: summarize(h), encoded: encodeHistogram(h) };
}

export function opStats(valuesMs: readonly number[], failed = 0): OpStats {
  const h = histogramOf(valuesMs);
  const completed = valuesMs.length;
  return {
    count: completed + failed,
    completed,
    failed,
    errorRate: failed / (completed + failed),
    latency: h.summary,
    serviceTime: h.summary,
    histograms: { corrected: h.encoded, service: h.encoded },
  };
}

export interface NodeFixture {
  node: string;
  tier: TierName;
  role?: string;
  utilization?: number | null;
  queue?: number | null;
  cpu?: number;
  rate?: number;
  /** Server-side latencies per route (ms). */
  routes?: Record<string, number[]>;
}

export function nodeWindow(n: NodeFixture): NodeWindow {
  const routes: NodeWindow['routes'] = {};
  for (const [route, values] of Object.entries(n.routes ?? {})) {
    const h = histogramOf(values);
    routes[route] = { count: values.length, errors: 0, ratePerSec: values.length / 60, latency: h.summary, histogram: h.encoded };
  }
  return {
    node: n.node,
    role: n.role ?? n.tier,
    tier: n.tier,
    ratePerSec: n.rate ?? 100,
    routes,
    utilization: n.utilization === null ? null : { mean: n.utilization ?? 0.5, max: Math.min(1, (n.utilization ?? 0.5) + 0.1) },
    queueDepth: n.queue === null ? null : { mean: n.queue ?? 0, max: (n.queue ?? 0) * 2, growthPerSec: 0 },
    dbUtilization: null,
    dbQueueDepth: null,
    eventLoopDelayP99MsMax: 5,
    cpuCoresMean: n.cpu ?? 0.4,
    hostLimitedSec: 0,
    erlang: null,
  };
}

export interface RunFixture {
  scenario?: string;
  thresholds?: string[];
  complete?: boolean;
  error?: string | null;
  trustworthy?: boolean;
  warnings?: string[];
  /** Latencies (ms) by operation; default checkin p99 400 ms and heartbeat p99 100 ms. */
  ops?: Record<string, number[]>;
  failed?: number;
  achievedRatePerSec?: number;
  offeredRatePerSec?: number;
  nodes?: NodeFixture[];
  /** A ceiling search; omitted: a staged run (search null). */
  search?: { outcome: NonNullable<RunResult['search']>['outcome']; unit?: 'agents' | 'rate'; ceilingAgents?: number | null; ceilingRps?: number | null; lastGood?: number | null; firstBad?: number | null };
  tiers?: Array<{ tier: TierName; ceilingAgents: number | null; ceilingRps: number | null; limitedBy?: string }>;
  schedulingLagP99Us?: number;
  /** false: no headline window. */
  headline?: boolean;
  cpuModel?: string;
}

export function runResult(f: RunFixture = {}): RunResult {
  const opsMs = f.ops ?? { checkin: latenciesWithP99(400), heartbeat: latenciesWithP99(100) };
  const ops: Record<string, OpStats> = {};
  const all: number[] = [];
  for (const [name, values] of Object.entries(opsMs)) {
    ops[name] = opStats(values);
    all.push(...values);
  }
  const failed = f.failed ?? 0;
  const total = histogramOf(all);
  const client: ClientStats = {
    agents: 20000,
    offeredRatePerSec: f.offeredRatePerSec ?? 100,
    attemptedRatePerSec: f.offeredRatePerSec ?? 100,
    achievedRatePerSec: f.achievedRatePerSec ?? 99.5,
    count: all.length + failed,
    completed: all.length,
    failed,
    late: 0,
    dropped: 0,
    errorRate: failed / (all.length + failed),
    latency: total.summary,
    ops,
    errors: failed ? { timeout: failed } : {},
  };
  const nodes = (f.nodes ?? [{ node: 'single-1', tier: 'single', utilization: 0.42, queue: 0.5, cpu: 0.61, rate: 99.5, routes: { 'POST /agent/checkin': latenciesWithP99(20) } }]).map(nodeWindow);
  const window: WindowResult = {
    index: 0,
    kind: f.search ? 'step' : 'stage',
    label: 'stage 1',
    agents: 20000,
    checkin: '30%/min',
    startSec: 0,
    warmupSec: 5,
    measuredSec: 60,
    client,
    background: null,
    generator: {
      trustworthy: f.trustworthy ?? true,
      generatorBound: !(f.trustworthy ?? true),
      hostBound: false,
      reasons: [],
      warnings: [],
      workers: 1,
      cpuMax: 0.3,
      schedulingLagP99Us: f.schedulingLagP99Us ?? 1500,
      hostCpuMean: 0.4,
    },
    nodes,
    verdict: { ok: true, breaches: [] },
    diagnosis: { limitingTier: null, evidence: [] },
  };
  const s = f.search;
  return {
    schema: RUN_RESULT_SCHEMA,
    summary: {
      ceilingAgents: s?.ceilingAgents ?? null,
      ceilingRps: s?.ceilingRps ?? null,
      limitingTier: null,
      tiers: (f.tiers ?? []).map((t) => ({ tier: t.tier, ceilingAgents: t.ceilingAgents, ceilingRps: t.ceilingRps, limitedBy: t.limitedBy ?? 'estimated: utilization 0.5 at the ceiling' })),
      trustworthy: f.trustworthy ?? true,
      warnings: f.warnings ?? [],
    },
    scenario: { name: f.scenario ?? 'ci-gate', file: null, description: 'gate test fixture', seed: 'fixture', definition: {} },
    load: { unit: s?.unit ?? 'agents', checkin: { kind: 'fraction', fractionPerMin: 0.3, text: '30%/min' } },
    versions: { rmmscale: '0.1.0', node: 'v20.20.0', libraries: {} },
    host: { hostname: 'fixture', platform: 'linux', kernel: '6.0', cpuModel: f.cpuModel ?? 'Fixture CPU', cpus: 2, memBytes: 4e9, node: 'v20.20.0', openFilesSoft: 1024, openFilesHard: 4096, ephemeralPorts: [32768, 60999] },
    startedAt: '2025-01-01T00:00:00.000Z',
    endedAt: '2025-01-01T00:01:05.000Z',
    complete: f.complete ?? true,
    interrupted: false,
    error: f.error ?? null,
    stack: { topology: 'single', profile: 'automate', proxy: 'builtin', db: 'sqlite', target: null, nodes: nodes.map((n, i) => ({ name: n.node, role: n.role, tier: n.tier, url: `http://127.0.0.1:${18080 + i}`, pid: 1000 + i })), tiers: tierLayout(nodes.map((n) => ({ name: n.node, role: n.role, tier: n.tier }))) },
    slo: { p99Ms: 500, errorRate: 0.01, minAchievedRatio: 0.95 },
    thresholds: f.thresholds ?? [],
    windows: [window],
    headline: f.headline === false ? null : { windowIndex: 0, client, nodes },
    search: s ? { outcome: s.outcome, unit: s.unit ?? 'agents', lastGood: s.lastGood ?? null, firstBad: s.firstBad ?? null, precision: 0.05 } : null,
    fits: { usl: null, uslError: null },
    plan: null,
    timeline: {},
    hlogFiles: [],
    faults: [],
    ledger: null,
  };
}

/** A fixture with the checkin p99 moved to `p99Ms` (other fields default). */
export function runWithCheckinP99(p99Ms: number, f: RunFixture = {}): RunResult {
  return runResult({ ...f, ops: { checkin: latenciesWithP99(p99Ms), heartbeat: latenciesWithP99(100) } });
}

export function writeJson(path: string, doc: unknown): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(doc));
  return path;
}
