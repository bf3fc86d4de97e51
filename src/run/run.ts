import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SearchResult } from '../analysis/ceiling-search.js';
import { writeFileAtomic } from '../core/atomic-write.js';
import { RmmscaleError } from '../core/errors.js';
import { generateSecret } from '../core/identity.js';
import { resolveSecret } from '../stack/state-file.js';
import { toolVersion } from '../core/version.js';
import type { Scenario } from '../scenario/types.js';
import type { ProgressSnapshot } from '../swarm/interval-merge.js';
import type { LiveMetrics } from '../swarm/live-metrics.js';
import { TunnelLog } from '../swarm/tunnel-log.js';
import { assemble } from './assemble.js';
import { BackgroundTraffic } from './background.js';
import type { ScrapeSchedule } from './collector.js';
import { drive } from './drive.js';
import { tunnelFaultMeasure } from './fault-reconnect.js';
import { FaultRunner, faultTarget, type FaultRecord } from './faults.js';
import { stackLeaseProbe } from './takeover.js';
import { openStore } from '../stack/store/index.js';
import type { Store } from '../stack/types.js';
import { AnalyticsClient } from '../stack/analytics/analytics-client.js';
import { ALERTS_PAGE_MAX, type AlertTiming } from '../stack/analytics/analytics-store.js';
import { alertDelay, alertDelayPerSecond } from './alert-delay.js';
import { checkLedger, type Ledger } from './ledger.js';
import { relaySpoolReader, waitForSpools } from './spool-drain.js';
import { libraryVersions } from './library-versions.js';
import type { NodeSecond, RunResult, RunShard } from './result-types.js';
import { CoordinatorClient, DEFAULT_TIMEOUTS, runFingerprint, ShardCoordinator, type CoordinationTimeouts } from './shard-coordinator.js';
import { RunAborted } from './run-aborted.js';
import type { RunContext } from './run-context.js';
import type { RunEvent } from './run-event.js';
import { startRunStack } from './start-stack.js';

/**
 * `rmmscale run`: start the scenario's stack, wait until every node is healthy, drive the swarm
 * through the stages (or a ceiling search), scrape every node every second, keep each node's
 * exact server-side histograms per window beside the swarm's client-side ones, and write
 * result.json and .hlog files. The stack stops on success, failure and Ctrl-C alike, and what was
 * measured so far is written (atomically) in every case.
 *
 * The phases, each in its own module: start the stack (start-stack.ts); drive the windows
 * (drive.ts), each one planned (plan-window.ts), measured (measure-window.ts), judged
 * (judge-window.ts) and settled after (settle.ts); stop; assemble the result (assemble.ts).
 * Nothing here prints: what happens is reported as RunEvents (run-event.ts).
 */

export interface RunOptions {
  scenario: Scenario;
  outDir: string;
  allowRemote: boolean;
  /** Ctrl-C. */
  signal?: AbortSignal;
  /** What happens, as typed events (src/cli/run-events.ts formats them). */
  onEvent?: (e: RunEvent) => void;
  onProgress?: (p: ProgressSnapshot & { window: string }) => void;
  /** `--start-at`: the first window's t = 0 on the wall clock, so shards start together (epoch ms). */
  startAtEpochMs?: number | null;
  /** How the nodes are scraped each second (default `spread`; `aligned` only for the lag benchmark's peer). */
  scrapeSchedule?: ScrapeSchedule;
  /** The live view (--metrics-port): every window's swarm feeds it, and each window's trust. */
  live?: LiveMetrics;
  /** A sharded run's coordination (`--coordinator`, `--coordinator-url`): null or absent, none. */
  coordination?: CoordinationOptions | null;
}

/** Serve as the coordinator of a sharded run, or follow the one at `url` (shard-coordinator.ts). */
export type CoordinationOptions = ({ role: 'coordinator'; host: string; port: number } | { role: 'follower'; url: string }) & { timeouts?: CoordinationTimeouts };

export interface RunOutput {
  result: RunResult;
  resultFile: string;
}

