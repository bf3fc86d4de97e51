import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, ValidationError } from '../../src/core/errors.js';
import { modelCeiling } from '../../src/stack/calibration.js';
import { PROFILES, resolveProfileSet, saturationRps } from '../../src/stack/profiles.js';
import { loadTopology, namedTopology, startPhase, topologyFromData } from '../../src/stack/topology.js';

const dir = mkdtempSync(join(tmpdir(), 'rmmscale-topology-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ValidationError');
}

describe('named topologies', () => {
  it.each([
    ['single', ['single:single:single']],
    ['split3', ['db:db:db', 'app:app:app', 'web-agent-1:web:web-agent', 'web-agent-2:web:web-agent', 'web-user-1:web:web-user', 'proxy:proxy:proxy']],
    ['split4', ['db:db:db', 'app:app:app', 'web-agent-1:web:web-agent', 'web-agent-2:web:web-agent', 'web-agent-3:web:web-agent', 'web-user-1:web:web-user', 'proxy:proxy:proxy']],
    ['relays', ['db:db:db', 'analytics:analytics:analytics', 'app:app:app', 'relay-1:relay:relay', 'relay-2:relay:relay', 'relay-3:relay:relay']],
    ['relays2', ['db:db:db', 'analytics:analytics:analytics', 'app:app:app', 'relay-1:relay:relay', 'relay-2:relay:relay']],
  ])('%s', (name, nodes) => {
    expect(namedTopology(name).nodes.map((n) => `${n.name}:${n.role}:${n.tier}`)).toEqual(nodes);
  });

  it.each(['split1', 'split17', 'relays0', 'relays17', 'mesh', ''])('%j is refused with the allowed names', (name) => {
    expect(() => namedTopology(name)).toThrow(InvalidArgumentError);
    expect(() => namedTopology(name)).toThrow(`TOPOLOGY: expected single, split2 … split16 (split3 is the article's layout), relays1 … relays16 (relays = relays3), or a .yaml/.json topology file, got ${JSON.stringify(name)}`);
  });

  it('start phases: db, then everything that needs it, then the proxy', () => {
    expect((['db', 'app', 'web', 'relay', 'single', 'proxy'] as const).map(startPhase)).toEqual([0, 1, 1, 1, 1, 2]);
  });
});

describe('topology files', () => {
  it('a valid YAML file: tiers default by role, profiles get their default queue', () => {
    const p = file(
      'mine.yaml',
      `name: two-agent-webs
nodes:
  - {name: db, role: db, dbProfile: {workers: 10, service: {dist: constant, meanMs: 5}}}
  - {name: app, role: app}
  - {name: w1, role: web, serves: agent}
  - {name: w2, role: web, profile: {workers: 2, queue: 5, service: {dist: lognormal, meanMs: 20, p99Ms: 80}}}
  - {name: users, role: web, serves: user}
  - {name: proxy, role: proxy}
`,
    );
    const t = loadTopology(p);
    expect(t.name).toBe('two-agent-webs');
    expect(t.nodes.map((n) => `${n.name}:${n.tier}`)).toEqual(['db:db', 'app:app', 'w1:web-agent', 'w2:web-agent', 'users:web-user', 'proxy:proxy']);
    expect(t.nodes[0].dbProfile).toEqual({ workers: 10, queue: 1000, service: { dist: 'constant', meanMs: 5 } });
    expect(t.nodes[3].profile).toEqual({ workers: 2, queue: 5, service: { dist: 'lognormal', meanMs: 20, p99Ms: 80 } });
  });

  it('lists every problem at once, each with its path', () => {
    const p = file(
      'bad.yaml',
      `nodes:
  - {name: Web, role: web, serves: everyone}
  - {name: db, role: database}
  - {name: w, role: web, profile: {workers: 0, service: {dist: exponential}}, color: red}
`,
    );
    expect(problems(() => loadTopology(p))).toEqual([
      `${p}: nodes[0].name: expected a value matching ^[a-z][a-z0-9-]{0,40}$, got "Web"`,
      `${p}: nodes[0].serves: expected one of agent, user, both, got "everyone"`,
      `${p}: nodes[1].role: expected one of single, web, app, db, proxy, relay, analytics, got "database"`,
      `${p}: nodes[2].color: is not a known field (allowed: name, role, tier, serves, profile, dbProfile, tls)`,
      `${p}: nodes[2].profile.workers: expected a number >= 1, got 0`,
      `${p}: nodes[2].profile.service.meanMs: is required`,
    ]);
  });

  it('checks what the schema cannot: duplicates, singletons, role-only fields, a proxy without agent webs', () => {
    const data = {
      nodes: [
        { name: 'db', role: 'db' },
        { name: 'db2', role: 'db' },
        { name: 'app', role: 'app', serves: 'agent' },
        { name: 'app', role: 'app' },
        { name: 'u', role: 'web', serves: 'user', tls: { certFile: 'c', keyFile: 'k' } },
        { name: 'w', role: 'web', serves: 'user', profile: { workers: 1, service: { dist: 'exponential', meanMs: 5, p99Ms: 9 } }, dbProfile: { workers: 1, service: { dist: 'lognormal', meanMs: 10, p99Ms: 5 } } },
        { name: 'proxy', role: 'proxy' },
      ],
    };
    expect(problems(() => topologyFromData(data, 't.yaml'))).toEqual([
      't.yaml: nodes[5].profile.service.p99Ms: only a lognormal service time takes p99Ms, got dist "exponential"',
      't.yaml: nodes[5].dbProfile.service: lognormal service time: p99Ms must be above meanMs and at most 149.7 ms, got 5',
      't.yaml: nodes[2].serves: only for role web, got role "app"',
      't.yaml: nodes[3].name: "app" is already the name of nodes[2]',
      't.yaml: nodes[4].tls: only for role relay, got role "web"',
      't.yaml: nodes[5].dbProfile: only for role db or single, got role "web"',
      't.yaml: nodes[1].role: at most one db node (it owns the database), nodes[0] is one already',
      't.yaml: nodes[6]: a proxy needs at least one web node in tier web-agent (its agent pool)',
    ]);
  });

  it('a file name without .yaml/.json is a topology name; unreadable and unparsable files say so', () => {
    expect(() => loadTopology('mine.txt')).toThrow('TOPOLOGY: expected single,');
    expect(() => loadTopology(join(dir, 'missing.yaml'))).toThrow(`TOPOLOGY: expected a readable topology file, or a topology name: `);
    expect(problems(() => loadTopology(file('broken.yaml', 'nodes: [ {name: a')))[0]).toMatch(/^.*broken\.yaml: not valid YAML\/JSON: /);
    expect(problems(() => loadTopology(file('empty.json', '{}')))).toEqual([`${join(dir, 'empty.json')}: nodes: is required`]);
  });
});

