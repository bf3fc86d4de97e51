import { judgeStep } from '../../src/analysis/ceiling-search.js';
import { planCapacity } from '../../src/analysis/plan.js';
import { tierLayout } from '../../src/analysis/tier-sizing.js';
import { fitUsl } from '../../src/analysis/usl.js';
import { Rng } from '../../src/core/random.js';
import { createLatencyHistogram, encodeHistogram, mergeEncoded, recordUs, summarize, type LatencySummary } from '../../src/metrics/histogram.js';
import { alertDelay, alertDelayPerSecond } from '../../src/run/alert-delay.js';
import { INSTANT_FAULT_SPAN_MS, SETTLE_MS } from '../../src/run/faults.js';
import type { AlertTiming } from '../../src/stack/analytics/analytics-store.js';
import type { ClientStats, NodeSecond, NodeWindow, OpStats, RunResult, TierName, TierSummary, WindowResult } from '../../src/run/result-types.js';

/**
 * TEST INPUTS for the report tests: RunResult documents built the way `rmmscale run` builds them,
 * from a small simulated split3 stack (proxy, two agent web nodes, one user web node, app, db), not
 * taken from a real run. Histograms are real HDR histograms (recorded, then encoded); verdicts come
 * from the ceiling search's own judgeStep, the fit from fitUsl, the plan from planCapacity. Every
 * document goes through JSON.stringify/parse, exactly as a report reads result.json.
 *
 * The simulated stack: the agent web tier saturates at 340 req/s (170 per node); each agent sends 0.05 req/s
 * (60% check-ins, 30% heartbeats, 10% inventory); the user node carries 15 req/s of dashboard
 * traffic. The search starts at 2000 agents, doubles, then bisects:
 *
 *   2000 ✓ → 4000 ✓ → 8000 ✗ → 6000 ✓ → 7000 ✗ → 6500 ✓     ceiling 6500 agents (precision 7.7%)
 */

export const PER_AGENT_RPS = 0.05;
export const WEB_AGENT_CAP_RPS = 340;
const USER_RPS = 15;
const APP_PER_AGENT_REQ = 0.6;
const DB_PER_APP_REQ = 1.4;
const CAPS = { 'web-user': 120, app: 420, db: 900 } as const;
const WARMUP_SEC = 10;
const MEASURED_SEC = 30;
export const SLO = { p99Ms: 200, errorRate: 0.01, minAchievedRatio: 0.97 };
const OPS = { checkin: 0.6, heartbeat: 0.3, inventory: 0.1 } as const;
const NODES: Array<{ name: string; role: string; tier: TierName; routes: string[] }> = [
  { name: 'db', role: 'db', tier: 'db', routes: ['query:read', 'query:write'] },
  { name: 'app', role: 'app', tier: 'app', routes: ['rpc:checkin', 'rpc:inventory'] },
  { name: 'web-agent-1', role: 'web', tier: 'web-agent', routes: ['/agent/checkin', '/agent/heartbeat', '/agent/inventory'] },
  { name: 'web-agent-2', role: 'web', tier: 'web-agent', routes: ['/agent/checkin', '/agent/heartbeat', '/agent/inventory'] },
  { name: 'web-user-1', role: 'web', tier: 'web-user', routes: ['/api/agents', '/api/commands'] },
  { name: 'proxy', role: 'proxy', tier: 'proxy', routes: ['/agent/*', '/api/*'] },
];

export interface FixtureOptions {
  /** A ceiling search (6 windows) or a staged run (2 stages). */
  search: boolean;
  /** Nodes started and scraped; false: an external target. */
  nodes: boolean;
  plan: boolean;
  fit: boolean;
  /** The generator saturated from 7000 agents up. */
  untrustworthy: boolean;
  /** Free text with HTML and Markdown in it (scenario, warnings, labels). */
  hostileText: boolean;
  /**
   * An analytics node's alerts: two faults (the analytics node slowed ×10 for 30 s, a relay
   * killed), each with its alert delay during it and in the clean part, and the run's alert delay
   * per second, computed by the run's own functions from simulated alerts.
   */
  alertDelays: boolean;
}

