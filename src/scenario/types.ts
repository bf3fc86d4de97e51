import type { ProtocolSpec } from '../swarm/protocol/types.js';
import type { Shard } from '../swarm/shard.js';

/**
 * A scenario, resolved: units parsed, defaults applied. `loadScenario()` (src/scenario/load.ts)
 * validates a YAML file against schemas/scenario.schema.json, then resolves it into this. The run
 * (src/run/) reads only this shape.
 */

import type { MappingSignals } from '../metrics/mapped-scrape.js';

export type CheckinSpec = { kind: 'fraction'; fractionPerMin: number; text: string } | { kind: 'rate'; ratePerSec: number; text: string };

export interface ScenarioStack {
  /** A named topology (`single`, `split3`, `relays4`…) or a topology file path resolved against the scenario's folder. null with `target`. */
  topology: string | null;
  /** `automate`, `none`, or a profile file path (resolved). */
  profile: string;
  proxy: 'builtin' | 'haproxy';
  db: 'sqlite' | 'postgres';
  /** PostgreSQL URL; null means DATABASE_URL at run time. */
  dbUrl: string | null;
  /** An external stack instead of a started one (loopback unless the CLI says --allow-remote). */
  target: string | null;
  /** Base port for the nodes; null = free ports. */
  portBase: number | null;
  /** With `target`: the external stack's nodes, scraped through their mappings (empty: none given). */
  nodes: ScenarioNode[];
}

/** One node of an external stack (`stack.nodes`): where its /metrics are and what they mean. */
export interface ScenarioNode {
  name: string;
  tier: string;
  /** proxy, web, app, db, relay, single (the diagnosis's depth order), or `external` (shallowest). */
  role: string;
  metricsUrl: string;
  /** The mapping as the scenario named it (a shipped name or the file's absolute path). */
  mapping: string;
  /** The mapping's signals for this node's tier. */
  signals: MappingSignals;
}

export interface ScenarioFleet {
  agents: number;
  checkin: CheckinSpec;
  /** Weights by scheduled kind: checkin, heartbeat, inventory. */
  mix: Record<'checkin' | 'heartbeat' | 'inventory', number>;
  transport: 'http' | 'ws';
  connection: 'per-checkin' | 'keepalive' | 'pool';
  arrival: 'periodic' | 'poisson';
  jitterMs: number;
  seed: string;
  secret: string | null;
  timeoutMs: number;
}

export interface ScenarioStage {
  durationMs: number;
  agents: number;
  /** null = the fleet's check-in model. */
  checkin: CheckinSpec | null;
  /**
   * `warmup:` how long the stage first runs at the previous stage's count, measured nowhere; null =
   * the default (STAGE_WARMUP_MS). A tunnel fleet adds its reconnect time either way.
   */
  warmupMs?: number | null;
}

/** What a fault does (a scenario's `faults:` item names exactly one). */
export type FaultAction = 'kill' | 'stop' | 'restart' | 'slow' | 'disconnect';

export interface ScenarioFault {
  /** From the start of the staged load (stages back to back, warm-ups not counted). */
  atMs: number;
  /** The stage that `atMs` falls in (0-based), and the time into it. */
  stageIndex: number;
  atInStageMs: number;
  action: FaultAction;
  /** The node it acts on (a tier name resolved to its first node); null for disconnect. */
  node: string | null;
  /** stop, slow: how long; null otherwise. */
  forMs: number | null;
  /** slow: the latency added to each query (`by: 200ms`); null with a factor or another action. */
  byMs: number | null;
  /** slow: `by: 10x`, each request and query that many times as long; null with the ms form or another action. */
  byFactor: number | null;
  /** disconnect: the share of agents (0..1). */
  fraction: number | null;
}

export interface ScenarioCeiling {
  /** What the search raises: agents at the fleet's check-in model, or a raw check-in rate. */
  unit: 'agents' | 'rate';
  start: number;
  max: number;
  stepFactor: number;
  /** (firstBad − lastGood) / lastGood at which bisection stops. */
  precision: number;
  warmupMs: number;
  measureMs: number;
  /** Hard bound on measured windows (steps and bisections together). */
  maxSteps: number;
  /** Loads are rounded to this (agents: 100 by default; rate: 1). */
  grain: number;
}

export interface BackgroundStream {
  ratePerSec: number;
}

export interface ScenarioBackground {
  /** Dashboard queries (agents offline, by group, by OS…) on the user paths. */
  dashboard: BackgroundStream | null;
  /** Command creation by operators. */
  commands: BackgroundStream | null;
  /** An integration sync paging through agents. */
  integration: (BackgroundStream & { pageSize: number }) | null;
  /** Operator sessions (relays): POST /api/v1/sessions to a random agent of the fleet, brokered down its tunnel. */
  sessions?: BackgroundStream | null;
}

export interface ScenarioSlo {
  p99Ms: number;
  /** 0..1 */
  errorRate: number;
  /** 0..1: achieved ÷ offered below this breaks the SLO. */
  minAchievedRatio: number;
}

export interface ScenarioPlan {
  agents: number[];
  redundancy: 'none' | 'n+1';
  maxUtilization: number;
}

export interface Scenario {
  /** The slice of the fleet this run drives (`shard: i/n`, or `rmmscale run --shard`); {0, 1}: all of it. */
  shard: Shard;
  name: string;
  description: string;
  /** Absolute path of the file it came from (null when built in code). */
  file: string | null;
  stack: ScenarioStack;
  fleet: ScenarioFleet;
  /** Exactly one of stages and ceiling is set. */
  stages: ScenarioStage[] | null;
  ceiling: ScenarioCeiling | null;
  /** Failures injected during the stages, in time order (empty: none). */
  faults: ScenarioFault[];
  background: ScenarioBackground;
  slo: ScenarioSlo;
  /** Gate expressions, kept as written (parsed by the gate). */
  thresholds: string[];
  /** The whole run, stack start and stop included, ends by this. */
  timeLimitMs: number;
  plan: ScenarioPlan | null;
  /** `agent:`: the protocol the fleet speaks (docs/protocols.md); null = rmmscale's own agent API. */
  agent: ProtocolSpec | null;
  /** The document as written, for result.json. */
  definition: unknown;
}