describe('profile sets', () => {
  it('built-ins by name; a file validated like a topology', () => {
    expect(resolveProfileSet('automate')).toBe(PROFILES.automate);
    const p = file('p.json', JSON.stringify({ name: 'mine', tiers: { 'web-agent': { workers: 4, service: { dist: 'exponential', meanMs: 20 } } }, db: { workers: 2, queue: 9, service: { dist: 'constant', meanMs: 3 } } }));
    expect(resolveProfileSet(p)).toEqual({ name: 'mine', tiers: { 'web-agent': { workers: 4, queue: 1000, service: { dist: 'exponential', meanMs: 20 } } }, db: { workers: 2, queue: 9, service: { dist: 'constant', meanMs: 3 } } });
    const bad = file('bad.yaml', 'tiers:\n  Web: {workers: 1.5, service: {dist: gamma, meanMs: -1}}\n');
    expect(problems(() => resolveProfileSet(bad))).toEqual([
      `${bad}: tiers.Web: the name must match ^[a-z][a-z0-9-]*$, got "Web"`,
      `${bad}: tiers.Web.workers: expected integer, got 1.5`,
      `${bad}: tiers.Web.service.dist: expected one of constant, exponential, lognormal, got "gamma"`,
      `${bad}: tiers.Web.service.meanMs: expected a number > 0, got -1`,
    ]);
    expect(() => resolveProfileSet('fast')).toThrow('--profile: expected none, automate, or a .yaml/.json profile file, got "fast"');
  });
});

describe('the automate calibration (Erlang C, check-in p99 ≤ 1 s, 30%/min per agent)', () => {
  const at = (webTier: string, webNodes: number) => modelCeiling(PROFILES.automate, { webNodes, webTier, checkinsPerAgentPerSec: 0.3 / 60, extraDbQueriesPerSec: 5, sloP99Ms: 1000 });

  it('saturation rates: a web node ≈ 110 requests/s (with its query), the database ≈ 266 queries/s', () => {
    const web = PROFILES.automate.tiers['web-agent']!;
    expect((web.workers * 1000) / (web.service.meanMs + PROFILES.automate.db!.service.meanMs)).toBeCloseTo(110.34, 2);
    expect(saturationRps(PROFILES.automate.db!)).toBeCloseTo(265.96, 2);
  });

  it('a single server tops out near 20,000 agents, web-bound', () => {
    const c = at('single', 1);
    expect(Math.round(c.agents)).toBe(20_883);
    expect(c.limitedBy).toBe('web');
  });

  it('a second agent web node adds about 20,000 agents', () => {
    const c = at('web-agent', 2);
    expect(Math.round(c.agents)).toBe(40_790);
    expect(c.limitedBy).toBe('web');
  });

  it('past that the database limits the stack near 50,000 agents', () => {
    expect(Math.round(at('web-agent', 3).agents)).toBe(48_586);
    expect(at('web-agent', 3).limitedBy).toBe('db');
    expect(Math.round(at('web-agent', 8).agents)).toBe(50_039);
    expect(at('web-agent', 8).limitedBy).toBe('db');
  });
});