/** Per window: the load, what the stack did with it, and the resulting histograms. */
function simulateWindow(rng: Rng, index: number, kind: WindowResult['kind'], agents: number, o: FixtureOptions, timeline: Record<string, NodeSecond[]>): WindowResult {
  const offered = agents * PER_AGENT_RPS;
  const achieved = Math.min(offered, WEB_AGENT_CAP_RPS) * (1 - 0.002 * rng.next());
  const rho = Math.min(offered / WEB_AGENT_CAP_RPS, 0.995);
  const backlogMs = offered > WEB_AGENT_CAP_RPS ? ((offered - WEB_AGENT_CAP_RPS) * MEASURED_SEC * 1000) / WEB_AGENT_CAP_RPS : 0;
  const queueMeanMs = (2 * rho ** 8) / (1 - rho);
  const sample = (baseMs: number): number => baseMs * Math.exp(0.5 * rng.normal()) + rng.exponential(queueMeanMs) + rng.next() * backlogMs;
  const startSec = index * (WARMUP_SEC + MEASURED_SEC);
  const generatorBound = o.untrustworthy && agents >= 7000;

  // Client side: one histogram pair per operation, ~1 in 5 requests sampled to keep tests quick.
  const ops: Record<string, OpStats> = {};
  const all = createLatencyHistogram();
  let count = 0;
  let failed = 0;
  for (const [op, share] of Object.entries(OPS)) {
    const corrected = createLatencyHistogram();
    const service = createLatencyHistogram();
    const n = Math.round((achieved * share * MEASURED_SEC) / 5);
    const opFailed = backlogMs > 0 ? Math.round(n * 0.004) : 0;
    for (let i = 0; i < n; i++) {
      const serviceMs = sample(op === 'inventory' ? 9 : 4) + 0.6;
      recordUs(service, serviceMs * 1000);
      const lateMs = generatorBound ? rng.exponential(40) : 0;
      recordUs(corrected, (serviceMs + lateMs) * 1000);
      recordUs(all, (serviceMs + lateMs) * 1000);
    }
    count += n;
    failed += opFailed;
    ops[op] = { count: n, completed: n - opFailed, failed: opFailed, errorRate: n ? opFailed / n : 0, latency: summarize(corrected), serviceTime: summarize(service), histograms: { corrected: encodeHistogram(corrected), service: encodeHistogram(service) } };
  }
  const client: ClientStats = {
    agents,
    offeredRatePerSec: offered,
    attemptedRatePerSec: offered,
    achievedRatePerSec: achieved,
    count,
    completed: count - failed,
    failed,
    late: generatorBound ? Math.round(count * 0.04) : 0,
    dropped: 0,
    errorRate: count ? failed / count : 0,
    latency: summarize(all),
    ops,
    errors: failed ? { 'HTTP 503': failed } : {},
  };

  // Server side: per-node rates and gauges for every second, route histograms for the window.
  const agentRps = achieved;
  const appRps = agentRps * APP_PER_AGENT_REQ;
  const rates: Record<string, number> = { 'web-agent-1': agentRps / 2, 'web-agent-2': agentRps / 2, 'web-user-1': USER_RPS, app: appRps, db: appRps * DB_PER_APP_REQ, proxy: agentRps + USER_RPS };
  const nodes: NodeWindow[] = [];
  if (o.nodes) {
    for (const spec of NODES) {
      const rate = rates[spec.name];
      const cap = spec.tier === 'web-agent' ? WEB_AGENT_CAP_RPS / 2 : spec.tier === 'proxy' ? null : CAPS[spec.tier as keyof typeof CAPS];
      const util = cap ? Math.min(1, rate / cap) : null;
      const series = (timeline[spec.name] ??= []);
      let queue = 0;
      const queues: number[] = [];
      for (let t = 0; t < WARMUP_SEC + MEASURED_SEC; t++) {
        const rps = rate * (1 + 0.04 * rng.normal());
        if (spec.tier === 'web-agent') queue = offered > WEB_AGENT_CAP_RPS ? queue + ((offered - WEB_AGENT_CAP_RPS) / 2) * (0.8 + 0.4 * rng.next()) : rng.int(3) * rho;
        queues.push(queue);
        const u = util === null ? null : Math.min(1, util * (1 + 0.03 * rng.normal()));
        series.push({
          tSec: startSec + t,
          requestsPerSec: Math.max(0, rps),
          routes: Object.fromEntries(spec.routes.map((r) => [r, Math.round(rps / spec.routes.length)])),
          errorsPerSec: backlogMs > 0 && spec.tier !== 'db' ? rng.int(3) : 0,
          inflight: Math.round(rps * 0.01 + queue),
          busyWorkers: u === null ? null : Math.round(u * 8),
          queueDepth: spec.tier === 'proxy' || spec.tier === 'db' ? null : spec.tier === 'web-agent' ? Math.round(queue) : rng.int(2),
          utilization: spec.tier === 'proxy' || spec.tier === 'db' ? null : u,
          dbUtilization: spec.tier === 'db' ? u : null,
          dbQueueDepth: spec.tier === 'db' ? rng.int(3) : null,
          eventLoopDelayP99Ms: 1 + rng.next() * 4,
          cpuCores: Math.min(1, 0.1 + rps / 500),
          hostCpu: 0.3 + rho * 0.4,
          hostLimited: false,
        });
      }
      const routes: NodeWindow['routes'] = {};
      for (const r of spec.routes) {
        const h = createLatencyHistogram();
        const n = Math.round((rate * MEASURED_SEC) / spec.routes.length / 5);
        const base = spec.tier === 'db' ? 0.8 : spec.tier === 'app' ? 1.5 : 3.5;
        for (let i = 0; i < n; i++) recordUs(h, (spec.tier === 'web-agent' || spec.tier === 'proxy' ? sample(base) : base * Math.exp(0.4 * rng.normal())) * 1000);
        routes[r] = { count: n * 5, errors: 0, ratePerSec: rate / spec.routes.length, latency: summarize(h), histogram: encodeHistogram(h) };
      }
      const measured = queues.slice(WARMUP_SEC);
      nodes.push({
        node: spec.name,
        role: spec.role,
        tier: spec.tier,
        ratePerSec: rate,
        routes,
        utilization: util === null || spec.tier === 'db' ? null : { mean: util, max: Math.min(1, util * 1.05) },
        queueDepth: spec.tier === 'proxy' || spec.tier === 'db' ? null : { mean: avg(measured), max: Math.max(...measured), growthPerSec: (measured[measured.length - 1] - measured[0]) / MEASURED_SEC },
        dbUtilization: spec.tier === 'db' && util !== null ? { mean: util, max: Math.min(1, util * 1.05) } : null,
        dbQueueDepth: spec.tier === 'db' ? { mean: 1, max: 2, growthPerSec: 0 } : null,
        eventLoopDelayP99MsMax: 5,
        cpuCoresMean: Math.min(1, 0.1 + rate / 500),
        hostLimitedSec: 0,
        erlang:
          spec.tier === 'web-agent'
            ? { servers: 4, meanServiceMs: 23.5, arrivalPerSec: rate, utilization: util!, predictedMeanMs: 4 + queueMeanMs, predictedP99Ms: 4 + queueMeanMs * 4.6, measuredMeanMs: nodeLatency(routes).meanUs / 1000, measuredP99Ms: nodeLatency(routes).p99Us / 1000, note: 'lognormal service time: the exponential model overstates the tail' }
            : null,
      });
    }
  }
  const verdict = judgeStep({ offeredRatePerSec: offered, achievedRatePerSec: achieved, p99Us: client.latency.p99Us, errorRate: client.errorRate, trustworthy: !generatorBound }, { p99Us: SLO.p99Ms * 1000, errorRate: SLO.errorRate, minAchievedRatio: SLO.minAchievedRatio });
  const hot = o.hostileText && index === 0 ? ' <b>bold</b> | pipe' : '';
  return {
    index,
    kind,
    label: (kind === 'stage' ? `stage ${index + 1}: ${agents} agents` : `${kind} ${agents} agents`) + hot,
    agents,
    checkin: '300%/min',
    startSec,
    warmupSec: WARMUP_SEC,
    measuredSec: MEASURED_SEC,
    client,
    background: { ...client, agents: 0, offeredRatePerSec: USER_RPS, achievedRatePerSec: USER_RPS, ops: {}, errors: {} },
    generator: {
      trustworthy: !generatorBound,
      generatorBound,
      hostBound: false,
      reasons: generatorBound ? ['4.0% of sends left more than 50 ms after their intended time (limit 1%); scheduling lag p99 61.0 ms'] : [],
      warnings: [],
      workers: 2,
      cpuMax: generatorBound ? 0.97 : 0.15 + (agents / 8000) * 0.5,
      schedulingLagP99Us: generatorBound ? 61_000 : 600 + agents / 4,
      hostCpuMean: 0.3 + rho * 0.4,
    },
    nodes,
    verdict,
    diagnosis: verdict.ok
      ? { limitingTier: null, evidence: [] }
      : { limitingTier: 'web-agent', evidence: [`web-agent: utilization ${Math.min(1, offered / WEB_AGENT_CAP_RPS).toFixed(2)} (web-agent-1), queue growing ${((offered - WEB_AGENT_CAP_RPS) / 1).toFixed(0)}/s`, 'app: utilization 0.50', 'db: query utilization 0.32'] },
  };
}

