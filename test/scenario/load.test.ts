import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, ValidationError } from '../../src/core/errors.js';
import { EXIT } from '../../src/core/exit-codes.js';
import { loadScenario, parseScenario } from '../../src/scenario/load.js';
import type { Scenario } from '../../src/scenario/types.js';

const SCENARIOS = resolve('scenarios');
const dir = mkdtempSync(join(tmpdir(), 'rmmscale-scenario-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function problems(text: string, file = 'bad.yaml'): string[] {
  try {
    parseScenario(text, file);
  } catch (err) {
    if (err instanceof ValidationError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ValidationError');
}

/** The smallest valid scenario; cases below change one thing in it. */
const STACK = 'stack:\n  topology: single\n';
const STAGES = 'stages:\n  - { duration: 30s, agents: 1000 }\n';

describe('shipped scenarios', () => {
  const files = readdirSync(SCENARIOS).filter((f) => f.endsWith('.yaml'));
  const load = (name: string): Scenario => loadScenario(join(SCENARIOS, `${name}.yaml`));

  it('ships the ones the issues ask for', () => {
    expect(files.sort()).toEqual(['analytics-degraded.yaml', 'automate-single.yaml', 'automate-split3.yaml', 'automate-split4.yaml', 'ci-gate.yaml', 'control-plane-down.yaml', 'failover-split3.yaml', 'quickstart.yaml', 'relay-failover.yaml', 'relays-10k.yaml']);
  });

  it.each([
    ['failover-split3', [['kill', 'web-agent-1'], ['restart', 'web-agent-1'], ['stop', 'web-agent-2'], ['kill', 'app']]],
    ['control-plane-down', [['stop', 'db'], ['kill', 'db'], ['restart', 'db']]],
  ])('%s: its faults, on an HTTP fleet (the ledger needs one), at most 3 minutes of load', (name, faults) => {
    const s = load(name);
    expect(s.faults.map((f) => [f.action, f.node])).toEqual(faults);
    expect(s.fleet.transport).toBe('http');
    expect(s.background.commands).not.toBeNull();
    expect((s.stages ?? []).reduce((a, st) => a + st.durationMs, 0)).toBeLessThanOrEqual(180_000);
  });

  it('relay-failover: relays4, 10,000 tunnels, relay-2 killed in the hold and restarted 40 s later', () => {
    const s = load('relay-failover');
    expect(s.stack.topology).toBe('relays4');
    expect(s.fleet.transport).toBe('ws');
    expect(s.fleet.agents).toBe(10_000);
    expect(s.faults.map((f) => [f.action, f.node, f.stageIndex, f.atInStageMs])).toEqual([
      ['kill', 'relay-2', 1, 20_000],
      ['restart', 'relay-2', 1, 60_000],
    ]);
  });

  it.each(files)('%s loads, names the schema for editors, and has SLOs and a time limit', (f) => {
    const text = readFileSync(join(SCENARIOS, f), 'utf8');
    expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=../schemas/scenario.schema.json');
    const s = loadScenario(join(SCENARIOS, f));
    expect(s.name).toBe(f.replace(/\.yaml$/, ''));
    expect(s.description).not.toBe('');
    expect(s.file).toBe(join(SCENARIOS, f));
    expect((s.stages === null) !== (s.ceiling === null)).toBe(true);
    const doc = s.definition as Record<string, unknown>;
    expect(Object.keys(doc)).toEqual(expect.arrayContaining(['slo', 'timeLimit']));
  });

  it('quickstart: a ceiling search on single that fits in 2.5 minutes of load', () => {
    const s = load('quickstart');
    expect(s.stack).toEqual({ topology: 'single', profile: 'automate', proxy: 'builtin', db: 'sqlite', dbUrl: null, target: null, portBase: null, nodes: [] });
    expect(s.ceiling).toEqual({ unit: 'agents', start: 10_000, max: 60_000, stepFactor: 1.4, precision: 0.1, warmupMs: 5000, measureMs: 10_000, maxSteps: 8, grain: 100 });
    // Every window at most: 8 × 15 s = 120 s, leaving 30 s of the limit for starting and stopping the stack.
    expect(s.ceiling!.maxSteps * (s.ceiling!.warmupMs + s.ceiling!.measureMs)).toBe(120_000);
    expect(s.timeLimitMs).toBe(150_000);
  });

  it.each([
    ['automate-single', 'single', 8000, 60_000],
    ['automate-split3', 'split3', 16_000, 100_000],
    ['automate-split4', 'split4', 20_000, 120_000],
  ])('%s: a ceiling search on %s from %d to %d agents, to 5 percent', (name, topology, start, max) => {
    const s = load(name);
    expect(s.stack.topology).toBe(topology);
    expect(s.stack.profile).toBe('automate');
    expect(s.ceiling).toEqual({ unit: 'agents', start, max, stepFactor: 1.5, precision: 0.05, warmupMs: 10_000, measureMs: 20_000, maxSteps: 12, grain: 100 });
    expect(s.fleet.agents).toBe(max);
  });

  it.each(['quickstart', 'automate-single', 'automate-split3', 'automate-split4'])('%s sends background traffic to the user paths', (name) => {
    expect(load(name).background).toEqual({ dashboard: { ratePerSec: 1 }, commands: { ratePerSec: 0.2 }, integration: { ratePerSec: 0.2, pageSize: 500 } });
  });

  it('relays-10k: 10,000 tunnel agents over relays4, ramped then held', () => {
    const s = load('relays-10k');
    expect(s.stack.topology).toBe('relays4');
    expect(s.fleet).toMatchObject({ agents: 10_000, transport: 'ws', checkin: { kind: 'fraction', fractionPerMin: 0.2, text: '20%/min' } });
    expect(s.stages).toEqual([
      { durationMs: 120_000, agents: 10_000, checkin: null },
      { durationMs: 300_000, agents: 10_000, checkin: null },
    ]);
    expect(s.background).toEqual({ dashboard: null, commands: null, integration: null });
  });

  it('ci-gate: split2, 3,000 agents held for 30 s, thresholds kept as written', () => {
    const s = load('ci-gate');
    expect(s.stack.topology).toBe('split2');
    expect(s.stages).toEqual([
      { durationMs: 10_000, agents: 3000, checkin: null },
      { durationMs: 30_000, agents: 3000, checkin: null },
    ]);
    expect(s.thresholds).toEqual(['checkin.p99 < 1s', 'errors.rate < 0.1%']);
    expect(s.timeLimitMs).toBe(180_000);
  });
});

describe('defaults', () => {
  it('fills every default into the smallest staged file', () => {
    const text = STACK + STAGES;
    const s = parseScenario(text, 'dir/minimal.yaml');
    expect(s).toEqual({
      name: 'minimal',
      description: '',
      file: resolve('dir/minimal.yaml'),
      stack: { topology: 'single', profile: 'automate', proxy: 'builtin', db: 'sqlite', dbUrl: null, target: null, portBase: null, nodes: [] },
      fleet: {
        agents: 1000,
        checkin: { kind: 'fraction', fractionPerMin: 0.3, text: '30%/min' },
        mix: { checkin: 1, heartbeat: 0, inventory: 0 },
        transport: 'http',
        connection: 'per-checkin',
        arrival: 'periodic',
        jitterMs: 0,
        seed: 'rmmscale',
        secret: null,
        timeoutMs: 30_000,
      },
      stages: [{ durationMs: 30_000, agents: 1000, checkin: null }],
      ceiling: null,
      faults: [],
      background: { dashboard: null, commands: null, integration: null },
      slo: { p99Ms: 500, errorRate: 0.01, minAchievedRatio: 0.97 },
      thresholds: [],
      timeLimitMs: 1_800_000,
      plan: null,
      agent: null,
      definition: { stack: { topology: 'single' }, stages: [{ duration: '30s', agents: 1000 }] },
      shard: { index: 0, count: 1 },
    } satisfies Scenario);
  });

  it('a ceiling search by agents: stepFactor 1.5, precision 0.05, 10 s + 20 s windows, 12 steps, grain 100', () => {
    const s = parseScenario(`${STACK}ceiling: { start: 1000, max: 5000 }\n`, 'c.yaml');
    expect(s.ceiling).toEqual({ unit: 'agents', start: 1000, max: 5000, stepFactor: 1.5, precision: 0.05, warmupMs: 10_000, measureMs: 20_000, maxSteps: 12, grain: 100 });
    expect(s.fleet.agents).toBe(5000);
    expect(s.stages).toBeNull();
  });

  it('a ceiling search by rate: grain 1, over the default 1000 agents', () => {
    const s = parseScenario(`${STACK}ceiling: { start: 50/s, max: 6000/min }\n`, 'c.yaml');
    expect(s.ceiling).toMatchObject({ unit: 'rate', start: 50, max: 100, grain: 1 });
    expect(s.fleet.agents).toBe(1000);
  });

  it('background integration pages 500 agents unless told; plan utilisation 80%, n+1 redundancy', () => {
    const s = parseScenario(`${STACK}${STAGES}background:\n  integration: { rate: 12/min }\nplan:\n  agents: [50000]\n`, 'b.yaml');
    expect(s.background.integration).toEqual({ ratePerSec: 0.2, pageSize: 500 });
    expect(s.plan).toEqual({ agents: [50_000], redundancy: 'n+1', maxUtilization: 0.8 });
  });

  it('a relays-only topology defaults to the ws transport', () => {
    expect(parseScenario(`stack: { topology: relays }\n${STAGES}`, 'r.yaml').fleet.transport).toBe('ws');
  });

  it('takes the CLI forms: stage strings, a mix string, a numeric seed, a per-stage rate', () => {
    const s = parseScenario(
      `${STACK}fleet:\n  mix: checkin=90,inventory=5,heartbeat=5\n  seed: 42\nstages:\n  - 30s:1000\n  - 1m:5000@250/s\n  - { duration: 2m, agents: 5000, rate: 60%/h }\n`,
      's.yaml',
    );
    expect(s.fleet.mix).toEqual({ checkin: 90, heartbeat: 5, inventory: 5 });
    expect(s.fleet.seed).toBe('42');
    expect(s.fleet.agents).toBe(5000);
    expect(s.stages).toEqual([
      { durationMs: 30_000, agents: 1000, checkin: null },
      { durationMs: 60_000, agents: 5000, checkin: { kind: 'rate', ratePerSec: 250, text: '250/s' } },
      { durationMs: 120_000, agents: 5000, checkin: { kind: 'fraction', fractionPerMin: 0.01, text: '60%/h' } },
    ]);
  });

  it('an external target: no topology, and a remote one is for the CLI to refuse (--allow-remote)', () => {
    const s = parseScenario(`stack:\n  target: http://rmm.example.com:8080\n${STAGES}`, 't.yaml');
    expect(s.stack).toMatchObject({ topology: null, target: 'http://rmm.example.com:8080' });
  });
});

describe('relative paths', () => {
  const sub = join(dir, 'scen');
  mkdirSync(join(sub, 'stacks'), { recursive: true });
  writeFileSync(join(sub, 'stacks', 'two.yaml'), 'nodes:\n  - {name: db, role: db}\n  - {name: app, role: app}\n  - {name: web-1, role: web}\n');
  writeFileSync(join(sub, 'stacks', 'bad.yaml'), 'nodes:\n  - {name: db, role: cache}\n');
  writeFileSync(join(sub, 'slow.yaml'), 'tiers:\n  web-agent: {workers: 4, service: {dist: constant, meanMs: 20}}\n');

  it('topology and profile files resolve against the scenario file folder, not the working directory', () => {
    const file = join(sub, 'rel.yaml');
    writeFileSync(file, `stack:\n  topology: stacks/two.yaml\n  profile: ./slow.yaml\n${STAGES}`);
    const s = loadScenario(file);
    expect(s.stack.topology).toBe(join(sub, 'stacks', 'two.yaml'));
    expect(s.stack.profile).toBe(join(sub, 'slow.yaml'));
  });

  it('a missing file names the path it looked at', () => {
    expect(problems(`stack:\n  topology: stacks/none.yaml\n${STAGES}`, join(sub, 'm.yaml'))).toEqual([
      `${join(sub, 'm.yaml')}:2 stack.topology: expected a readable topology file, got "stacks/none.yaml" (${join(sub, 'stacks', 'none.yaml')} does not exist)`,
    ]);
  });

  it("a bad topology file's own problems are listed under the scenario's line", () => {
    expect(problems(`stack:\n  topology: stacks/bad.yaml\n${STAGES}`, join(sub, 'b.yaml'))).toEqual([
      `${join(sub, 'b.yaml')}:2 stack.topology: ${join(sub, 'stacks', 'bad.yaml')}: nodes[0].role: expected one of single, web, app, db, proxy, relay, analytics, got "cache"`,
    ]);
  });

  it('an unreadable scenario file is a bad argument (exit 2)', () => {
    const err = (() => {
      try {
        loadScenario(join(dir, 'nope.yaml'));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).message).toBe(`SCENARIO: expected a readable scenario file (ENOENT), got ${JSON.stringify(join(dir, 'nope.yaml'))}`);
  });
});

describe('the schema', () => {
  const schema = JSON.parse(readFileSync('schemas/scenario.schema.json', 'utf8')) as Record<string, unknown>;

  /** Every key the schema allows, as dotted paths, with its schema node. */
  function keys(node: Record<string, unknown>, prefix: string, out: Map<string, Record<string, unknown>>): Map<string, Record<string, unknown>> {
    const defs = schema.definitions as Record<string, Record<string, unknown>>;
    const resolved = typeof node.$ref === 'string' ? { ...defs[node.$ref.replace('#/definitions/', '')], ...node } : node;
    for (const branch of [resolved, resolved.else, resolved.items] as Array<Record<string, unknown> | undefined>) {
      const props = branch?.properties as Record<string, Record<string, unknown>> | undefined;
      for (const [k, v] of Object.entries(props ?? {})) {
        out.set(prefix ? `${prefix}.${k}` : k, v);
        keys(v, prefix ? `${prefix}.${k}` : k, out);
      }
      if (branch && branch !== resolved && branch.$ref) keys(branch as Record<string, unknown>, prefix, out);
    }
    return out;
  }
  const all = keys(schema, '', new Map());

  it('describes every key, so editors show help while completing', () => {
    expect(all.size).toBeGreaterThan(40);
    expect([...all].filter(([, v]) => typeof v.description !== 'string').map(([k]) => k)).toEqual([]);
  });

  it('docs/scenarios.md documents every key', () => {
    const docs = readFileSync('docs/scenarios.md', 'utf8');
    const leaf = (k: string): string => k.split('.').pop()!;
    expect([...all.keys()].filter((k) => k !== '$schema' && !docs.includes(`\`${leaf(k)}\``) && !docs.includes(`\`${k.split('.').slice(-2).join('.')}\``))).toEqual([]);
  });
});

describe('malformed files: one line each, FILE:LINE PATH: expected …, got …', () => {
  it('a stage may warm up at the previous count for its own time, counted in the time the stages need', () => {
    const s = parseScenario(`${STACK}stages:\n  - { duration: 20s, agents: 2000 }\n  - { duration: 2m, agents: 2000, warmup: 90s }\n`, 's.yaml');
    expect(s.stages).toEqual([
      { durationMs: 20_000, agents: 2000, checkin: null },
      { durationMs: 120_000, agents: 2000, checkin: null, warmupMs: 90_000 },
    ]);
    // The time limit must leave room for the warm-up too: 20 s + 90 s + 2 min.
    expect(problems(`${STACK}stages:\n  - { duration: 20s, agents: 20 }\n  - { duration: 2m, agents: 20, warmup: 90s }\ntimeLimit: 150s\n`)[0]).toBe(`bad.yaml:6 timeLimit: expected at least the stages' total, 230s, got "150s"`);
  });

  it.each<[string, string, string]>([
    ['on the first stage', `${STACK}stages:\n  - { duration: 20s, agents: 20, warmup: 10s }\n`, 'bad.yaml:4 stages[0].warmup: expected no warm-up on the first stage (it ramps from 0 agents; warm up a later stage), got "10s"'],
    ['in part seconds', `${STACK}stages:\n  - { duration: 20s, agents: 20 }\n  - { duration: 20s, agents: 20, warmup: 1500ms }\n`, 'bad.yaml:5 stages[1].warmup: expected whole seconds (the series is per second), got "1500ms"'],
    ['not a duration', `${STACK}stages:\n  - { duration: 20s, agents: 20 }\n  - { duration: 20s, agents: 20, warmup: soon }\n`, 'bad.yaml:5 stages[1].warmup:'],
  ])('refuses a stage warm-up %s', (_what, text, first) => {
    expect(problems(text)[0]).toContain(first);
  });

  it('the issue example, on line 14', () => {
    const text = [
      '# yaml-language-server: $schema=../schemas/scenario.schema.json',
      'name: x',
      'stack:',
      '  topology: split3',
      'fleet:',
      '  agents: 20000',
      'stages:',
      '  - duration: 1m',
      '    agents: 5000',
      '  - duration: 1m',
      '    agents: 10000',
      '  - duration: 1m',
      '    agents: 20000',
      '    rate: fast',
      '',
    ].join('\n');
    expect(problems(text, 'scenarios/x.yaml')).toEqual(['scenarios/x.yaml:14 stages[2].rate: expected "N/s" or "N%/min", got "fast"']);
  });

  it.each<[string, string, string[]]>([
    ['an unknown key, near a known one', `${STACK}${STAGES}timelimit: 5m\n`, ['bad.yaml:5 timelimit: expected a known key (did you mean "timeLimit"?), got "timelimit"']],
    [
      'an unknown key, nowhere near',
      `${STACK}${STAGES}fleet:\n  colour: blue\n`,
      ['bad.yaml:6 fleet.colour: expected a known key (agents, checkin, mix, transport, connection, arrival, jitter, seed, secret, timeout), got "colour"'],
    ],
    ['an unknown key in a stage', `${STACK}stages:\n  - { duration: 30s, agnets: 10 }\n`, ['bad.yaml:4 stages[0].agents: expected a whole number from 0 to 2000000, got nothing', 'bad.yaml:4 stages[0].agnets: expected a known key (did you mean "agents"?), got "agnets"']],
    ['both stages and ceiling', `${STACK}${STAGES}ceiling: { start: 1000, max: 2000 }\n`, ['bad.yaml:5 stages, ceiling: expected exactly one of them, got both']],
    ['neither stages nor ceiling', `name: n\n${STACK}`, ['bad.yaml:1 stages, ceiling: expected exactly one of them, got neither']],
    ['both topology and target', `stack:\n  topology: single\n  target: http://127.0.0.1:8080\n${STAGES}`, ['bad.yaml:3 stack.topology, stack.target: expected exactly one of them, got both']],
    ['neither topology nor target', `stack:\n  profile: automate\n${STAGES}`, ['bad.yaml:1 stack.topology, stack.target: expected exactly one of them, got neither']],
    ['no stack at all', STAGES, ['bad.yaml:1 stack: expected a map, got nothing']],
    ['a bad duration', `${STACK}stages:\n  - { duration: soon, agents: 10 }\n`, ['bad.yaml:4 stages[0].duration: expected a duration like "250ms", "60s", "5m" or "1h", got "soon"']],
    ['a duration without a unit', `${STACK}${STAGES}timeLimit: 600\n`, ['bad.yaml:5 timeLimit: expected a duration like "250ms", "60s", "5m" or "1h", got 600']],
    ['a zero duration', `${STACK}stages:\n  - { duration: 0s, agents: 10 }\n`, ['bad.yaml:4 stages[0].duration: expected a duration above 0, got "0s"']],
    ['a bad stage string', `${STACK}stages:\n  - 30s-1000\n`, ['bad.yaml:4 stages[0]: expected DURATION:AGENTS[@CHECKIN] like "30s:1000", "2m:20000@30%/min" or "1m:5000@250/s", got "30s-1000"']],
    ['a stage of the wrong type', `${STACK}stages:\n  - 30\n`, ['bad.yaml:4 stages[0]: expected a stage like {duration: 30s, agents: 1000} or "30s:1000", got 30']],
    ['an empty stage list', `${STACK}stages: []\n`, ['bad.yaml:3 stages: expected at least 1 item, got []']],
    ['a bad check-in model', `${STACK}${STAGES}fleet:\n  checkin: 30 per minute\n`, ['bad.yaml:6 fleet.checkin: expected "N/s" or "N%/min", got "30 per minute"']],
    ['a check-in of zero', `${STACK}${STAGES}fleet:\n  checkin: 0%/min\n`, ['bad.yaml:6 fleet.checkin: expected a check-in fraction like "30%/min", above 0, got "0%/min"']],
    ['a bad background rate', `${STACK}${STAGES}background:\n  dashboard: { rate: often }\n`, ['bad.yaml:6 background.dashboard.rate: expected a rate like "250/s" or "6600/min", above 0, got "often"']],
    ['a rate of zero', `${STACK}${STAGES}background:\n  commands: { rate: 0/s }\n`, ['bad.yaml:6 background.commands.rate: expected a rate like "250/s" or "6600/min", above 0, got "0/s"']],
    ['a background stream without its rate', `${STACK}${STAGES}background:\n  dashboard: {}\n`, ['bad.yaml:6 background.dashboard.rate: expected a rate like "250/s" or "6600/min", above 0, got nothing']],
    ['a percentage without %', `${STACK}${STAGES}slo:\n  errors: 1\n`, ['bad.yaml:6 slo.errors: expected a percentage like "1%" (0–100), got 1']],
    ['a percentage over 100', `${STACK}${STAGES}slo:\n  minAchieved: 150%\n`, ['bad.yaml:6 slo.minAchieved: expected a percentage like "1%" (0–100), got "150%"']],
    ['negative agents', `${STACK}${STAGES}fleet:\n  agents: -5\n`, ['bad.yaml:6 fleet.agents: expected a whole number from 1 to 2000000, got -5']],
    ['fractional agents', `${STACK}${STAGES}fleet:\n  agents: 10.5\n`, ['bad.yaml:6 fleet.agents: expected a whole number from 1 to 2000000, got 10.5']],
    ['a stage above the fleet', `${STACK}fleet:\n  agents: 500\n${STAGES}`, ['bad.yaml:6 stages[0].agents: expected at most fleet.agents (500), got 1000']],
    [
      'an unknown topology',
      `stack:\n  topology: mesh\n${STAGES}`,
      ["bad.yaml:2 stack.topology: expected single, split2 … split16 (split3 is the article's layout), relays1 … relays16 (relays = relays3), or a .yaml/.json topology file, got \"mesh\""],
    ],
    ['an unknown profile', `${STACK}  profile: fast\n${STAGES}`, ['bad.yaml:3 stack.profile: expected none, automate, or a .yaml/.json profile file, got "fast"']],
    ['an unknown proxy', `${STACK}  proxy: nginx\n${STAGES}`, ['bad.yaml:3 stack.proxy: expected one of builtin, haproxy, got "nginx"']],
    ['a target that is not a URL', `stack:\n  target: localhost:8080\n${STAGES}`, ['bad.yaml:2 stack.target: expected a URL like http://127.0.0.1:8080, got "localhost:8080"']],
    ['a ws target with the http transport', `stack:\n  target: ws://127.0.0.1:9001/agent/v1/tunnel\n${STAGES}`, ['bad.yaml:2 stack.target: expected a URL with scheme http or https, got "ws://127.0.0.1:9001/agent/v1/tunnel"']],
    [
      'stack settings with an external target',
      `stack:\n  target: http://127.0.0.1:8080\n  proxy: haproxy\n${STAGES}`,
      ['bad.yaml:3 stack.proxy: expected nothing with stack.target (an external stack is not started), got "haproxy"'],
    ],
    ['a database URL for sqlite', `${STACK}  dbUrl: postgres://127.0.0.1/rmm\n${STAGES}`, ['bad.yaml:3 stack.dbUrl: expected nothing unless db is postgres, got "postgres://127.0.0.1/rmm"']],
    ['an unknown transport', `${STACK}${STAGES}fleet:\n  transport: grpc\n`, ['bad.yaml:6 fleet.transport: expected one of http, ws, got "grpc"']],
    ['tunnels to a stack without relays', `stack:\n  topology: split3\n${STAGES}fleet:\n  transport: ws\n`, ['bad.yaml:6 fleet.transport: expected http for topology "split3" (it has no relay node), got "ws"']],
    ['a connection policy with tunnels', `stack:\n  topology: relays2\n${STAGES}fleet:\n  connection: pool\n`, ['bad.yaml:6 fleet.connection: expected nothing with transport ws (tunnels are persistent), got "pool"']],
    ['a bad mix string', `${STACK}${STAGES}fleet:\n  mix: checkin=90,email=10\n`, ['bad.yaml:6 fleet.mix: expected comma-separated KIND=WEIGHT with KIND in checkin, heartbeat, inventory, e.g. "checkin=90,inventory=5,heartbeat=5", got "checkin=90,email=10"']],
    ['an all-zero mix', `${STACK}${STAGES}fleet:\n  mix: { checkin: 0, inventory: 0 }\n`, ['bad.yaml:6 fleet.mix: expected a weight above 0 for at least one kind, got {"checkin":0,"inventory":0}']],
    [
      'background on a stack without user paths',
      `stack:\n  topology: relays4\n${STAGES}background:\n  dashboard: { rate: 1/s }\n`,
      ['bad.yaml:5 background: expected a topology with user paths (a single or web node), got topology "relays4", which has none'],
    ],
    ['a ceiling without max', `${STACK}ceiling:\n  start: 1000\n`, ['bad.yaml:3 ceiling.max: expected a whole number of agents from 1 to 2000000, or a rate like "100/s", got nothing']],
    ['a ceiling max under its start', `${STACK}ceiling:\n  start: 1000\n  max: 500\n`, ['bad.yaml:5 ceiling.max: expected at least ceiling.start (1000), got 500']],
    ['a ceiling mixing agents and rates', `${STACK}ceiling:\n  start: 100/s\n  max: 5000\n`, ['bad.yaml:5 ceiling.max: expected a rate, as ceiling.start is, got 5000']],
    ['a step factor of 1', `${STACK}ceiling: { start: 1000, max: 5000, stepFactor: 1 }\n`, ['bad.yaml:3 ceiling.stepFactor: expected a number above 1 and at most 10, got 1']],
    ['a precision of 5 (not 0.05)', `${STACK}ceiling: { start: 1000, max: 5000, precision: 5 }\n`, ['bad.yaml:3 ceiling.precision: expected a number between 0 and 1, like 0.05, got 5']],
    ['a measured window in fractions of a second', `${STACK}ceiling: { start: 1000, max: 5000, measure: 1500ms }\n`, ['bad.yaml:3 ceiling.measure: expected whole seconds (the series is per second), got "1500ms"']],
    ['a time limit shorter than the stages', `${STACK}stages:\n  - 2m:1000\n  - 2m:1000\ntimeLimit: 3m\n`, ["bad.yaml:6 timeLimit: expected at least the stages' total, 4m, got \"3m\""]],
    ['a time limit shorter than the search', `${STACK}ceiling: { start: 1000, max: 5000 }\ntimeLimit: 5m\n`, ['bad.yaml:4 timeLimit: expected at least ceiling.maxSteps × (warmup + measure), 6m, got "5m"']],
    [
      'a fixed check-in rate in a search by agents',
      `${STACK}fleet:\n  checkin: 250/s\nceiling: { start: 1000, max: 5000 }\n`,
      ['bad.yaml:4 fleet.checkin: expected a check-in fraction like "30%/min" in a search by agents (a fixed rate would not grow with the fleet), got "250/s"'],
    ],
    ['a check-in model in a search by rate', `${STACK}fleet:\n  checkin: 30%/min\nceiling: { start: 10/s, max: 50/s }\n`, ['bad.yaml:4 fleet.checkin: expected nothing in a search by rate (ceiling.start sets the rate), got "30%/min"']],
    ['a fleet smaller than the search', `${STACK}fleet:\n  agents: 2000\nceiling: { start: 1000, max: 5000 }\n`, ["bad.yaml:4 fleet.agents: expected at least ceiling.max (5000), the search's largest fleet, got 2000"]],
    ['a stage string with a bad check-in', `${STACK}stages:\n  - 30s:1000@fast\n`, ['bad.yaml:4 stages[0]: expected a check-in like "30%/min" or a rate like "250/s", got "fast"']],
    ['only empty stages', `${STACK}stages:\n  - 30s:0\n`, ['bad.yaml:3 stages: expected a stage with agents above 0, got none']],
    ['a threshold that is not a string', `${STACK}${STAGES}thresholds:\n  - 500\n`, ['bad.yaml:6 thresholds[0]: expected a threshold expression like "checkin.p99 < 500ms", got 500']],
    ['a plan for no fleet', `${STACK}${STAGES}plan:\n  agents: []\n`, ['bad.yaml:6 plan.agents: expected at least 1 item, got []']],
    ['a section of the wrong type', `stack: single\n${STAGES}`, ['bad.yaml:1 stack: expected a map, got "single"']],
    ['an empty file', '', ['bad.yaml:1 (top level): expected a map, got null']],
  ])('%s', (_what, text, expected) => {
    expect(problems(text)).toEqual(expected);
  });

  it('YAML syntax errors give the file and line', () => {
    expect(problems(`${STACK}stages:\n  - { duration: 30s, agents: 1000\nfleet: {}\n`)).toEqual([
      'bad.yaml:5 (syntax): expected valid YAML, got "Flow map in block collection must be sufficiently indented and end with a }" at column 1',
    ]);
  });

  it('a repeated key is a syntax error on its line', () => {
    expect(problems(`${STACK}${STAGES}timeLimit: 5m\ntimeLimit: 6m\n`)).toEqual(['bad.yaml:6 (syntax): expected valid YAML, got "Map keys must be unique" at column 1']);
  });

  it('several problems in one file give several lines, in file order', () => {
    const text = [
      'stack:',
      '  topology: split3',
      '  proxy: nginx',
      'fleet:',
      '  agents: lots',
      '  checkin: fast',
      'stages:',
      '  - { duration: 30s, agents: 1000, rate: 1%/min }',
      '  - { duration: forever, agents: 2000 }',
      'slo:',
      '  p99: 0ms',
      'timeLimit: 1h',
      'timelimit: 2h',
      '',
    ].join('\n');
    expect(problems(text, 'scenarios/many.yaml')).toEqual([
      'scenarios/many.yaml:3 stack.proxy: expected one of builtin, haproxy, got "nginx"',
      'scenarios/many.yaml:5 fleet.agents: expected a whole number from 1 to 2000000, got "lots"',
      'scenarios/many.yaml:6 fleet.checkin: expected "N/s" or "N%/min", got "fast"',
      'scenarios/many.yaml:9 stages[1].duration: expected a duration like "250ms", "60s", "5m" or "1h", got "forever"',
      'scenarios/many.yaml:11 slo.p99: expected a duration above 0, got "0ms"',
      'scenarios/many.yaml:13 timelimit: expected a known key (did you mean "timeLimit"?), got "timelimit"',
    ]);
  });

  it('throws one ValidationError the CLI prints line by line with exit 2', () => {
    try {
      parseScenario(`${STACK}${STAGES}fleet: { agents: 0, transport: grpc }\n`, 'x.yaml');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).exitCode).toBe(EXIT.badInput);
      expect((err as ValidationError).message).toBe(
        'x.yaml:5 fleet.agents: expected a whole number from 1 to 2000000, got 0\nx.yaml:5 fleet.transport: expected one of http, ws, got "grpc"',
      );
    }
  });
});

describe('shard: i/n', () => {
  const TARGET = 'stack:\n  target: http://127.0.0.1:9\nstages:\n  - { duration: 10s, agents: 100 }\n';
  it('runs shard i of n of a staged scenario against a shared target', () => {
    expect(parseScenario(`${TARGET}shard: 2/3\n`, 's.yaml').shard).toEqual({ index: 2, count: 3 });
    expect(parseScenario(TARGET, 's.yaml').shard).toEqual({ index: 0, count: 1 });
  });
  it('refuses a bad value and a started stack, each with its line and path; a search loads', () => {
    expect(problems(`${TARGET}shard: 3/3\n`)).toEqual(['bad.yaml:5 shard: expected "i/n": shard i of n, 0 ≤ i < n ≤ 1000, e.g. "0/3", got "3/3"']);
    expect(problems(`${TARGET}shard: half\n`)).toEqual(['bad.yaml:5 shard: expected "i/n": shard i of n, e.g. "0/3", got "half"']);
    expect(problems(`${STACK}stages:\n  - { duration: 10s, agents: 100 }\nshard: 1/2\n`)).toEqual([
      'bad.yaml:5 shard: expected a scenario with stack.target (the shards drive one shared stack), got "1/2"',
    ]);
    // A search across shards loads: its coordinator is `rmmscale run`'s --coordinator / --coordinator-url (checked there).
    expect(parseScenario('stack:\n  target: http://127.0.0.1:9\nceiling: { start: 100, max: 500 }\nshard: 1/2\n', 'ok.yaml').shard).toEqual({ index: 1, count: 2 });
  });
});