/** How the run ended, as result.json says it. */
interface RunEnd {
  error: string | null;
  interrupted: boolean;
}

export async function runScenario(o: RunOptions): Promise<RunOutput> {
  const sc = o.scenario;
  const runStartMs = Date.now();
  const startedAt = new Date(runStartMs).toISOString();
  mkdirSync(o.outDir, { recursive: true });
  const resultFile = join(o.outDir, 'result.json');
  const end: RunEnd = { error: null, interrupted: false };
  const abort = watchAbort(sc, o.signal, end);
  const coordination = await startCoordination(o, sc);
  const ctx: RunContext = {
    coordination,
    sc,
    outDir: o.outDir,
    allowRemote: o.allowRemote,
    secret: runSecret(sc),
    shard: sc.shard,
    startAtEpochMs: o.startAtEpochMs ?? null,
    runStartMs,
    signal: abort.signal,
    emit: o.onEvent ?? ((): void => undefined),
    onProgress: o.onProgress,
    live: o.live ?? null,
    stack: null,
    collector: null,
    background: null,
    profileOf: new Map(),
    entryUrl: '',
    wsTargets: [],
    currentAgents: sc.stages?.[0]?.agents ?? sc.ceiling?.start ?? sc.fleet.agents,
    windows: [],
    hlogFiles: [],
    warnings: [],
    faults: null,
    tunnelLog: new TunnelLog(),
    swarmDisconnect: null,
    acked: [],
    enrolledStateDir: enrolledStateDir(sc),
    fail: (message) => {
      if (end.error !== null || abort.signal.aborted) return;
      end.error = message;
      abort.abort();
    },
  };
  let search: SearchResult | null = null;
  try {
    await startRunStack(ctx, o.scrapeSchedule);
    if (ctx.stack && sc.faults.length > 0) {
      // The app nodes (the DBAgent) are read around a fault on one, to time the standby's takeover.
      const lease = stackLeaseProbe(ctx.stack.nodes, ctx.stack.adminKey);
      ctx.faults = new FaultRunner(sc.faults, faultTarget(ctx.stack, () => ctx.swarmDisconnect), runStartMs, sc.fleet.timeoutMs, undefined, lease);
    }
    ctx.background = new BackgroundTraffic({
      entryUrl: ctx.entryUrl,
      secret: ctx.secret,
      seed: sc.fleet.seed,
      agents: () => ctx.currentAgents,
      streams: sc.background,
      onAnswered: (op, endMs, latencyUs) => ctx.faults?.recordOp(op, endMs, latencyUs),
    });
    if (ctx.background.enabled) ctx.background.start();
    search = await drive(ctx);
  } catch (err) {
    if (err instanceof RunAborted || abort.signal.aborted) {
      if (!end.error && end.interrupted) end.error = 'interrupted (Ctrl-C)';
    } else {
      end.error = err instanceof RmmscaleError ? err.message : ((err as Error)?.message ?? String(err));
      if (!(err instanceof RmmscaleError)) ctx.emit({ type: 'run-failed', stack: (err as Error)?.stack ?? String(err) });
    }
  } finally {
    abort.dispose();
    ctx.faults?.close();
  }
  // The followers hear how the run ended (the search's end, or why it stopped), then the endpoint closes.
  if (coordination?.role === 'coordinator') {
    const why = end.error ?? (end.interrupted ? 'the coordinator was interrupted' : null);
    await coordination.coordinator.finish(why ? { reason: why } : { search: search ? { outcome: search.outcome, ceilingLoad: search.ceilingLoad, lastGood: search.lastGood, firstBad: search.firstBad } : null });
  }
  // The ledger reads the database while the stack still runs (after the operators' last command).
  await ctx.background?.stop().catch(() => undefined);
  const ledger = await readLedger(ctx);
  const alerts = await readAlerts(ctx);
  // A DBAgent takeover still under way when the run ended: its app nodes, read once more.
  await ctx.faults?.finishTakeovers().catch(() => undefined);
  await stopAll(ctx);
  if (ctx.enrolledStateDir) rmSync(ctx.enrolledStateDir, { recursive: true, force: true });
  const result = await buildResult(ctx, startedAt, end, search, ledger, o.startAtEpochMs ?? null, alerts);
  writeFileAtomic(resultFile, JSON.stringify(result, null, 2) + '\n');
  return { result, resultFile };
}

