import type { AlertDelaySecond, AlertDelaySummary } from './alert-delay.js';
import type { SloVerdict } from '../analysis/ceiling-search.js';
import type { Plan } from '../analysis/plan.js';
import type { TierLayout } from '../analysis/tier-sizing.js';
import type { HostFacts } from '../core/host.js';
import type { LatencySummary } from '../metrics/histogram.js';
import type { OpStats } from '../metrics/op-stats.js';
import type { CheckinSpec } from '../scenario/types.js';
import type { Trust } from '../swarm/generator-trust.js';
import type { SendOutcomes } from '../swarm/recorder.js';
import type { FaultRecord } from './faults.js';
import type { Ledger } from './ledger.js';

/**
 * `result.json` of `rmmscale run`: the contract between a run and everything after it (report,
 * gate, plan). Those read this file only, never a live stack, and only through
 * src/run/result-file.ts, which checks it against schemas/result.schema.json. Additive changes keep
 * the version; anything else bumps it. Documented field by field in docs/result.md.
 */
export const RUN_RESULT_SCHEMA = 'rmmscale.run/1';

/**
 * The tiers of the reference stacks, deepest first is diagnose.ts's business; this is their
 * display order. A topology file may name its own tiers (`[a-z][a-z0-9-]*`), which keep their
 * names everywhere: a tier is any such name.
 */
export const TIER_NAMES = ['single', 'proxy', 'web-agent', 'web-user', 'app', 'db', 'relay', 'analytics'] as const;
export type TierName = string;

/** What the run's load axis counts, and the check-in model its agent figures are counted at. */
export interface RunLoad {
  /**
   * `agents`: stages, or a search by agents (each window a fleet at the check-in model);
   * `rate`: a search by offered check-ins/s (each window a fixed rate, `windows[].checkin`).
   */
  unit: 'agents' | 'rate';
  /**
   * The fleet's check-in model, resolved: a share of the fleet per minute (`30%/min`) or a fixed
   * aggregate rate (`250/s`). Every agent figure (summary.ceilingAgents, tiers[].ceilingAgents,
   * the plan) counts agents at this model; a search by rate counts its rates as agents at it.
   */
  checkin: CheckinSpec;
}

/** One tier of the stack: the nodes that serve it and whether it can scale out. */
export type StackTier = TierLayout;

export interface TierSummary {
  tier: TierName;
  ceilingRps: number | null;
  ceilingAgents: number | null;
  /**
   * Why this tier stops there: `limiting: utilization 0.97, queue growing` for the tier that broke
   * the SLO; `estimated: utilization 0.41 at the ceiling` (capacity = rate ÷ utilization) for the
   * others; `unknown: no capacity model` when neither applies.
   */
  limitedBy: string;
}

/** Stable for scripts and CI. */
export interface RunSummary {
  ceilingAgents: number | null;
  ceilingRps: number | null;
  limitingTier: TierName | null;
  /**
   * Why no limiting tier could be named, when none was although the run needed one (the SLO broke,
   * or an external target whose nodes were not listed): null otherwise. Absent in older results.
   */
  noTierNamed?: string | null;
  tiers: TierSummary[];
  trustworthy: boolean;
  warnings: string[];
}

/** One operation's statistics: one shape from the swarm to result.json (metrics/op-stats.ts). */
export type { OpStats } from '../metrics/op-stats.js';

/** What the swarm saw in one measured window (completed, failed, late, dropped: SendOutcomes). */
export interface ClientStats extends SendOutcomes {
  agents: number;
  /** The schedule's target rate over the measured window. */
  offeredRatePerSec: number;
  /**
   * Sends actually made per second of the measured window. With Poisson arrivals (or jitter) it
   * differs from the target by chance; the "achieved below offered" SLO compares against this.
   */
  attemptedRatePerSec: number;
  /** Completions per second inside the measured window (a backlog drained afterwards is not in it). */
  achievedRatePerSec: number;
  count: number;
  errorRate: number;
  latency: LatencySummary;
  /** By operation: `checkin`, `heartbeat`, `inventory`, `command-result`, `telemetry`… */
  ops: Record<string, OpStats>;
  errors: Record<string, number>;
}

export interface GeneratorHealth {
  /** GeneratorTrust's decision for this window (`trust` says how and why). */
  trustworthy: boolean;
  /** How trust was decided: which way, why, the rig's error bound and the SLO at both ends of it. Absent in older results. */
  trust?: Trust;
  generatorBound: boolean;
  hostBound: boolean;
  reasons: string[];
  warnings: string[];
  workers: number;
  cpuMax: number;
  schedulingLagP99Us: number;
  hostCpuMean: number | null;
  /** Mean host steal (hypervisor) over the window; absent in results written before it existed. */
  hostStealMean?: number | null;
  /** The window's worst one-second steal; absent in results written before it existed. */
  hostStealMax?: number | null;
}

