import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { searchCeiling, judgeStep, type SearchResult, type StepMeasurement } from '../analysis/ceiling-search.js';
import { erlangC } from '../analysis/erlang-c.js';
import { planCapacity, type Plan, type TierCapacity } from '../analysis/plan.js';
import { fitUsl } from '../analysis/usl.js';
import { writeFileAtomic } from '../core/atomic-write.js';
import { RmmscaleError } from '../core/errors.js';
import { HostCpuSampler, hostFacts } from '../core/host.js';
import { DEFAULT_SECRET } from '../core/identity.js';
import { toolVersion } from '../core/version.js';
import type { LatencySummary } from '../metrics/histogram.js';
import type { Scenario } from '../scenario/types.js';
import { startStack, type RunningStack } from '../stack/launcher.js';
import { resolveProfileSet, type ProfileSet } from '../stack/profiles.js';
import { loadTopology } from '../stack/topology.js';
import type { CapacityProfile } from '../stack/types.js';
import { DEFAULT_CONNECT_RATE_PER_SEC, resolveSwarmConfig, type SwarmInput } from '../swarm/config.js';
import { runSwarm } from '../swarm/coordinator.js';
import type { ProgressSnapshot } from '../swarm/interval-merge.js';
import type { SwarmResult } from '../swarm/result.js';
import { judgeTrust, type Trust } from '../swarm/generator-trust.js';
import { fmtPct } from '../report/format.js';
import { BackgroundTraffic } from './background.js';
import type { RunEvent } from './run-event.js';
import { remeasureDecision, waitForQuietHost } from './remeasure.js';
import { NodeCollector, routeStatsForWindow, type CollectedNode, type CounterSnapshot, type ScrapeSchedule } from './collector.js';
import { calmerWindow, diagnose, slopePerSec, tierCeilings } from './diagnose.js';
import {
  RUN_RESULT_SCHEMA,
  TIER_NAMES,
  type ClientStats,
  type ErlangCheck,
  type GeneratorHealth,
  type NodeSecond,
  type NodeWindow,
  type OpStats,
  type RunResult,
  type RunSummary,
  type TierName,
  type UslResult,
  type WindowResult,
} from './result-types.js';
import { AGENT_ROUTES, type NodeHdrSnapshot } from '../core/protocol.js';

/**
 * `rmmscale run`: start the scenario's stack, wait until every node is healthy, drive the swarm
 * through the stages (or a ceiling search), scrape every node every second, keep each node's
 * exact server-side histograms per window beside the swarm's client-side ones, and write
 * result.json and .hlog files. The stack stops on success, failure and Ctrl-C alike, and what was
 * measured so far is written (atomically) in every case.
 */

export interface RunOptions {
  scenario: Scenario;
  outDir: string;
  allowRemote: boolean;
  /** Ctrl-C. */
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** What happens, as typed events (src/cli/run-events.ts formats them). */
  onEvent?: (e: RunEvent) => void;
  onProgress?: (p: ProgressSnapshot & { window: string }) => void;
  /** How the nodes are scraped each second (default `spread`; `aligned` only for the lag benchmark's peer). */
  scrapeSchedule?: ScrapeSchedule;
}

export interface RunOutput {
  result: RunResult;
  resultFile: string;
}

/** Settling between windows: until no node has requests in flight or queued, this long at most. */
const SETTLE_MAX_MS = 60_000;
/** Unmeasured load a stage sends at its starting count before its measured window (see the stages loop). */
export const STAGE_WARMUP_MS = 3000;

/**
 * The warm-up a window needs before anything in it is measured. A tunnel window is a new swarm that
 * opens its starting fleet first: at the default connect rate that storm keeps a 2-core host busy
 * (a worker's event loop stalled 0.6–1.2 s opening 10,000 tunnels), and the heap compaction after
 * it stalls it again. Both must be over before the window starts, so a tunnel window waits
 * for its connects (half again for handshakes under load) on top of its own warm-up.
 */
export function windowWarmupMs(transport: Scenario['fleet']['transport'], startAgents: number, baseMs: number): number {
  if (transport !== 'ws' || startAgents <= 0) return baseMs;
  // Whole seconds: the swarm's warm-up is counted in its one-second intervals.
  return baseMs + Math.ceil((startAgents / DEFAULT_CONNECT_RATE_PER_SEC) * 1.5) * 1000;
}

const LIB_NAMES = ['undici', 'ws', 'hdr-histogram-js', 'yargs', 'better-sqlite3', 'pg', 'yaml', 'ajv', 'chart.js'];