/**
 * A protocol whose agents enrol (`agent:` with `enroll:`) enrols each agent once per run: each
 * window's workers leave their agents' enrolment (a node_key, a token) in a private temporary
 * folder for the next window's (src/swarm/protocol/enrolled-state.ts). The folder holds
 * credentials, so it is the user's alone (mkdtemp: 0700), never in the output, and removed
 * when the run ends.
 */
function enrolledStateDir(sc: Scenario): string | null {
  if (!sc.agent?.doc.enroll?.length || sc.fleet.transport !== 'http') return null;
  return mkdtempSync(join(tmpdir(), 'rmmscale-enrolled-'));
}

/**
 * The fleet's secret: the scenario's `fleet.secret`; else, for a stack the run starts, a fresh
 * random one the run gives that stack and its own agents (held in memory only, never written);
 * else, for an external `target:`, $RMMSCALE_SECRET or the secret of the `rmmscale stack up` that
 * serves the target (its state file), unless the scenario's `agent:` protocol never uses the
 * rmmscale agent token.
 */
function runSecret(sc: Scenario): string {
  if (sc.fleet.secret !== null) return sc.fleet.secret;
  if (!sc.stack.target) return generateSecret();
  // A protocol whose agents carry their own credentials ({{agent.token}} nowhere) needs no secret.
  if (sc.agent && !JSON.stringify(sc.agent.doc).includes('agent.token')) return generateSecret();
  return resolveSecret('fleet.secret', undefined, sc.stack.target.split(',').map((t) => t.trim()));
}