/** One second of one node, as scraped. tSec counts from the run's start. */
export interface NodeSecond {
  tSec: number;
  requestsPerSec: number;
  /** Per route, requests in this second. */
  routes: Record<string, number>;
  errorsPerSec: number;
  inflight: number;
  busyWorkers: number | null;
  queueDepth: number | null;
  utilization: number | null;
  dbUtilization: number | null;
  dbQueueDepth: number | null;
  eventLoopDelayP99Ms: number;
  /** CPU of the node process over the second, in cores. */
  cpuCores: number;
  hostCpu: number | null;
  hostLimited: boolean;
  /** Relays only: tunnels accepted per second (reconnects and returns home included). */
  tunnelOpensPerSec?: number;
}

export interface RouteStats {
  count: number;
  errors: number;
  ratePerSec: number;
  /** Server side: arrival to response end, capacity queueing included. */
  latency: LatencySummary;
  histogram: string;
}

export interface NodeWindow {
  node: string;
  role: string;
  tier: TierName;
  ratePerSec: number;
  routes: Record<string, RouteStats>;
  utilization: { mean: number; max: number } | null;
  queueDepth: { mean: number; max: number; growthPerSec: number } | null;
  dbUtilization: { mean: number; max: number } | null;
  dbQueueDepth: { mean: number; max: number; growthPerSec: number } | null;
  eventLoopDelayP99MsMax: number;
  cpuCoresMean: number;
  /** Seconds in the window when the host, not the profile, limited this node. */
  hostLimitedSec: number;
  /** Erlang C (M/M/c) next to the measured server-side latency, for profiled nodes. */
  erlang: ErlangCheck | null;
  /** A node of an external stack (`stack.nodes`): what its own /metrics said over the window. Absent for nodes rmmscale started. */
  scraped?: ScrapedWindow;
}

/**
 * An external node's window from its Prometheus series (through its mapping): the counters'
 * increase between the scrapes nearest the window's edges, and latency quantiles interpolated in
 * its histogram's buckets (PromQL's histogram_quantile). Null where the mapping gives no such signal.
 */
export interface ScrapedWindow {
  /** The mapping (a shipped name or a file path). */
  mapping: string;
  requests: number | null;
  errors: number | null;
  latency: { count: number; p50Us: number; p90Us: number; p95Us: number; p99Us: number } | null;
}

export interface ErlangCheck {
  servers: number;
  meanServiceMs: number;
  arrivalPerSec: number;
  utilization: number;
  predictedMeanMs: number;
  predictedP99Ms: number;
  measuredMeanMs: number;
  measuredP99Ms: number;
  /** The model assumes exponential service; other distributions are shown, with a note. */
  note: string | null;
}

export interface Diagnosis {
  limitingTier: TierName | null;
  /** One line per piece of evidence, e.g. `web-agent: utilization 0.98 (web-agent-1 0.99, web-agent-2 0.97)`. */
  evidence: string[];
}

export interface WindowResult {
  index: number;
  kind: 'stage' | 'step' | 'bisect';
  label: string;
  agents: number;
  checkin: string;
  /** Seconds from the run's start. */
  startSec: number;
  warmupSec: number;
  measuredSec: number;
  client: ClientStats;
  /** Background user and integration traffic in the window (null when the scenario has none). */
  background: ClientStats | null;
  generator: GeneratorHealth;
  nodes: NodeWindow[];
  /** Against the scenario's SLOs. */
  verdict: SloVerdict;
  diagnosis: Diagnosis;
  /**
   * Set on a search window that was not trustworthy and was measured once more: the index of the
   * window that replaced it. Such a window is kept for the record and used for nothing else.
   */
  supersededBy?: number;
}

export interface UslResult {
  /** What the load axis counts. */
  /** `agents` (a search by agents, or stages), `rate` (a search by offered check-ins/s); `concurrency` is the CSV fit's. */
  loadUnit: 'agents' | 'rate' | 'concurrency';
  points: Array<{ load: number; throughput: number }>;
  sigma: number;
  kappa: number;
  lambda: number;
  nMax: number;
  xMax: number;
  r2: number;
}