async function libraryVersions(): Promise<Record<string, string>> {
  const { createRequire } = await import('node:module');
  const { readFileSync } = await import('node:fs');
  const require = createRequire(import.meta.url);
  const out: Record<string, string> = {};
  for (const name of LIB_NAMES) {
    try {
      let dir = require.resolve(name);
      // Walk up to the package's own package.json.
      for (let i = 0; i < 6; i++) {
        dir = dir.slice(0, dir.lastIndexOf('/'));
        try {
          const pkg = JSON.parse(readFileSync(`${dir}/package.json`, 'utf8')) as { name?: string; version?: string };
          if (pkg.name === name && pkg.version) {
            out[name] = pkg.version;
            break;
          }
        } catch {
          // not here
        }
      }
    } catch {
      // not installed
    }
  }
  return out;
}

const asTier = (t: string): TierName => ((TIER_NAMES as readonly string[]).includes(t) ? (t as TierName) : 'single');

function mixText(m: Scenario['fleet']['mix']): string {
  return Object.entries(m)
    .filter(([, w]) => w > 0)
    .map(([k, w]) => `${k}=${w}`)
    .join(',');
}

function clientFromSwarm(r: SwarmResult): ClientStats {
  const ops: Record<string, OpStats> = {};
  for (const [name, o] of Object.entries(r.ops)) {
    const n = o.completed + o.failed;
    ops[name] = { count: o.count, completed: o.completed, failed: o.failed, errorRate: n ? o.failed / n : 0, latency: o.latency, serviceTime: o.serviceTime, histograms: o.histograms };
  }
  return {
    agents: r.config.agents,
    offeredRatePerSec: r.summary.targetRatePerSec,
    attemptedRatePerSec: Math.round((r.summary.attempted / Math.max(0.001, r.config.durationMs / 1000)) * 10) / 10,
    achievedRatePerSec: r.summary.achievedRatePerSec,
    count: r.summary.attempted,
    completed: r.summary.completed,
    failed: r.summary.failed,
    late: r.summary.late,
    dropped: r.summary.dropped,
    errorRate: r.summary.errorRate,
    latency: r.summary.latency,
    ops,
    errors: r.errors,
  };
}

function generatorFromSwarm(r: SwarmResult): GeneratorHealth {
  return {
    trustworthy: r.verdict.trustworthy,
    generatorBound: r.verdict.generatorBound,
    hostBound: r.verdict.hostBound,
    reasons: r.verdict.reasons,
    warnings: r.verdict.warnings,
    workers: r.generator.workers.length,
    cpuMax: Math.max(0, ...r.generator.workers.map((w) => w.cpuMax)),
    schedulingLagP99Us: r.generator.schedulingLag.p99Us,
    hostCpuMean: r.generator.hostCpuMean,
    hostStealMean: r.generator.hostStealMean,
    hostStealMax: r.generator.hostStealMax,
  };
}

const stat = (xs: number[]): { mean: number; max: number } => ({
  mean: xs.length ? Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 1000) / 1000 : 0,
  max: xs.length ? Math.max(...xs) : 0,
});

function nums(xs: Array<number | null>): number[] {
  return xs.filter((x): x is number => x !== null);
}

/** Timeouts the client gave up on: the only errors a slow rig can cause (by reading late). */
function timeoutCount(errors: Record<string, number>): number {
  return Object.entries(errors).reduce((a, [code, n]) => (/timeout/i.test(code) && !code.startsWith('dropped:') ? a + n : a), 0);
}

/** GeneratorTrust for one window of a run: the swarm's facts against the scenario's SLO. */
function judgeWindowTrust(r: SwarmResult, g: GeneratorHealth, c: ClientStats, m: StepMeasurement, sc: Scenario, windowSec: number, hostLimited: string[]): Trust {
  return judgeTrust({
    rig: { generatorBound: g.generatorBound, hostBound: g.hostBound, reasons: g.reasons },
    hostLimitedNodes: hostLimited,
    facts: {
      intended: r.summary.intended,
      attempted: r.summary.attempted,
      late: r.summary.late,
      timeouts: timeoutCount(c.errors),
      completed: r.summary.completed,
      failed: r.summary.failed,
      lagP99Us: r.generator.schedulingLag.p99Us,
      lagMaxUs: r.generator.schedulingLag.maxUs,
      eventLoopDelayMaxUs: Math.round(Math.max(0, ...r.generator.workers.map((w) => w.eldMaxMsMax ?? w.eldP99MsMax)) * 1000),
      timeoutMs: sc.fleet.timeoutMs,
      measuredSec: windowSec,
      hostCpus: r.host.cpus,
      hostCpuMean: r.generator.hostCpuMean,
      hostStealMean: r.generator.hostStealMean,
      hostStealMax: r.generator.hostStealMax,
      workersDied: r.generator.workers.filter((w) => w.exitedEarly).length,
      closedLoop: r.config.closedLoop,
    },
    slo: {
      sloP99Us: sc.slo.p99Ms * 1000,
      sloErrorRate: sc.slo.errorRate,
      sloMinAchievedRatio: sc.slo.minAchievedRatio,
      p99Us: m.p99Us,
      errorRate: m.errorRate,
      achievedRatio: m.offeredRatePerSec > 0 ? m.achievedRatePerSec / m.offeredRatePerSec : 1,
    },
  });
}