/** Ctrl-C and the scenario's time limit both abort the current window; `end` records which. */
function watchAbort(sc: Scenario, signal: AbortSignal | undefined, end: RunEnd): { signal: AbortSignal; abort: () => void; dispose: () => void } {
  const abort = new AbortController();
  const onAbort = (): void => {
    end.interrupted = true;
    abort.abort();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const timeLimit = setTimeout(() => {
    end.error = `the scenario's time limit (${Math.round(sc.timeLimitMs / 1000)} s) ran out`;
    abort.abort();
  }, sc.timeLimitMs);
  timeLimit.unref();
  return {
    signal: abort.signal,
    abort: () => abort.abort(),
    dispose: () => {
      clearTimeout(timeLimit);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}

/** The faults as result.json lists them; one that failed or never ran is also a warning. */
function faultRecords(ctx: RunContext, alerts: AlertTiming[] | null): FaultRecord[] {
  const relays = ctx.stack ? ctx.stack.nodes.filter((n) => n.role === 'relay').map((n) => n.name) : [];
  const timeline = ctx.collector?.timeline ?? new Map();
  const records = ctx.faults?.records(tunnelFaultMeasure({ log: ctx.tunnelLog, relays, timeline, runStartMs: ctx.runStartMs }), undefined, alerts ?? undefined) ?? [];
  for (const f of records) {
    const what = `fault ${f.action}${f.node ? ` ${f.node}` : ''} at ${f.at} s`;
    if (f.outcome === 'failed') ctx.warnings.push(`${what} failed: ${f.error}`);
    else if (f.outcome === 'skipped') ctx.warnings.push(`${what} did not run: the run ended before it`);
  }
  return records;
}

async function stopAll(ctx: RunContext): Promise<void> {
  await ctx.background?.stop().catch(() => undefined);
  await ctx.collector?.stop().catch(() => undefined);
  if (ctx.stack) {
    ctx.emit({ type: 'stack-stopping' });
    await ctx.stack.stop().catch(() => undefined);
  }
}

/**
 * The run's ledger (run/ledger.ts), read the way the web nodes reach the data: the db node's RPC with
 * the db key, or the single node's SQLite file. Null, with a warning, when there is nothing to read
 * (an external target, a tunnel fleet) or the database does not answer.
 */
async function readLedger(ctx: RunContext): Promise<Ledger | null> {
  if (ctx.sc.fleet.transport === 'ws') return readTelemetryLedger(ctx);
  const storage = ctx.stack?.storage;
  if (!storage || ctx.sc.fleet.transport !== 'http' || ctx.acked.length === 0) return null;
  let store: Store | null = null;
  try {
    store = await openStore(storage, ctx.secret);
    const ledger = await checkLedger(store, { seed: ctx.sc.fleet.seed, swarms: ctx.acked, commandIds: ctx.background?.createdCommands ?? [] });
    ctx.emit({ type: 'ledger', ledger });
    return ledger;
  } catch (err) {
    ctx.warnings.push(`the ledger could not be read from the database: ${(err as Error)?.message ?? String(err)}`);
    return null;
  } finally {
    await store?.close().catch(() => undefined);
  }
}

/**
 * A tunnel fleet's ledger: every telemetry frame a relay acked, by its key (agent id + seq), against
 * the frames the analytics node stored. Null when the stack has no analytics node (its relays write
 * telemetry into the control plane's database without keys) or no frame was acked.
 */
async function readTelemetryLedger(ctx: RunContext): Promise<Ledger | null> {
  const url = ctx.stack?.analyticsUrl;
  if (!url || ctx.acked.length === 0) return null;
  await drainSpools(ctx);
  const client = new AnalyticsClient(url, ctx.secret, { connections: 1, timeoutMs: 30_000 });
  try {
    const ledger = await checkLedger(client, { seed: ctx.sc.fleet.seed, swarms: ctx.acked, commandIds: [] });
    ctx.emit({ type: 'ledger', ledger });
    return ledger;
  } catch (err) {
    ctx.warnings.push(`the ledger could not be read from the analytics node: ${(err as Error)?.message ?? String(err)}`);
    return null;
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** How long the run waits for the relays to forward their spooled telemetry before the ledger. */
const SPOOL_DRAIN_LIMIT_MS = 60_000;

/** Wait for every relay's telemetry spool to reach the analytics node (run/spool-drain.ts). */
async function drainSpools(ctx: RunContext): Promise<void> {
  if (!ctx.stack) return;
  const out = await waitForSpools(relaySpoolReader(ctx.stack.nodes, ctx.stack.adminKey), SPOOL_DRAIN_LIMIT_MS);
  if (!out.drained) ctx.warnings.push(`relays still held telemetry for the analytics node after ${Math.round(out.waitedMs / 1000)} s: ${out.left.map((r) => `${r.node} ${r.spooled}`).join(', ')} samples; what never arrives counts as lost in the ledger`);
}

/** Every alert the analytics node raised in this run ([id, sentMs, createdMs]); null without an analytics node. */
async function readAlerts(ctx: RunContext): Promise<AlertTiming[] | null> {
  const url = ctx.stack?.analyticsUrl;
  if (!url) return null;
  const client = new AnalyticsClient(url, ctx.secret, { connections: 1, timeoutMs: 30_000 });
  const out: AlertTiming[] = [];
  try {
    // Bounded: pages of ALERTS_PAGE_MAX, at most 1,000 of them (ten million alerts).
    for (let page = 0, after = 0; page < 1000; page++) {
      const rows = await client.alerts(after, ALERTS_PAGE_MAX);
      out.push(...rows);
      if (rows.length < ALERTS_PAGE_MAX) break;
      after = rows[rows.length - 1]![0];
    }
    return out;
  } catch (err) {
    ctx.warnings.push(`the alerts could not be read from the analytics node: ${(err as Error)?.message ?? String(err)}`);
    return null;
  } finally {
    await client.close().catch(() => undefined);
  }
}

async function buildResult(
  ctx: RunContext,
  startedAt: string,
  end: RunEnd,
  search: SearchResult | null,
  ledger: Ledger | null,
  startAtRequested: number | null,
  alerts: AlertTiming[] | null,
): Promise<RunResult> {
  const timeline: Record<string, NodeSecond[]> = {};
  if (ctx.collector) for (const [k, v] of ctx.collector.timeline) timeline[k] = v;
  // An external stack's nodes are listed with their /metrics URL; their processes are not ours (pid 0).
  const nodes = ctx.stack
    ? ctx.stack.nodes.map((n) => ({ name: n.name, role: n.role, tier: n.tier, url: n.url, pid: n.pid }))
    : ctx.sc.stack.nodes.map((n) => ({ name: n.name, role: n.role, tier: n.tier, url: n.metricsUrl, pid: 0 }));
  if (!ctx.stack && ctx.collector) ctx.warnings.push(...ctx.collector.scrapeWarnings());
  const coord = ctx.coordination;
  const result = assemble({
    sc: ctx.sc,
    startedAt,
    complete: end.error === null && !end.interrupted,
    interrupted: end.interrupted,
    error: end.error,
    windows: ctx.windows,
    search,
    timeline,
    hlogFiles: ctx.hlogFiles,
    faults: faultRecords(ctx, alerts),
    ledger,
    warnings: ctx.warnings,
    nodes,
    versions: { rmmscale: toolVersion(), node: process.version, libraries: await libraryVersions() },
    // The coordinator's result is the merge of every shard; any other shard's is its own.
    ...(coord?.role === 'coordinator' ? { mergedFrom: coord.coordinator.mergedFrom(startedAt) } : ctx.shard.count > 1 ? { shard: shardFacts(ctx, startAtRequested) } : {}),
  });
  result.alertDelayMs = alerts ? alertDelay(alerts) : null;
  result.alertDelayTimeline = alerts && alerts.length > 0 ? alertDelayPerSecond(alerts, ctx.runStartMs) : null;
  return result;
}

const NO_COORDINATOR_CLOCK =
  'no coordinator: the shards started on their own clocks (--start-at), which were not measured against one another; keep them in sync with NTP, or run with --coordinator / --coordinator-url to have the offset measured';

/** A shard's own result: its slice, and its clock against the coordinator's (when it follows one). */
function shardFacts(ctx: RunContext, startAtRequested: number | null): RunShard {
  const client = ctx.coordination?.role === 'follower' ? ctx.coordination.client : null;
  return {
    index: ctx.shard.index,
    count: ctx.shard.count,
    coordinated: client !== null,
    startAtRequestedEpochMs: startAtRequested,
    clockOffsetMs: client ? client.clockOffsetMs : null,
    clockReference: client ? client.url : null,
    clockNote: client ? null : NO_COORDINATOR_CLOCK,
  };
}

/**
 * The coordinator listens before anything starts, so that its followers can join while the run
 * gets ready; a follower joins when its run is ready to measure (drive.ts). Both need the stack's
 * secret shared by every shard: the control endpoint's key is derived from it.
 */
async function startCoordination(o: RunOptions, sc: Scenario): Promise<RunContext['coordination']> {
  const c = o.coordination;
  if (!c) return null;
  const secret = sc.fleet.secret ?? resolveSecret('fleet.secret', undefined, sc.stack.target ? sc.stack.target.split(',').map((t) => t.trim()) : []);
  const fingerprint = runFingerprint(sc, sc.shard.count);
  const timeouts = c.timeouts ?? DEFAULT_TIMEOUTS;
  if (c.role === 'follower') return { role: 'follower', client: new CoordinatorClient(c.url, sc.shard, secret, fingerprint, timeouts) };
  const coordinator = new ShardCoordinator(sc.shard, secret, fingerprint, timeouts);
  const url = await coordinator.listen(c.host, c.port);
  o.onEvent?.({ type: 'coordinator-listening', url, followers: sc.shard.count - 1 });
  return { role: 'coordinator', coordinator };
}