function avg(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
}

/** Server-side latency of a node: its routes' histograms merged. */
function nodeLatency(routes: NodeWindow['routes']): LatencySummary {
  return summarize(mergeEncoded(Object.values(routes).map((r) => r.histogram)));
}

export function buildResult(opts: Partial<FixtureOptions> = {}): RunResult {
  const o: FixtureOptions = { search: true, nodes: true, plan: true, fit: true, untrustworthy: false, hostileText: false, alertDelays: false, ...opts };
  const rng = new Rng('report-fixture');
  const timeline: Record<string, NodeSecond[]> = {};
  const loads = o.search ? ([[2000, 'step'], [4000, 'step'], [8000, 'step'], [6000, 'bisect'], [7000, 'bisect'], [6500, 'bisect']] as const) : ([[3000, 'stage'], [5000, 'stage']] as const);
  const windows = loads.map(([agents, kind], i) => simulateWindow(rng, i, kind, agents, o, timeline));
  const expectOk = o.search ? [true, true, false, true, false, true] : [true, true];
  windows.forEach((w, i) => {
    if (w.verdict.ok !== expectOk[i]) throw new Error(`fixture drifted: window ${i} (${w.agents} agents) ${w.verdict.ok ? 'met' : 'broke'} the SLO: ${w.verdict.breaches.join('; ')}`);
  });
  const head = o.search ? windows[5] : windows[1];
  const ceilingAgents = o.search ? 6500 : null;
  const tierOrder: TierName[] = ['proxy', 'web-agent', 'web-user', 'app', 'db'];
  const tiers: TierSummary[] = !o.nodes
    ? []
    : tierOrder.map((tier): TierSummary => {
        const ns = head.nodes.filter((n) => n.tier === tier);
        const utils = ns.map((n) => n.utilization?.mean ?? n.dbUtilization?.mean ?? null).filter((u): u is number => u !== null);
        if (utils.length === 0) return { tier, ceilingRps: null, ceilingAgents: null, limitedBy: 'unknown: no capacity model' };
        const u = avg(utils);
        const rate = ns.reduce((a, n) => a + n.ratePerSec, 0);
        if (tier === 'web-agent' && o.search) return { tier, ceilingRps: Math.round(rate), ceilingAgents, limitedBy: `limiting: utilization ${u.toFixed(2)}, queue growing` };
        return {
          tier,
          ceilingRps: Math.round(rate / u),
          ceilingAgents: tier !== 'web-user' && ceilingAgents ? Math.floor(ceilingAgents / u / 100) * 100 : null,
          limitedBy: `estimated: utilization ${u.toFixed(2)} at the ceiling`,
        };
      });
  const untrusted = o.untrustworthy;
  const result: RunResult = {
    schema: 'rmmscale.run/1',
    summary: {
      ceilingAgents: untrusted ? null : ceilingAgents,
      ceilingRps: untrusted || !o.search ? null : Math.round(head.client.achievedRatePerSec),
      limitingTier: o.search && o.nodes && !untrusted ? 'web-agent' : null,
      tiers: untrusted ? [] : tiers,
      trustworthy: !untrusted,
      warnings: [
        ...(untrusted ? ['generator-bound from 7000 agents: the load generator, not the stack, limited the search'] : []),
        ...(o.hostileText ? ['<script>alert("warning")</script> & a | pipe'] : []),
      ],
    },
    scenario: {
      name: o.hostileText ? 'split3 <img src=x onerror=alert(1)> "ceiling"' : 'split3-ceiling',
      file: 'scenarios/split3-ceiling.yaml',
      description: o.hostileText ? 'ends the script early: </script><script>alert(2)</script>' : 'Find the agent ceiling of the split3 stack under the automate profile.',
      seed: 'fixture-seed-1',
      definition: { stack: { topology: 'split3', profile: 'automate' }, fleet: { agents: 2000, checkin: '300%/min', mix: OPS }, ceiling: { start: 2000, max: 64000, stepFactor: 2, precision: 0.1 }, slo: SLO },
    },
    // PER_AGENT_RPS (0.05/s) is 300%/min.
    load: { unit: 'agents', checkin: { kind: 'fraction', fractionPerMin: PER_AGENT_RPS * 60, text: '300%/min' } },
    versions: { rmmscale: '0.1.0', node: 'v20.20.0', libraries: { 'hdr-histogram-js': '3.0.1', undici: '7.16.0', ws: '8.18.3' } },
    host: { hostname: 'ci-runner-1', platform: 'linux-x64', kernel: '6.1.0-18-amd64', cpuModel: 'AMD EPYC 7B13', cpus: 2, memBytes: 8 * 1024 ** 3, node: 'v20.20.0', openFilesSoft: 1_048_576, openFilesHard: 1_048_576, ephemeralPorts: [32768, 60999] },
    startedAt: '2026-11-23T10:00:00.000Z',
    endedAt: `2026-11-23T10:0${o.search ? 4 : 1}:20.000Z`,
    complete: true,
    interrupted: false,
    error: null,
    stack: {
      topology: o.nodes ? 'split3' : 'external',
      profile: o.nodes ? 'automate' : 'none',
      proxy: 'builtin',
      db: 'sqlite',
      target: o.nodes ? null : 'http://127.0.0.1:8080',
      nodes: o.nodes ? NODES.map((n, i) => ({ name: n.name, role: n.role, tier: n.tier, url: `http://127.0.0.1:${41000 + i}`, pid: 5000 + i })) : [],
      tiers: o.nodes ? tierLayout(NODES) : [],
    },
    slo: SLO,
    thresholds: ['checkin.p99 < 200ms', 'errors.rate < 1%'],
    windows,
    headline: { windowIndex: o.search ? head.index : null, client: head.client, nodes: head.nodes },
    search: o.search ? { outcome: untrusted ? 'untrustworthy' : 'found', unit: 'agents', lastGood: 6500, firstBad: 7000, precision: 0.1 } : null,
    fits: { usl: null, uslError: o.fit ? null : 'the USL fit needs at least 3 points with load > 0, got 2' },
    plan: null,
    timeline,
    hlogFiles: windows.map((w) => `window-${w.index}.hlog`),
    faults: [],
    ledger: null,
  };
  if (o.fit) {
    const f = fitUsl(windows.map((w) => ({ load: w.agents, throughput: w.client.achievedRatePerSec })));
    result.fits.usl = { loadUnit: 'agents', points: windows.map((w) => ({ load: w.agents, throughput: w.client.achievedRatePerSec })), sigma: f.sigma, kappa: f.kappa, lambda: f.lambda, nMax: f.nMax, xMax: f.xMax, r2: f.r2 };
  }
  if (o.plan) {
    result.plan = planCapacity(
      [
        { tier: 'web-agent', perNodeCeilingRps: 162, demandPerAgentRps: PER_AGENT_RPS, scalable: true },
        { tier: 'app', perNodeCeilingRps: 420, demandPerAgentRps: PER_AGENT_RPS * APP_PER_AGENT_REQ, scalable: false },
        { tier: 'db', perNodeCeilingRps: 900, demandPerAgentRps: PER_AGENT_RPS * APP_PER_AGENT_REQ * DB_PER_APP_REQ, scalable: false },
      ],
      { agents: 20_000, maxUtilization: 0.8, redundancy: 'n+1' },
    );
  }
  if (o.alertDelays) simulateAlerts(result, rng);
  // What a report reads is the file: Infinity becomes null, undefined keys vanish.
  return JSON.parse(JSON.stringify(result)) as RunResult;
}