/** The p99 the SLO judges: the check-in's when there are check-ins, else every operation's. */
function sloLatency(c: ClientStats): LatencySummary {
  return c.ops.checkin?.latency ?? c.ops['ws-rtt']?.latency ?? c.latency;
}

export async function runScenario(o: RunOptions): Promise<RunOutput> {
  const sc = o.scenario;
  const log = o.log ?? ((): void => undefined);
  const runStartMs = Date.now();
  const startedAt = new Date(runStartMs).toISOString();
  mkdirSync(o.outDir, { recursive: true });
  const resultFile = join(o.outDir, 'result.json');
  const secret = sc.fleet.secret ?? DEFAULT_SECRET;
  const windows: WindowResult[] = [];
  const hlogFiles: string[] = [];
  const warnings: string[] = [];
  let stack: RunningStack | null = null;
  let collector: NodeCollector | null = null;
  let background: BackgroundTraffic | null = null;
  let profileSet: ProfileSet | null = null;
  let search: SearchResult | null = null;
  let error: string | null = null;
  let interrupted = false;
  let currentAgents = sc.stages?.[0]?.agents ?? sc.ceiling?.start ?? sc.fleet.agents;

  // The time bound covers everything; Ctrl-C and the bound both abort the current window.
  const abort = new AbortController();
  const onAbort = (): void => {
    interrupted = true;
    abort.abort();
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const timeLimit = setTimeout(() => {
    error = `the scenario's time limit (${Math.round(sc.timeLimitMs / 1000)} s) ran out`;
    abort.abort();
  }, sc.timeLimitMs);
  timeLimit.unref();

  const nodesMeta = (): RunResult['stack']['nodes'] => (stack ? stack.nodes.map((n) => ({ name: n.name, role: n.role, tier: asTier(n.tier), url: n.url, pid: n.pid })) : []);
  const profileOf = new Map<string, CapacityProfile | undefined>();

  const build = async (complete: boolean): Promise<RunResult> => {
    const timeline: Record<string, NodeSecond[]> = {};
    if (collector) for (const [k, v] of collector.timeline) timeline[k] = v;
    return assemble({
      sc,
      startedAt,
      complete,
      interrupted,
      error,
      windows,
      search,
      timeline,
      hlogFiles,
      warnings,
      nodes: nodesMeta(),
      versions: { rmmscale: toolVersion(), node: process.version, libraries: await libraryVersions() },
    });
  };

  try {
    // The stack.
    let entryUrl: string;
    let wsTargets: string[] = [];
    if (sc.stack.target) {
      entryUrl = sc.stack.target;
      wsTargets = sc.stack.target.split(',').map((t) => t.trim());
    } else {
      const topology = loadTopology(sc.stack.topology ?? 'single');
      profileSet = resolveProfileSet(sc.stack.profile);
      log(`starting ${topology.name} (${topology.nodes.length} node${topology.nodes.length === 1 ? '' : 's'}, profile ${profileSet.name}, proxy ${sc.stack.proxy}, db ${sc.stack.db})…`);
      const dbUrl = sc.stack.db === 'postgres' ? (sc.stack.dbUrl ?? process.env.DATABASE_URL) : undefined;
      stack = await startStack(topology, { secret, profile: profileSet, proxy: sc.stack.proxy, db: sc.stack.db, dbUrl, portBase: sc.stack.portBase ?? undefined });
      for (const n of topology.nodes) profileOf.set(n.name, n.profile ?? profileSet.tiers[n.tier]);
      entryUrl = stack.entryUrl;
      // Agents open their tunnels on each relay's tunnel path, ws:// or wss:// as the relay serves.
      wsTargets = stack.nodes.filter((n) => n.role === 'relay').map((n) => `${n.url.replace(/^http/, 'ws')}${AGENT_ROUTES.tunnel}`);
      stack.on('event', (e: { event: string; node?: string; signal?: string | null; code?: number | null }) => {
        if (e.event === 'node-exit') warnings.push(`node ${e.node} exited during the run (${e.signal ?? `code ${e.code}`})`);
      });
      const collected: CollectedNode[] = stack.nodes.map((n) => ({ name: n.name, role: n.role, tier: asTier(n.tier), url: n.url, metricsUrl: n.metricsUrl }));
      collector = new NodeCollector(collected, runStartMs);
      collector.start(o.scrapeSchedule);
      log(`stack healthy: ${stack.nodes.map((n) => `${n.name} ${n.url}`).join(', ')}`);
    }

    background = new BackgroundTraffic({ entryUrl, secret, seed: sc.fleet.seed, agents: () => currentAgents, streams: sc.background });
    if (background.enabled) background.start();

    const measureWindow = async (
      kind: WindowResult['kind'],
      label: string,
      agents: number,
      checkinText: string,
      warmupMs: number,
      measureMs: number,
      /** Ramp linearly from this count to `agents` over the window (stages); undefined or equal: hold. */
      rampFromAgents?: number,
    ): Promise<WindowResult> => {
      if (abort.signal.aborted) throw new RunAborted();
      currentAgents = agents;
      const index = windows.length;
      const input: SwarmInput = {
        target: sc.fleet.transport === 'ws' ? wsTargets.join(',') : entryUrl,
        agents,
        duration: `${measureMs}ms`,
        warmup: `${warmupMs}ms`,
        mode: sc.fleet.transport,
        // A connection policy is HTTP's; tunnels are one persistent socket per agent.
        connection: sc.fleet.transport === 'ws' ? undefined : sc.fleet.connection,
        arrival: sc.fleet.arrival,
        jitter: `${sc.fleet.jitterMs}ms`,
        seed: sc.fleet.seed,
        secret,
        mix: mixText(sc.fleet.mix),
        timeout: `${sc.fleet.timeoutMs}ms`,
        allowRemote: o.allowRemote,
      };
      if (checkinText.includes('%')) input.checkin = checkinText;
      else input.rate = checkinText;
      if (rampFromAgents !== undefined && rampFromAgents !== agents) {
        input.stage = [`${measureMs}ms:${agents}`];
        input.rampFrom = rampFromAgents;
      }
      const cfg = resolveSwarmConfig(input);
      const windowStartSec = (Date.now() - runStartMs) / 1000;
      const ramp = rampFromAgents !== undefined && rampFromAgents !== agents ? `${rampFromAgents} → ` : '';
      log(`${label}: ${ramp}${agents} agents at ${checkinText}, warm-up ${warmupMs / 1000} s, measured ${measureMs / 1000} s`);
      let startHdr: Promise<Map<string, NodeHdrSnapshot>> | null = null;
      let startCounters: Promise<CounterSnapshot> | null = null;
      let measuredFromMs = 0;
      const markStart = (): void => {
        if (startHdr) return;
        measuredFromMs = Date.now();
        startHdr = collector ? collector.histograms() : Promise.resolve(new Map());
        startCounters = collector ? collector.counters() : Promise.resolve(new Map());
        background?.takeWindow(agents);
      };
      // The server-side snapshot is taken at the instant the swarm's warm-up ends (t = 0 plus the
      // warm-up), so the node's window and the client's window cover the same requests.
      let startTimer: NodeJS.Timeout | null = null;
      const { result: swarm, hlog } = await runSwarm({
        config: cfg,
        signal: abort.signal,
        onEvent: o.onEvent,
        onStart: (startAtEpochMs) => {
          startTimer = setTimeout(markStart, Math.max(0, startAtEpochMs + warmupMs - Date.now()));
        },
        onProgress: (p) => {
          if (!startHdr && !p.warmup) markStart();
          o.onProgress?.({ ...p, window: label });
        },
      }).finally(() => {
        if (startTimer) clearTimeout(startTimer);
      });
      if (!startHdr) markStart();
      const measuredToMs = Date.now();
      const [endHdr, endCounters] = collector ? await Promise.all([collector.histograms(), collector.counters()]) : [new Map<string, NodeHdrSnapshot>(), new Map() as CounterSnapshot];
      const hdr0 = await (startHdr as unknown as Promise<Map<string, NodeHdrSnapshot>>);
      const cnt0 = await (startCounters as unknown as Promise<CounterSnapshot>);
      const bg = background?.enabled ? background.takeWindow(agents) : null;
      const hlogName = `window-${String(index).padStart(2, '0')}.hlog`;
      if (hlog) {
        writeFileAtomic(join(o.outDir, hlogName), hlog);
        hlogFiles.push(hlogName);
      }
      const windowSec = Math.max(1, (measuredToMs - measuredFromMs) / 1000);
      const fromSec = (measuredFromMs - runStartMs) / 1000;
      const toSec = (measuredToMs - runStartMs) / 1000;
      const nodes: NodeWindow[] = [];
      for (const n of stack?.nodes ?? []) {
        const secs = (collector?.timeline.get(n.name) ?? []).filter((s) => s.tSec > fromSec && s.tSec <= toSec + 0.5);
        const end = endHdr.get(n.name);
        const routes = end ? routeStatsForWindow(hdr0.get(n.name), end, cnt0.get(n.name), endCounters.get(n.name), windowSec) : {};
        const count = Object.values(routes).reduce((a, r) => a + r.count, 0);
        const util = nums(secs.map((s) => s.utilization));
        const q = nums(secs.map((s) => s.queueDepth));
        const dbU = nums(secs.map((s) => s.dbUtilization));
        const dbQ = nums(secs.map((s) => s.dbQueueDepth));
        const prof = profileOf.get(n.name);
        const tier = asTier(n.tier);
        const ratePerSec = end ? Math.round((count / windowSec) * 10) / 10 : stat(secs.map((s) => s.requestsPerSec)).mean;
        const nw: NodeWindow = {
          node: n.name,
          role: n.role,
          tier,
          ratePerSec,
          routes,
          utilization: util.length ? stat(util) : null,
          queueDepth: q.length ? { ...stat(q), growthPerSec: Math.round(slopePerSec(q) * 100) / 100 } : null,
          dbUtilization: dbU.length ? stat(dbU) : null,
          dbQueueDepth: dbQ.length ? { ...stat(dbQ), growthPerSec: Math.round(slopePerSec(dbQ) * 100) / 100 } : null,
          eventLoopDelayP99MsMax: Math.max(0, ...secs.map((s) => s.eventLoopDelayP99Ms)),
          cpuCoresMean: stat(secs.map((s) => s.cpuCores)).mean,
          hostLimitedSec: secs.filter((s) => s.hostLimited).length,
          erlang: prof ? erlangCheck(prof, routes, windowSec) : null,
        };
        nodes.push(nw);
      }
      const client = clientFromSwarm(swarm);
      const generator = generatorFromSwarm(swarm);
      const p99 = sloLatency(client).p99Us;
      // "Achieved below offered" is judged against the sends actually made: a Poisson window's
      // arrivals differ from the target by chance (±7% over 5 s at 45/s), a saturated stack's
      // completions fall behind its arrivals for good.
      const m: StepMeasurement = { offeredRatePerSec: client.attemptedRatePerSec, achievedRatePerSec: client.achievedRatePerSec, p99Us: p99, errorRate: client.errorRate, trustworthy: true };
      const verdict = judgeStep(m, { p99Us: sc.slo.p99Ms * 1000, errorRate: sc.slo.errorRate, minAchievedRatio: sc.slo.minAchievedRatio });
      const prevGood = [...windows].reverse().find((w) => w.verdict.ok && w.generator.trustworthy);
      const diagnosis = diagnose(nodes, prevGood?.nodes ?? null);
      const hostLimited = nodes.filter((n) => n.hostLimitedSec > windowSec / 2).map((n) => n.node);
      if (hostLimited.length > 0) {
        generator.hostBound = true;
        generator.reasons.push(`host-limited nodes (event-loop delay or host CPU, not their profile, limited them for most of the window): ${hostLimited.join(', ')}`);
      }
      const trust = judgeWindowTrust(swarm, generator, client, m, sc, windowSec, hostLimited);
      generator.trustworthy = trust.trustworthy;
      generator.trust = trust;
      const w: WindowResult = {
        index,
        kind,
        label,
        agents,
        checkin: checkinText,
        startSec: Math.round(windowStartSec * 10) / 10,
        warmupSec: warmupMs / 1000,
        measuredSec: Math.round(windowSec * 10) / 10,
        client,
        background: bg,
        generator,
        nodes,
        verdict,
        diagnosis,
      };
      windows.push(w);
      const p99Text = `${(p99 / 1000).toFixed(0)} ms`;
      log(
        `${label}: achieved ${client.achievedRatePerSec.toFixed(1)}/s of ${client.offeredRatePerSec.toFixed(1)}/s, p99 ${p99Text}, errors ${(client.errorRate * 100).toFixed(2)}% → ${verdict.ok ? 'OK' : `BREACH (${verdict.breaches.join('; ')})`}` +
          `${generator.trustworthy ? (trust.judgedAs === 'clean' ? '' : ` — trusted (${trust.judgedAs}): ${trust.why}`) : ' — NOT TRUSTWORTHY: ' + trust.why}` +
          `${!verdict.ok && diagnosis.limitingTier ? ` — limited by ${diagnosis.limitingTier}: ${diagnosis.evidence[0]}` : ''}`,
      );
      if (swarm.interrupted || abort.signal.aborted) throw new RunAborted();
      await settle();
      return w;
    };

    const settle = async (): Promise<void> => {
      if (!stack) return;
      const deadline = Date.now() + SETTLE_MAX_MS;
      for (;;) {
        const busy = await Promise.all(
          stack.nodes.map(async (n) => {
            if (n.metricsUrl !== `${n.url}/metrics`) return false;
            try {
              const h = (await (await fetch(`${n.url}/healthz`, { signal: AbortSignal.timeout(2000) })).json()) as { queueDepth?: number | null; db?: { queueDepth: number } | null };
              return (h.queueDepth ?? 0) > 0 || (h.db?.queueDepth ?? 0) > 0;
            } catch {
              return false;
            }
          }),
        );
        if (!busy.some(Boolean)) return;
        if (Date.now() > deadline || abort.signal.aborted) {
          warnings.push(`queues had not drained ${SETTLE_MAX_MS / 1000} s after a window: the next window started on a loaded stack`);
          return;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    };

    if (sc.stages) {
      // Each stage is its own window and its own swarm. A stage ramps linearly from the count the
      // one before ended at (from 0 for the first); a stage that starts from a running fleet first
      // sends STAGE_WARMUP_MS at its starting count (tunnels: longer, windowWarmupMs), measured
      // nowhere, so that the new workers' start-up (JIT, first GCs, connection set-up) is not
      // measured as the stack's latency.
      let prev = 0;
      for (const [i, st] of sc.stages.entries()) {
        const warm = prev > 0 ? windowWarmupMs(sc.fleet.transport, prev, STAGE_WARMUP_MS) : 0;
        await measureWindow('stage', `stage ${i + 1}/${sc.stages.length}`, st.agents, (st.checkin ?? sc.fleet.checkin).text, warm, st.durationMs, prev);
        prev = st.agents;
      }
    } else if (sc.ceiling) {
      const c = sc.ceiling;
      let n = 0;
      search = await searchCeiling(
        async (load) => {
          n++;
          const kind = search === null && windows.some((w) => !w.verdict.ok) ? 'bisect' : 'step';
          const measure = (label: string): Promise<WindowResult> =>
            c.unit === 'agents'
              ? measureWindow(kind, label, load, sc.fleet.checkin.text, windowWarmupMs(sc.fleet.transport, load, c.warmupMs), c.measureMs)
              : measureWindow(kind, label, sc.fleet.agents, `${load}/s`, windowWarmupMs(sc.fleet.transport, sc.fleet.agents, c.warmupMs), c.measureMs);
          let w = await measure(`${kind} ${n}`);
          // A window the generator or host could not be trusted on is measured again: a transient
          // stall on a shared host should not throw away a long search. One more time for the
          // generator's own trouble; up to two for host steal, each after the host has settled
          // (src/run/remeasure.ts). An untrustworthy window after that stops the search: it
          // refuses to call that a ceiling.
          for (let attempts = 0; !w.generator.trustworthy; attempts++) {
            const next = remeasureDecision(attempts, w.generator.hostStealMean ?? null, w.generator.hostStealMax ?? null);
            if (!next.again) break;
            if (next.waitForQuiet) {
              log(`${w.label}: not trustworthy; waiting for the host to settle (steal ${fmtPct(w.generator.hostStealMean, 1)} in the window, ${fmtPct(w.generator.hostStealMax, 1)} in its worst second)`);
              const sampler = new HostCpuSampler();
              const q = await waitForQuietHost({ sample: () => sampler.sample(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)), signal: abort.signal });
              if (abort.signal.aborted) throw new RunAborted();
              const lastText = q.lastSteal === null ? '' : `, steal ${fmtPct(q.lastSteal, 1)} in the last second`;
              log(q.settled ? `host settled after ${q.waitedMs / 1000} s; measuring it again` : `host still busy after ${q.waitedMs / 1000} s${lastText}; measuring it again anyway`);
              if (!q.settled) warnings.push(`${w.label}: the host did not settle within ${q.waitedMs / 1000} s of waiting${lastText}`);
            } else {
              log(`${w.label}: not trustworthy; measuring it once more`);
            }
            const again = await measure(`${kind} ${n} (again${attempts > 0 ? ` ${attempts + 1}` : ''})`);
            w.supersededBy = again.index;
            w = again;
          }
          return { offeredRatePerSec: w.client.attemptedRatePerSec, achievedRatePerSec: w.client.achievedRatePerSec, p99Us: sloLatency(w.client).p99Us, errorRate: w.client.errorRate, trustworthy: w.generator.trustworthy };
        },
        {
          startLoad: c.start,
          maxLoad: c.max,
          stepFactor: c.stepFactor,
          precision: c.precision,
          slo: { p99Us: sc.slo.p99Ms * 1000, errorRate: sc.slo.errorRate, minAchievedRatio: sc.slo.minAchievedRatio },
          maxMeasurements: c.maxSteps,
          grain: c.grain,
        },
      );
    }
  } catch (err) {
    if (err instanceof RunAborted || abort.signal.aborted) {
      if (!error && interrupted) error = 'interrupted (Ctrl-C)';
    } else {
      error = err instanceof RmmscaleError ? err.message : ((err as Error)?.message ?? String(err));
      if (!(err instanceof RmmscaleError)) log(`run failed: ${(err as Error)?.stack ?? String(err)}`);
    }
  } finally {
    clearTimeout(timeLimit);
    o.signal?.removeEventListener('abort', onAbort);
    await background?.stop().catch(() => undefined);
    await collector?.stop().catch(() => undefined);
    if (stack) {
      log('stopping the stack…');
      await stack.stop().catch(() => undefined);
    }
  }
  const result = await build(error === null && !interrupted);
  writeFileAtomic(resultFile, JSON.stringify(result, null, 2) + '\n');
  return { result, resultFile };
}

class RunAborted extends Error {}

/** M/M/c next to what the node measured: servers = workers, the profile's mean service time. */
function erlangCheck(p: CapacityProfile, routes: NodeWindow['routes'], windowSec: number): ErlangCheck | null {
  const count = Object.values(routes).reduce((a, r) => a + r.count, 0);
  if (count === 0) return null;
  const arrival = count / windowSec;
  const q = erlangC(arrival, p.workers, p.service.meanMs);
  const weighted = (f: (l: LatencySummary) => number): number => Object.values(routes).reduce((a, r) => a + f(r.latency) * r.count, 0) / count;
  const finite = (x: number): number => (Number.isFinite(x) ? Math.round(x * 10) / 10 : -1);
  return {
    servers: p.workers,
    meanServiceMs: p.service.meanMs,
    arrivalPerSec: Math.round(arrival * 10) / 10,
    utilization: Math.round(q.utilization * 1000) / 1000,
    predictedMeanMs: finite(q.meanResponseMs),
    predictedP99Ms: finite(q.responsePercentileMs(0.99)),
    measuredMeanMs: Math.round(weighted((l) => l.meanUs) / 100) / 10,
    measuredP99Ms: Math.round(Math.max(...Object.values(routes).map((r) => r.latency.p99Us)) / 100) / 10,
    note:
      p.service.dist !== 'exponential'
        ? `the model assumes exponential service; this node's is ${p.service.dist}`
        : 'the node also waits on the database inside its service slot, so measured ≥ predicted when the database is busy',
  };
}

interface AssembleInput {
  sc: Scenario;
  startedAt: string;
  complete: boolean;
  interrupted: boolean;
  error: string | null;
  windows: WindowResult[];
  search: SearchResult | null;
  timeline: Record<string, NodeSecond[]>;
  hlogFiles: string[];
  warnings: string[];
  nodes: RunResult['stack']['nodes'];
  versions: RunResult['versions'];
}

/** Everything after the measurements: summary, ceilings, fits, plan. Pure over the windows. */
export function assemble(a: AssembleInput): RunResult {
  const { sc, search } = a;
  const warnings = [...a.warnings];
  const why = (w: WindowResult): string => w.generator.trust?.why ?? w.generator.reasons.join('; ');
  for (const w of a.windows) {
    if (w.supersededBy !== undefined) warnings.push(`${w.label}: not trustworthy (${why(w)}); measured again as window #${w.supersededBy}`);
  }
  // Windows measured again are kept in the file for the record, and used for nothing else.
  const windows = a.windows.filter((w) => w.supersededBy === undefined);
  const untrusted = windows.filter((w) => !w.generator.trustworthy);
  for (const w of untrusted) warnings.push(`${w.label}: not trustworthy: ${why(w)}`);
  if (a.error) warnings.push(`incomplete: ${a.error}`);

  // The headline: the ceiling window of a search, or the stages merged (the last stage here).
  let headlineIndex: number | null = null;
  if (search) {
    const good = search.ceilingLoad;
    const cands = windows.filter((w) => w.verdict.ok && (sc.ceiling?.unit === 'agents' ? w.agents === good : Math.abs(w.client.offeredRatePerSec - (good ?? -1)) < 1));
    // No ceiling claimed (untrustworthy, below the start): the last window that met the SLO, so
    // reports and gates still have a measured window to show; the summary claims nothing from it.
    const fallback = cands.length ? cands : windows.filter((w) => w.verdict.ok);
    headlineIndex = fallback.length ? fallback[fallback.length - 1].index : windows.length ? windows[windows.length - 1].index : null;
  } else if (windows.length) headlineIndex = windows[windows.length - 1].index;
  const headlineWindow = headlineIndex === null ? null : a.windows[headlineIndex];

  let summary: RunSummary;
  const trustworthy = untrusted.length === 0 && a.complete;
  if (search && search.outcome === 'found' && headlineWindow) {
    const firstBad = windows.find((w) => !w.verdict.ok && (sc.ceiling?.unit === 'agents' ? w.agents === search.firstBad : true)) ?? windows.find((w) => !w.verdict.ok)!;
    const limiting = firstBad.diagnosis.limitingTier;
    const agents = headlineWindow.agents;
    const calmer = calmerWindow(
      windows.filter((w) => w.generator.trustworthy).map((w) => ({ nodes: w.nodes, agents: w.agents, ok: w.verdict.ok })),
      limiting,
      agents,
    );
    const tiers = tierCeilings(headlineWindow.nodes, agents, limiting, firstBad.diagnosis.evidence, calmer);
    summary = {
      ceilingAgents: sc.ceiling?.unit === 'agents' ? search.ceilingLoad : ceilingAgentsForRate(sc, headlineWindow.client.offeredRatePerSec),
      ceilingRps: Math.round(headlineWindow.client.achievedRatePerSec * 10) / 10,
      limitingTier: limiting,
      tiers,
      trustworthy,
      warnings,
    };
    if (!limiting) warnings.push(`the SLO broke at ${firstBad.label} but no tier showed saturation: ${firstBad.diagnosis.evidence.join('; ')}`);
  } else {
    if (search) {
      const why: Record<string, string> = {
        'below-start': 'the first step already broke the SLO: lower ceiling.start',
        'above-max': 'every step met the SLO up to ceiling.max: the ceiling is higher than searched',
        untrustworthy: 'the generator or the host saturated before the stack: no ceiling is claimed',
        budget: 'ceiling.maxSteps ran out before the search converged',
        found: '',
      };
      warnings.push(`no ceiling: ${why[search.outcome]}`);
    }
    const tiers = headlineWindow ? tierCeilings(headlineWindow.nodes, headlineWindow.agents, null, []) : [];
    summary = { ceilingAgents: null, ceilingRps: null, limitingTier: null, tiers, trustworthy: trustworthy && (!search || search.outcome !== 'untrustworthy'), warnings };
  }

  // USL over every trustworthy window: load = agents (or offered rate), throughput = achieved.
  let usl: UslResult | null = null;
  let uslError: string | null = null;
  const points = windows.filter((w) => w.generator.trustworthy).map((w) => ({ load: sc.ceiling?.unit === 'rate' ? w.client.offeredRatePerSec : w.agents, throughput: w.client.achievedRatePerSec }));
  const distinct = new Set(points.map((p) => p.load)).size;
  if (distinct >= 3) {
    try {
      const f = fitUsl(points);
      usl = { loadUnit: 'agents', points: points.sort((x, y) => x.load - y.load), sigma: f.sigma, kappa: f.kappa, lambda: f.lambda, nMax: Number.isFinite(f.nMax) ? f.nMax : -1, xMax: Number.isFinite(f.xMax) ? f.xMax : -1, r2: f.r2 };
    } catch (err) {
      uslError = (err as Error).message;
    }
  } else uslError = `needs at least 3 distinct loads, got ${distinct}`;

  // A plan answers the scenario's question (plan.agents); planning for the ceiling itself would
  // only restate it with headroom taken off.
  const plan = sc.plan && summary.ceilingAgents !== null && headlineWindow ? planFromSummary(summary, headlineWindow, sc) : null;

  return {
    schema: RUN_RESULT_SCHEMA,
    summary,
    scenario: { name: sc.name, file: sc.file, description: sc.description, seed: sc.fleet.seed, definition: sc.definition },
    versions: a.versions,
    host: hostFacts(),
    startedAt: a.startedAt,
    endedAt: new Date().toISOString(),
    complete: a.complete,
    interrupted: a.interrupted,
    error: a.error,
    stack: { topology: sc.stack.topology ?? 'external', profile: sc.stack.target ? 'n/a' : sc.stack.profile, proxy: sc.stack.proxy, db: sc.stack.db, target: sc.stack.target, nodes: a.nodes },
    slo: { p99Ms: sc.slo.p99Ms, errorRate: sc.slo.errorRate, minAchievedRatio: sc.slo.minAchievedRatio },
    thresholds: sc.thresholds,
    windows: a.windows,
    headline: headlineWindow ? { windowIndex: headlineWindow.index, client: headlineWindow.client, nodes: headlineWindow.nodes } : null,
    search: search
      ? { outcome: search.outcome, unit: sc.ceiling?.unit ?? 'agents', lastGood: search.lastGood, firstBad: search.firstBad, precision: sc.ceiling?.precision ?? 0 }
      : null,
    fits: { usl, uslError },
    plan,
    timeline: a.timeline,
    hlogFiles: a.hlogFiles,
  };
}

/**
 * A rate ceiling in agents: only a per-agent check-in model (a fraction per minute) converts. A
 * fixed aggregate rate says nothing about how many agents would produce it, so no agent figure.
 */
function ceilingAgentsForRate(sc: Scenario, ratePerSec: number): number | null {
  const c = sc.fleet.checkin;
  return c.kind === 'fraction' ? Math.round(ratePerSec / (c.fractionPerMin / 60)) : null;
}

/** Tiers that cannot scale out: one DBAgent, one database; the single server is one box. */
const SINGLE_INSTANCE = new Set<TierName>(['app', 'db', 'single']);

export function planFromSummary(summary: RunSummary, at: WindowResult, sc: Scenario): Plan | null {
  const tiers: TierCapacity[] = [];
  for (const t of summary.tiers) {
    if (t.ceilingRps === null || t.ceilingAgents === null || t.ceilingAgents <= 0) continue;
    const nodes = Math.max(1, at.nodes.filter((n) => n.tier === t.tier).length);
    tiers.push({ tier: t.tier, perNodeCeilingRps: t.ceilingRps / nodes, demandPerAgentRps: t.ceilingRps / t.ceilingAgents, scalable: !SINGLE_INSTANCE.has(t.tier) });
  }
  if (tiers.length === 0) return null;
  const agents = sc.plan?.agents[0] ?? summary.ceilingAgents ?? at.agents;
  return planCapacity(tiers, { agents, maxUtilization: sc.plan?.maxUtilization ?? 0.8, redundancy: sc.plan?.redundancy ?? 'n+1' });
}
