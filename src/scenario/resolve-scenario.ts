import { existsSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { InvalidArgumentError, RmmscaleError, ValidationError, formatValue } from '../core/errors.js';
import { DEFAULT_SEED } from '../core/identity.js';
import { checkTarget } from '../core/loopback.js';
import { formatDurationMs, parseCheckinFractionPerMin, parseDurationMs, parseRatePerSec } from '../core/units.js';
import { PROFILES, resolveProfileSet } from '../stack/profiles.js';
import { TOPOLOGY_NAMES, loadTopology, namedTopology, type Topology } from '../stack/topology.js';
import { DEFAULTS, parseMix, parseStage } from '../swarm/config.js';
import { Problems, formatPath, type Segment } from './problems.js';
import type { MappingSignals } from '../metrics/mapped-scrape.js';
import { loadMapping, signalsFor } from './mapping.js';
import type { CheckinSpec, FaultAction, Scenario, ScenarioNode, ScenarioFault, ScenarioBackground, ScenarioCeiling, ScenarioFleet, ScenarioPlan, ScenarioSlo, ScenarioStack, ScenarioStage } from './types.js';
import { resolveAgent } from './resolve-agent.js';
import { NO_SHARD, parseShard } from '../swarm/shard.js';

/**
 * What a schema cannot check, and the defaults: units parsed with the shared parsers
 * (src/core/units.ts, src/swarm/config.ts), exactly one of stages and ceiling and of topology and
 * target, topology and profile names (files resolved against the scenario's folder and validated),
 * fleet sizes against the stages or the search, the time limit against what must fit in it.
 * Works on data that may have failed the schema: every value is checked for its type before use,
 * and `Problems` drops what the schema already reported.
 */

export { Problems, formatPath, isPrefix, type Problem, type Segment } from './problems.js';

const DEFAULT_TIME_LIMIT = '30m';
const DEFAULT_PAGE_SIZE = 500;
const PROFILE_NAMES = `${Object.keys(PROFILES).join(', ')}, or a .yaml/.json profile file`;
const CHECKIN_EXPECTED = '"N/s" or "N%/min"';

function map(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** `30%/min` (a share of the fleet each minute) or `250/s` (an aggregate rate). */
function parseCheckinSpec(field: string, value: unknown): CheckinSpec {
  const text = typeof value === 'string' ? value.trim() : '';
  if (/%/.test(text)) return { kind: 'fraction', fractionPerMin: parseCheckinFractionPerMin(field, text), text };
  if (/\//.test(text)) return { kind: 'rate', ratePerSec: parseRatePerSec(field, text), text };
  throw new InvalidArgumentError(field, value, CHECKIN_EXPECTED);
}

/** `1%` → 0.01 (0–100%). The same rule as --max-error-rate's, which src/swarm/config.ts keeps private. */
function parsePercentFraction(field: string, value: unknown): number {
  const m = typeof value === 'string' ? /^(\d+(?:\.\d+)?)\s*%$/.exec(value.trim()) : null;
  if (!m || Number(m[1]) > 100) throw new InvalidArgumentError(field, value, 'a percentage like "1%" (0–100)');
  return Number(m[1]) / 100;
}

/** A duration above 0 (and whole seconds where the run counts per second). */
function positiveDurationMs(p: Problems, at: Segment[], value: unknown, fallback: string, wholeSeconds = false): number {
  const ms = p.take(at, (f) => parseDurationMs(f, value ?? fallback), parseDurationMs('', fallback));
  if (ms <= 0) p.expected(at, 'a duration above 0', value);
  else if (wholeSeconds && ms % 1000 !== 0) p.expected(at, 'whole seconds (the series is per second)', value);
  return ms;
}

/** The resolved scenario; problems go to `p` (the caller throws when there are any). */
/** `agentVars`: `rmmscale run --var` values, over the scenario's own `agentVars`. */
export function resolveScenario(data: unknown, p: Problems, file: string, agentVars: ReadonlyMap<string, string> = new Map()): Scenario {
  const raw = map(data);
  const baseDir = dirname(resolve(file));
  const { stack, topology } = resolveStack(map(raw.stack), p, baseDir);
  const fleetRaw = map(raw.fleet);
  const fleet = resolveFleet(fleetRaw, p, topology);
  const problemsBefore = p.list.length;
  const stages = raw.stages === undefined ? null : resolveStages(raw.stages, p);
  const stagesClean = p.ok(['stages']) && p.list.length === problemsBefore;
  const ceiling = raw.ceiling === undefined ? null : resolveCeiling(map(raw.ceiling), p);

  if (stages && ceiling) p.add(['ceiling'], 'stages, ceiling: expected exactly one of them, got both');
  if (!stages && !ceiling && raw.stages === undefined && raw.ceiling === undefined) p.add([], 'stages, ceiling: expected exactly one of them, got neither');

  // The fleet's size: what the stages or the search need, unless given (then nothing may exceed it).
  const given = p.ok(['fleet', 'agents']) ? num(fleetRaw.agents) : undefined;
  if (stages) {
    const largest = Math.max(0, ...stages.map((s) => s.agents));
    if (largest === 0 && stagesClean) p.expectedWords(['stages'], 'a stage with agents above 0', 'none');
    if (given !== undefined) stages.forEach((s, i) => s.agents > given && p.ok(['stages', i]) && p.expected(['stages', i, 'agents'], `at most fleet.agents (${given})`, s.agents));
    fleet.agents = given ?? Math.max(1, largest);
  } else if (ceiling?.unit === 'agents') {
    if (given !== undefined && given < ceiling.max && p.ok(['ceiling', 'max'])) p.expected(['fleet', 'agents'], `at least ceiling.max (${ceiling.max}), the search's largest fleet`, given);
    fleet.agents = given ?? ceiling.max;
  } else {
    fleet.agents = given ?? DEFAULTS.agents;
  }
  if (ceiling?.unit === 'rate' && fleetRaw.checkin !== undefined) p.expected(['fleet', 'checkin'], 'nothing in a search by rate (ceiling.start sets the rate)', fleetRaw.checkin);
  if (ceiling?.unit === 'agents' && fleet.checkin.kind === 'rate') p.expected(['fleet', 'checkin'], 'a check-in fraction like "30%/min" in a search by agents (a fixed rate would not grow with the fleet)', fleetRaw.checkin);

  crossCheckStack(raw, stack, topology, fleet, p);
  const faults = raw.faults === undefined ? [] : resolveFaults(raw.faults, p, { stages, topology, stack, fleet, hasCeiling: raw.ceiling !== undefined });

  const background = resolveBackground(map(raw.background), p);
  const userStreams = background.dashboard || background.commands || background.integration;
  if (userStreams && topology && !topology.nodes.some((n) => n.role === 'single' || n.role === 'web')) {
    p.expectedWords(['background'], 'a topology with user paths (a single or web node)', `topology ${JSON.stringify(stack.topology)}, which has none`);
  }
  if (background.sessions && topology && !topology.nodes.some((n) => n.role === 'relay')) {
    p.expectedWords(['background', 'sessions'], 'a topology with relays (operator sessions are brokered by relays)', `topology ${JSON.stringify(stack.topology)}, which has none`);
  }
  if (background.sessions && fleet.transport !== 'ws') {
    p.expectedWords(['background', 'sessions'], 'a fleet with tunnels (fleet.transport ws): sessions reach agents down their tunnels', `fleet.transport ${fleet.transport}`);
  }

  const timeLimitMs = positiveDurationMs(p, ['timeLimit'], raw.timeLimit, DEFAULT_TIME_LIMIT);
  const minimumMs = stages ? stages.reduce((t, s) => t + s.durationMs + (s.warmupMs ?? 0), 0) : ceiling ? ceiling.maxSteps * (ceiling.warmupMs + ceiling.measureMs) : 0;
  if (timeLimitMs > 0 && minimumMs > timeLimitMs && p.ok(['stages'], ['ceiling'])) {
    const what = stages ? "the stages' total" : 'ceiling.maxSteps × (warmup + measure)';
    p.expected(['timeLimit'], `at least ${what}, ${formatDurationMs(minimumMs)}`, raw.timeLimit ?? DEFAULT_TIME_LIMIT);
  }

  const shard = raw.shard === undefined ? NO_SHARD : p.take(['shard'], (f) => parseShard(f, raw.shard), NO_SHARD);
  // A ceiling search across shards also needs a coordinator: that is `rmmscale run`'s flags, checked there.
  if (shard.count > 1 && !stack.target && p.ok(['shard'])) p.expected(['shard'], 'a scenario with stack.target (the shards drive one shared stack)', raw.shard);

  return {
    shard,
    name: str(raw.name) ?? basename(file).replace(/\.(ya?ml|json)$/i, ''),
    description: str(raw.description) ?? '',
    file: resolve(file),
    stack,
    fleet,
    stages: ceiling ? null : stages,
    ceiling: stages ? null : ceiling,
    faults,
    background,
    slo: resolveSlo(map(raw.slo), p),
    thresholds: Array.isArray(raw.thresholds) ? raw.thresholds.filter((t): t is string => typeof t === 'string') : [],
    timeLimitMs,
    plan: raw.plan === undefined ? null : resolvePlan(map(raw.plan), p),
    agent: resolveAgent(raw.agent, raw.agentVars, p, baseDir, fleet.transport, agentVars),
    definition: withoutSecret(data),
  };
}

/** The scenario as written, minus `fleet.secret`: the definition is copied into result.json. */
function withoutSecret(data: unknown): unknown {
  const fleet = map(map(data).fleet);
  const agentVars = map(map(data).agentVars);
  // agentVars may hold an enroll secret: names kept, values not.
  const vars = map(data).agentVars === undefined ? {} : { agentVars: Object.fromEntries(Object.keys(agentVars).map((k) => [k, '(redacted)'])) };
  if (fleet.secret === undefined) return { ...map(data), ...vars };
  return { ...map(data), ...vars, fleet: { ...fleet, secret: '(redacted)' } };
}

/**
 * A topology or profile file: relative to the scenario's folder, validated now; its own problems
 * are listed under the scenario's line (`stack.topology: /abs/t.yaml: nodes[1].role: …`).
 */
function loadFile<T>(p: Problems, at: Segment[], path: string, baseDir: string, what: string, load: (abs: string) => T): { abs: string; value: T | null } {
  const abs = resolve(baseDir, path);
  if (!existsSync(abs)) {
    p.expectedWords(at, `a readable ${what} file`, `${JSON.stringify(path)} (${abs} does not exist)`);
    return { abs, value: null };
  }
  try {
    return { abs, value: load(abs) };
  } catch (err) {
    if (err instanceof ValidationError) for (const line of err.problems) p.add(at, `${formatPath(at)}: ${line}`);
    else if (err instanceof RmmscaleError) p.add(at, `${formatPath(at)}: ${err.message}`);
    else throw err;
    return { abs, value: null };
  }
}

const isFilePath = (s: string): boolean => /\.(ya?ml|json)$/i.test(s);

function resolveStack(raw: Record<string, unknown>, p: Problems, baseDir: string): { stack: ScenarioStack; topology: Topology | null } {
  const topologyArg = str(raw.topology);
  const target = str(raw.target) ?? null;
  if (raw.topology !== undefined && raw.target !== undefined) p.add(['stack', 'target'], 'stack.topology, stack.target: expected exactly one of them, got both');
  if (raw.topology === undefined && raw.target === undefined) p.add(['stack'], 'stack.topology, stack.target: expected exactly one of them, got neither');

  let topologyName: string | null = null;
  let topology: Topology | null = null;
  if (topologyArg !== undefined) {
    if (isFilePath(topologyArg)) {
      const loaded = loadFile(p, ['stack', 'topology'], topologyArg, baseDir, 'topology', loadTopology);
      topologyName = loaded.abs;
      topology = loaded.value;
    } else {
      try {
        topology = namedTopology(topologyArg);
        topologyName = topologyArg;
      } catch (err) {
        if (!(err instanceof InvalidArgumentError)) throw err;
        p.expected(['stack', 'topology'], TOPOLOGY_NAMES, topologyArg);
      }
    }
  }

  let profile = str(raw.profile) ?? 'automate';
  if (!Object.hasOwn(PROFILES, profile)) {
    if (isFilePath(profile)) profile = loadFile(p, ['stack', 'profile'], profile, baseDir, 'profile', resolveProfileSet).abs;
    else if (raw.profile !== undefined) p.expected(['stack', 'profile'], PROFILE_NAMES, raw.profile);
  }
  const db = raw.db === 'postgres' ? 'postgres' : 'sqlite';
  if (target !== null && raw.topology === undefined) {
    for (const key of ['profile', 'proxy', 'db', 'dbUrl', 'portBase'] as const) {
      if (raw[key] !== undefined) p.expected(['stack', key], 'nothing with stack.target (an external stack is not started)', raw[key]);
    }
  } else if (raw.dbUrl !== undefined && db !== 'postgres') {
    p.expected(['stack', 'dbUrl'], 'nothing unless db is postgres', raw.dbUrl);
  }
  const stack: ScenarioStack = {
    topology: topologyName,
    profile,
    proxy: raw.proxy === 'haproxy' ? 'haproxy' : 'builtin',
    db,
    dbUrl: str(raw.dbUrl) ?? null,
    target,
    portBase: num(raw.portBase) ?? null,
    nodes: resolveNodes(raw.nodes, p, baseDir, target !== null && raw.topology === undefined),
  };
  return { stack, topology };
}

const NODE_ROLES = ['proxy', 'web', 'app', 'db', 'relay', 'single', 'analytics'];

/**
 * `stack.nodes`: only with `target` (a stack rmmscale starts is scraped without being told), unique
 * names, each URL's form (remote or not is the CLI's call), each mapping loaded now, its own
 * problems listed under the node's line.
 */
function resolveNodes(raw: unknown, p: Problems, baseDir: string, external: boolean): ScenarioNode[] {
  if (raw === undefined || !Array.isArray(raw)) return [];
  if (!external) {
    p.expected(['stack', 'nodes'], 'nothing without stack.target (the nodes of a stack rmmscale starts are scraped without being listed)', raw);
    return [];
  }
  const seen = new Set<string>();
  const out: ScenarioNode[] = [];
  raw.forEach((item: unknown, i) => {
    const at: Segment[] = ['stack', 'nodes', i];
    if (!p.ok(at)) return;
    const n = map(item);
    const name = String(n.name);
    if (seen.has(name)) p.expected([...at, 'name'], 'a name no other node has', n.name);
    seen.add(name);
    const tier = String(n.tier);
    p.take([...at, 'metrics'], (f) => checkTarget(f, String(n.metrics), ['http:', 'https:'], true), null);
    let signals: MappingSignals | null = null;
    let mapping = String(n.mapping);
    try {
      const m = loadMapping(mapping, baseDir, formatPath([...at, 'mapping']));
      mapping = m.name;
      signals = signalsFor(m, tier);
    } catch (err) {
      if (err instanceof ValidationError) for (const line of err.problems) p.add([...at, 'mapping'], `${formatPath([...at, 'mapping'])}: ${line}`);
      else if (err instanceof RmmscaleError) p.add([...at, 'mapping'], err.message);
      else throw err;
    }
    const role = str(n.role) ?? (NODE_ROLES.includes(tier) ? tier : 'external');
    if (signals) out.push({ name, tier, role, metricsUrl: String(n.metrics), mapping, signals });
  });
  return out;
}

function resolveFleet(raw: Record<string, unknown>, p: Problems, topology: Topology | null): ScenarioFleet {
  const checkin = p.take(['fleet', 'checkin'], (f) => parseCheckinSpec(f, raw.checkin ?? DEFAULTS.checkin), { kind: 'fraction', fractionPerMin: 0.3, text: DEFAULTS.checkin });
  let mix: ScenarioFleet['mix'] = { checkin: 1, heartbeat: 0, inventory: 0 };
  if (typeof raw.mix === 'string') {
    mix = p.take(['fleet', 'mix'], (f) => parseMix(f, raw.mix as string), mix);
  } else if (raw.mix !== undefined) {
    const m = map(raw.mix);
    mix = { checkin: num(m.checkin) ?? 0, heartbeat: num(m.heartbeat) ?? 0, inventory: num(m.inventory) ?? 0 };
    if (mix.checkin + mix.heartbeat + mix.inventory === 0) p.expected(['fleet', 'mix'], 'a weight above 0 for at least one kind', raw.mix);
  }
  // Agents reach a relays-only stack through tunnels; everything else by HTTP.
  const relaysOnly = topology !== null && topology.nodes.some((n) => n.role === 'relay') && !topology.nodes.some((n) => n.role === 'single' || n.role === 'web');
  const transport = raw.transport === 'ws' || (raw.transport === undefined && relaysOnly) ? 'ws' : 'http';
  if (transport === 'ws' && raw.connection !== undefined) p.expected(['fleet', 'connection'], 'nothing with transport ws (tunnels are persistent)', raw.connection);
  return {
    agents: DEFAULTS.agents, // set from the stages or the search by the caller
    checkin,
    mix,
    transport,
    connection: raw.connection === 'keepalive' || raw.connection === 'pool' ? raw.connection : 'per-checkin',
    arrival: raw.arrival === 'poisson' ? 'poisson' : 'periodic',
    jitterMs: p.take(['fleet', 'jitter'], (f) => parseDurationMs(f, raw.jitter ?? DEFAULTS.jitter), 0),
    seed: raw.seed === undefined ? DEFAULT_SEED : String(raw.seed),
    secret: str(raw.secret) ?? null,
    timeoutMs: positiveDurationMs(p, ['fleet', 'timeout'], raw.timeout, DEFAULTS.timeout),
  };
}

function resolveStages(raw: unknown, p: Problems): ScenarioStage[] {
  if (!Array.isArray(raw)) return [];
  return raw.map((item: unknown, i): ScenarioStage => {
    const at: Segment[] = ['stages', i];
    if (typeof item === 'string') {
      // `30s:1000@30%/min`: the CLI's --stage grammar.
      const spec = p.take(at, (f) => parseStage(f, item), null);
      if (!spec) return { durationMs: 0, agents: 0, checkin: null };
      if (spec.durationMs <= 0) p.expected(at, 'a stage duration above 0', item);
      const checkinAt = item.indexOf('@');
      const checkin = checkinAt < 0 ? null : p.take(at, (f) => parseCheckinSpec(f, item.slice(checkinAt + 1)), null);
      return { durationMs: spec.durationMs, agents: spec.agents, checkin };
    }
    const s = map(item);
    let warmupMs: number | null = null;
    if (s.warmup !== undefined) {
      warmupMs = p.take([...at, 'warmup'], (f) => parseDurationMs(f, s.warmup), 0);
      if (i === 0) p.expected([...at, 'warmup'], 'no warm-up on the first stage (it ramps from 0 agents; warm up a later stage)', s.warmup);
      else if (warmupMs % 1000 !== 0) p.expected([...at, 'warmup'], 'whole seconds (the series is per second)', s.warmup);
    }
    return {
      durationMs: positiveDurationMs(p, [...at, 'duration'], s.duration, '1s'),
      agents: num(s.agents) ?? 0,
      checkin: s.rate === undefined ? null : p.take([...at, 'rate'], (f) => parseCheckinSpec(f, s.rate), null),
      ...(warmupMs !== null ? { warmupMs } : {}),
    };
  });
}

/** A load: agents (a whole number) or a rate (`100/s`). */
function parseLoad(p: Problems, at: Segment[], value: unknown): { unit: 'agents' | 'rate'; load: number } {
  if (typeof value === 'string') return { unit: 'rate', load: p.take(at, (f) => parseRatePerSec(f, value), 1) };
  return { unit: 'agents', load: num(value) ?? 1 };
}

function resolveCeiling(raw: Record<string, unknown>, p: Problems): ScenarioCeiling {
  const start = parseLoad(p, ['ceiling', 'start'], raw.start);
  const max = parseLoad(p, ['ceiling', 'max'], raw.max);
  if (raw.start !== undefined && raw.max !== undefined && p.ok(['ceiling', 'start'], ['ceiling', 'max'])) {
    const kind = start.unit === 'agents' ? 'a whole number of agents' : 'a rate';
    if (max.unit !== start.unit) p.expected(['ceiling', 'max'], `${kind}, as ceiling.start is`, raw.max);
    else if (max.load < start.load) p.expected(['ceiling', 'max'], `at least ceiling.start (${String(raw.start)})`, raw.max);
  }
  const grain = num(raw.grain) ?? (start.unit === 'agents' ? 100 : 1);
  const warmupMs = p.take(['ceiling', 'warmup'], (f) => parseDurationMs(f, raw.warmup ?? '10s'), 10_000);
  if (warmupMs % 1000 !== 0) p.expected(['ceiling', 'warmup'], 'whole seconds (the series is per second)', raw.warmup);
  if (start.unit === 'agents' && !Number.isInteger(grain)) p.expected(['ceiling', 'grain'], 'a whole number of agents', raw.grain);
  return {
    unit: start.unit,
    start: start.load,
    max: max.load,
    stepFactor: num(raw.stepFactor) ?? 1.5,
    precision: num(raw.precision) ?? 0.05,
    warmupMs,
    measureMs: positiveDurationMs(p, ['ceiling', 'measure'], raw.measure, '20s', true),
    maxSteps: num(raw.maxSteps) ?? 12,
    grain,
  };
}

function resolveBackground(raw: Record<string, unknown>, p: Problems): ScenarioBackground {
  const stream = (key: 'dashboard' | 'commands' | 'integration' | 'sessions'): { ratePerSec: number } | null => {
    if (raw[key] === undefined) return null;
    const rate = map(raw[key]).rate;
    return { ratePerSec: p.take(['background', key, 'rate'], (f) => parseRatePerSec(f, rate), 1) };
  };
  const integration = stream('integration');
  return {
    dashboard: stream('dashboard'),
    commands: stream('commands'),
    integration: integration && { ...integration, pageSize: num(map(raw.integration).pageSize) ?? DEFAULT_PAGE_SIZE },
    // Only when asked for: a scenario without sessions resolves as it did before they existed.
    ...(raw.sessions !== undefined ? { sessions: stream('sessions') } : {}),
  };
}

function resolveSlo(raw: Record<string, unknown>, p: Problems): ScenarioSlo {
  return {
    p99Ms: positiveDurationMs(p, ['slo', 'p99'], raw.p99, '500ms'),
    errorRate: p.take(['slo', 'errors'], (f) => parsePercentFraction(f, raw.errors ?? '1%'), 0.01),
    minAchievedRatio: p.take(['slo', 'minAchieved'], (f) => parsePercentFraction(f, raw.minAchieved ?? '97%'), 0.97),
  };
}

function resolvePlan(raw: Record<string, unknown>, p: Problems): ScenarioPlan {
  const maxUtilization = p.take(['plan', 'maxUtilization'], (f) => parsePercentFraction(f, raw.maxUtilization ?? '80%'), 0.8);
  if (maxUtilization <= 0) p.expected(['plan', 'maxUtilization'], 'a percentage above 0%', raw.maxUtilization);
  return {
    agents: Array.isArray(raw.agents) ? raw.agents.filter((a): a is number => typeof a === 'number') : [],
    redundancy: raw.redundancy === 'none' ? 'none' : 'n+1',
    maxUtilization,
  };
}

/** What depends on several sections: the transport against the topology, target URLs against the transport. */
function crossCheckStack(raw: Record<string, unknown>, stack: ScenarioStack, topology: Topology | null, fleet: ScenarioFleet, p: Problems): void {
  const fleetRaw = map(raw.fleet);
  if (topology && fleetRaw.transport !== undefined) {
    const hasRelay = topology.nodes.some((n) => n.role === 'relay');
    const hasWeb = topology.nodes.some((n) => n.role === 'single' || n.role === 'web');
    if (fleet.transport === 'ws' && !hasRelay) p.expected(['fleet', 'transport'], `http for topology ${JSON.stringify(stack.topology)} (it has no relay node)`, fleetRaw.transport);
    if (fleet.transport === 'http' && !hasWeb) p.expected(['fleet', 'transport'], `ws for topology ${JSON.stringify(stack.topology)} (agents reach relays by tunnel)`, fleetRaw.transport);
  }
  if (stack.target !== null) {
    const schemes = fleet.transport === 'ws' ? ['ws:', 'wss:'] : ['http:', 'https:'];
    // Remote or not is the CLI's call (--allow-remote); here only the form.
    for (const t of stack.target.split(',')) p.take(['stack', 'target'], (f) => checkTarget(f, t.trim(), schemes, true), null);
  }
}

const FAULT_ACTIONS: readonly FaultAction[] = ['kill', 'stop', 'restart', 'slow', 'disconnect'];

interface FaultContext {
  stages: ScenarioStage[] | null;
  topology: Topology | null;
  stack: ScenarioStack;
  fleet: ScenarioFleet;
  hasCeiling: boolean;
}

/**
 * `faults:` items: exactly one action each, its node in the topology (a tier name picks the tier's
 * first node), `for` and `by` where the action needs them and nowhere else, and a time inside the
 * stages (the fault and its `for` end before the last stage does). In time order.
 */
function resolveFaults(raw: unknown, p: Problems, c: FaultContext): ScenarioFault[] {
  if (!Array.isArray(raw)) return [];
  if (c.hasCeiling) {
    p.expectedWords(['faults'], 'faults only with stages (a ceiling search measures a clean stack)', 'a ceiling search');
    return [];
  }
  if (c.stack.target !== null) {
    p.expectedWords(['faults'], 'faults only on a stack rmmscale starts (stack.topology)', `stack.target ${JSON.stringify(c.stack.target)}`);
    return [];
  }
  const stages = c.stages ?? [];
  const stageStartMs: number[] = [];
  let totalMs = 0;
  for (const st of stages) {
    stageStartMs.push(totalMs);
    totalMs += st.durationMs;
  }
  const out: ScenarioFault[] = [];
  raw.forEach((item: unknown, i) => {
    const at: Segment[] = ['faults', i];
    if (!p.ok(at)) return;
    const f = map(item);
    const actions = FAULT_ACTIONS.filter((a) => f[a] !== undefined);
    if (actions.length !== 1) {
      p.expectedWords(at, `exactly one of ${FAULT_ACTIONS.join(', ')}`, actions.length === 0 ? 'none' : actions.join(' and '));
      return;
    }
    const action = actions[0]!;
    const timed = action === 'stop' || action === 'slow';
    if (timed && f.for === undefined) p.expectedWords([...at, 'for'], `a duration: ${action} needs to know how long it lasts`, 'nothing');
    if (!timed && f.for !== undefined) p.expected([...at, 'for'], `nothing: only stop and slow last for a while (${action} is instant)`, f.for);
    if (action === 'slow' && f.by === undefined) p.expectedWords([...at, 'by'], 'a duration (the latency slow adds to each query) or a factor like 10x', 'nothing');
    if (action !== 'slow' && f.by !== undefined) p.expected([...at, 'by'], 'nothing: only slow adds latency', f.by);
    const atMs = p.take([...at, 'at'], (fld) => parseDurationMs(fld, f.at), 0);
    const forMs = f.for === undefined ? null : positiveDurationMs(p, [...at, 'for'], f.for, '1s');
    const byFactor = f.by === undefined ? null : slowFactor(p, [...at, 'by'], f.by);
    const byMs = f.by === undefined || byFactor !== null ? null : positiveDurationMs(p, [...at, 'by'], f.by, '1ms');
    const fraction = action === 'disconnect' ? p.take([...at, 'disconnect'], (fld) => parsePercentFraction(fld, f.disconnect), 0) : null;
    if (fraction !== null && fraction <= 0) p.expected([...at, 'disconnect'], 'a share above 0%', f.disconnect);
    if (action === 'disconnect' && c.fleet.transport !== 'ws') p.expected([...at, 'disconnect'], 'a fleet with tunnels (fleet.transport ws): disconnect drops tunnels', f.disconnect);
    const node = action === 'disconnect' ? null : resolveFaultNode(p, [...at, action], f[action], c.topology, action);
    // Where the fault falls: a stage and the time into it.
    const stageNo = num(f.stage);
    let stageIndex: number;
    let atInStageMs: number;
    if (stageNo !== undefined) {
      stageIndex = stageNo - 1;
      if (stageIndex >= stages.length) {
        p.expected([...at, 'stage'], `a stage from 1 to ${stages.length}`, f.stage);
        return;
      }
      atInStageMs = atMs;
      if (atMs >= stages[stageIndex]!.durationMs) p.expected([...at, 'at'], `a time before stage ${stageNo} ends (${formatDurationMs(stages[stageIndex]!.durationMs)})`, f.at);
    } else {
      stageIndex = stageStartMs.findLastIndex((t) => t <= atMs);
      atInStageMs = atMs - (stageStartMs[stageIndex] ?? 0);
      if (atMs >= totalMs && stages.length > 0) p.expected([...at, 'at'], `a time before the stages end (${formatDurationMs(totalMs)})`, f.at);
    }
    const absMs = (stageStartMs[stageIndex] ?? 0) + atInStageMs;
    if (forMs !== null && absMs + forMs > totalMs && stages.length > 0 && p.ok([...at, 'at'])) {
      p.expected([...at, 'for'], `at most ${formatDurationMs(totalMs - absMs)} (the fault must end before the stages do)`, f.for);
    }
    out.push({ atMs: absMs, stageIndex: Math.max(0, stageIndex), atInStageMs, action, node, forMs, byMs, byFactor, fraction });
  });
  return out.sort((a, b) => a.atMs - b.atMs);
}

/** The most a `by: Nx` may slow a node: past it the node is down, which `stop` says better. */
export const MAX_SLOW_FACTOR = 1000;

/**
 * A slow's `by` as a factor (`10x`, `1.5x`): N times as long, above 1 and at most MAX_SLOW_FACTOR.
 * Null when `by` is not a factor (a duration, checked by the caller).
 */
export function slowFactor(p: Problems, at: Segment[], value: unknown): number | null {
  const m = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*x\s*$/.exec(value) : null;
  if (!m) return null;
  const n = Number(m[1]);
  if (!(n > 1) || n > MAX_SLOW_FACTOR) {
    p.expected(at, `a factor above 1x and at most ${MAX_SLOW_FACTOR}x (1x would change nothing)`, value);
    return 2;
  }
  return n;
}

/** A node name from the topology, or a tier name (its first node). */
function resolveFaultNode(p: Problems, at: Segment[], value: unknown, topology: Topology | null, action: FaultAction): string | null {
  const name = str(value) ?? '';
  if (!topology) return name || null;
  const byName = topology.nodes.find((n) => n.name === name);
  const node = byName ?? topology.nodes.find((n) => n.tier === name);
  if (!node) {
    const names = topology.nodes.map((n) => n.name).join(', ');
    p.expected(at, `a node of topology ${JSON.stringify(topology.name)} (${names}) or one of its tiers`, value);
    return null;
  }
  if (action === 'slow' && node.role === 'proxy') p.expected(at, 'a node that queries the database (the proxy has none)', value);
  return node.name;
}

/**
 * The `plan:` of a scenario as written (a result's `scenario.definition`), resolved as a run resolves
 * it: null when it has none or it does not resolve. `rmmscale merge` sizes the merged result's plan by it.
 */
export function scenarioPlanOf(definition: unknown): ScenarioPlan | null {
  const raw = map(definition);
  if (raw.plan === undefined) return null;
  const p = new Problems([]);
  const plan = resolvePlan(map(raw.plan), p);
  return p.list.length === 0 ? plan : null;
}