export interface RunResult {
  schema: typeof RUN_RESULT_SCHEMA;
  summary: RunSummary;
  /** `definition` is the scenario as written, for the record: nothing after the run reads it (the typed facts are `load` and `stack.tiers`). */
  scenario: { name: string; file: string | null; description: string; seed: string; definition: unknown };
  load: RunLoad;
  versions: { rmmscale: string; node: string; libraries: Record<string, string> };
  host: HostFacts;
  startedAt: string;
  endedAt: string;
  complete: boolean;
  interrupted: boolean;
  /** Why the run ended early, when it did. */
  error: string | null;
  stack: {
    topology: string;
    profile: string;
    proxy: string;
    db: string;
    /** An external target: no nodes are started or scraped. */
    target: string | null;
    nodes: Array<{ name: string; role: string; tier: TierName; url: string; pid: number }>;
    /** Every tier of the stack, in the stack's order (the single node's embedded database is tier `db`). */
    tiers: StackTier[];
  };
  slo: { p99Ms: number; errorRate: number; minAchievedRatio: number };
  thresholds: string[];
  /** Every window, in order: stages of a staged run, or the steps and bisections of a search. */
  windows: WindowResult[];
  /**
   * The headline window, what `checkin.p99`, `errors.rate` and `node[…]` refer to and what a staged
   * run is judged by: the last stage of a staged run (a ramp before it is how the load got there);
   * the ceiling window of a search (the highest load that met the SLO). A search that claims no
   * ceiling points at its last window that met the SLO, or else its last window, for reports only.
   * Null when no window was measured. `windowIndex` is always set by rmmscale run; readers also
   * take a null one (no single headline window) without failing.
   */
  headline: { windowIndex: number | null; client: ClientStats; nodes: NodeWindow[] } | null;
  search: {
    outcome: 'found' | 'below-start' | 'above-max' | 'untrustworthy' | 'budget';
    unit: 'agents' | 'rate';
    lastGood: number | null;
    firstBad: number | null;
    precision: number;
  } | null;
  fits: { usl: UslResult | null; uslError: string | null };
  plan: Plan | null;
  /** The per-node timeline for charts (every second of the run). */
  timeline: Record<string, NodeSecond[]>;
  /** .hlog files written beside result.json, relative to it. */
  hlogFiles: string[];
  /** The scenario's faults, each with when it ran and how long clients saw errors after it (empty: none). */
  faults: FaultRecord[];
  /**
   * Acknowledged writes and created commands against what the database holds, by identity
   * (run/ledger.ts). Null when it could not be read: an external target, a tunnel fleet, a database
   * that was down at the end, or a file written before the ledger existed.
   */
  ledger: Ledger | null;
  /** A shard's own result (`--shard i/n`, n > 1): its slice and its clock. Absent in unsharded and merged results. */
  shard?: RunShard;
  /** A merged result (`rmmscale merge`, or a coordinated run's coordinator): the shards it was made of. Absent otherwise. */
  mergedFrom?: RunMergedShard[];
  /**
   * Alert delay over the whole run (a stack with an analytics node: the alerts it raised, each from
   * the agent's send time of its frame to its creation); null without an analytics node or alerts.
   * Absent in older results. Per fault: faults[].alertDelayMs.
   */
  alertDelayMs?: AlertDelaySummary | null;
  /**
   * The same per second of the run, by the send time of each alert's frame (seconds without alerts
   * left out); null without an analytics node or alerts. Absent in older results. The report's
   * alert-delay timeline.
   */
  alertDelayTimeline?: AlertDelaySecond[] | null;
}

/**
 * A shard's place and clock. `clockOffsetMs` is this machine's clock minus the coordinator's,
 * measured NTP-style (half the round trip) when the shard joined it; so a time on this shard's
 * clock is `t − clockOffsetMs` on the coordinator's. Without a coordinator nothing is measured:
 * null, and `clockNote` says so (shards given one `--start-at` trust their own clocks, NTP).
 */
export interface RunShard {
  index: number;
  count: number;
  /** Its windows were decided by a coordinator (`--coordinator`, `--coordinator-url`). */
  coordinated: boolean;
  /** The `--start-at` asked for, epoch ms (null: none). */
  startAtRequestedEpochMs: number | null;
  clockOffsetMs: number | null;
  /** What the offset was measured against (the coordinator's URL); null when not measured. */
  clockReference: string | null;
  /** Why clockOffsetMs is null, when it is. */
  clockNote: string | null;
}

/** One shard of a merged result. */
export interface RunMergedShard {
  index: number;
  count: number;
  /** Its result file; null for a shard that posted its windows to the coordinator. */
  file: string | null;
  startedAt: string;
  trustworthy: boolean;
  clockOffsetMs: number | null;
}