/**
 * Alerts raised every 250 ms of the run (a delay of ~150 ms, twice that and a longer tail while
 * the analytics node is slowed), and the faults' and the run's alert delay from them, as the run
 * computes them (run/alert-delay.ts).
 */
function simulateAlerts(result: RunResult, rng: Rng): void {
  const startMs = Date.parse(result.startedAt);
  const endSec = Math.round((Date.parse(result.endedAt) - startMs) / 1000);
  const slow = { fromMs: startMs + 51_200, toMs: startMs + 81_200 };
  const kill = { fromMs: startMs + 120_400, toMs: startMs + 120_400 + INSTANT_FAULT_SPAN_MS };
  const alerts: AlertTiming[] = [];
  for (let t = 0, id = 1; t < endSec * 1000; t += 250, id++) {
    const sentMs = startMs + t;
    const slowed = sentMs >= slow.fromMs && sentMs < slow.toMs;
    const delayMs = 150 * Math.exp(0.4 * rng.normal()) * (slowed ? 2 : 1) + (slowed ? rng.exponential(300) : 0);
    alerts.push([id, sentMs, sentMs + delayMs]);
  }
  const busy = [slow, kill].map((s) => ({ fromMs: s.fromMs, toMs: s.toMs + SETTLE_MS }));
  const clean = alertDelay(alerts, { fromMs: startMs, toMs: Infinity }, busy);
  const base = { stage: 1, bySec: null, fraction: null, error: null, errorsSec: 0, errors: 0, dropped: null, reconnect: null, relayPeakConnectsPerSec: null, reconnectCurve: null, takeover: null } as const;
  result.faults = [
    { ...base, at: 51, action: 'slow', node: 'analytics', forSec: 30, byFactor: 10, firedAtSec: 51.2, outcome: 'done', alertDelayMs: alertDelay(alerts, slow), alertDelayCleanMs: clean, latencyVsClean: [] },
    { ...base, at: 120, action: 'kill', node: 'relay-2', forSec: null, byFactor: null, firedAtSec: 120.4, outcome: 'done', alertDelayMs: alertDelay(alerts, kill), alertDelayCleanMs: clean, latencyVsClean: [] },
  ];
  result.alertDelayMs = alertDelay(alerts);
  result.alertDelayTimeline = alertDelayPerSecond(alerts, startMs);
}

/**
 * The same result as an rmmscale from before p95 was recorded wrote it: no `p95Us` in any latency
 * summary (client, per operation, service time, node routes). Everything else unchanged.
 */
export function withoutP95(r: RunResult): RunResult {
  return JSON.parse(JSON.stringify(r, (k, v: unknown) => (k === 'p95Us' ? undefined : v))) as RunResult;
}
