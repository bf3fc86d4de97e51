import { describe, expect, it } from 'vitest';
import { deriveAgent } from '../../src/core/identity.js';
import { Rng } from '../../src/core/random.js';
import { AgentVarStore } from '../../src/swarm/protocol/agent-vars.js';
import { fill, records } from '../../src/swarm/protocol/generators.js';
import { compileJsonPath, readJsonPath } from '../../src/swarm/protocol/json-path.js';
import { compileTemplate, RenderState, TemplateError, type Escape, type TemplateScope } from '../../src/swarm/protocol/template.js';

const agent = deriveAgent('tpl-seed', 'tpl-secret', 7);
const scope: TemplateScope = { constants: new Map([['enroll_secret', 's3"cret']]), agentVars: ['node_key'], hasPrevious: true };

function state(prev?: unknown): RenderState {
  const st = new RenderState();
  st.agent = agent;
  st.slot = 1;
  st.store = new AgentVarStore(2, ['node_key']);
  st.store.set(0, 0, 'other');
  st.store.set(1, 0, 'nk-1\n"x"');
  st.seq = 42;
  st.nowMs = 1_765_000_123_456.7;
  st.rng = new Rng('tpl');
  st.prev = prev;
  return st;
}

const render = (src: string, esc: Escape = 'json', prev?: unknown): string => compileTemplate(src, esc, scope).render(state(prev));

describe('template compiler', () => {
  it('identity fields, counters and the clock', () => {
    expect(render('{{agent.id}}|{{ agent.hostname }}|{{agent.os}}|{{agent.index}}|{{seq}}|{{now}}|{{now.s}}')).toBe(
      `${agent.id}|${agent.hostname}|${agent.os}|7|42|1765000123456|1765000123`,
    );
    expect(render('{{agent.token}} {{agent.client}} {{agent.version}}')).toBe(`${agent.token} ${agent.client} ${agent.agentVersion}`);
  });

  it('declared variables fold into static text, escaped where the template sits', () => {
    const t = compileTemplate('{"s":"{{vars.enroll_secret}}"}', 'json', scope);
    expect(t.isStatic).toBe(true);
    expect(t.render(state())).toBe('{"s":"s3\\"cret"}');
    expect(render('/x?s={{vars.enroll_secret}}', 'url')).toBe('/x?s=s3%22cret');
    expect(render('{{vars.enroll_secret}}', 'raw')).toBe('s3"cret');
  });

  it('enrolment variables come from the compact store, per agent slot', () => {
    expect(render('{"node_key":"{{vars.node_key}}"}')).toBe('{"node_key":"nk-1\\n\\"x\\""}');
    expect(render('{{vars.node_key}}', 'raw')).toBe('nk-1\n"x"');
  });

  it('rand draws from the worker rng', () => {
    const expected = new Rng('tpl');
    expect(render('{{rand 100}},{{rand 7}}')).toBe(`${expected.int(100)},${expected.int(7)}`);
  });

  it('prev reads the previous response by JSON path: strings escaped, other values as JSON', () => {
    const prev = { node_key: 'k"1', n: 3, list: [1, { a: 'b' }], obj: { x: null } };
    expect(render('{{prev $.node_key}}|{{prev $.n}}|{{prev $.list[1]}}|{{prev $.obj}}|{{prev $.missing}}', 'json', prev)).toBe('k\\"1|3|{"a":"b"}|{"x":null}|');
    expect(render('{{prev $.list}}', 'raw', prev)).toBe('[1,{"a":"b"}]');
  });

  it('#each walks a map (osquery distributed/read → write) and a list, joined with commas', () => {
    const prev = { queries: { q1: 'select 1', 'q"2': 'select 2' }, commands: [{ id: 'c1', kind: 'run' }, { id: 'c2', kind: 'reboot' }] };
    expect(render('{"queries":{ {{#each $.queries}}"{{key}}":[]{{/each}} },"statuses":{ {{#each $.queries}}"{{key}}":0{{/each}} }}', 'json', prev)).toBe(
      '{"queries":{ "q1":[],"q\\"2":[] },"statuses":{ "q1":0,"q\\"2":0 }}',
    );
    expect(render('[{{#each $.commands}}{"id":"{{item.id}}","i":{{key}},"k":{{item}}}{{/each}}]', 'json', prev)).toBe(
      '[{"id":"c1","i":0,"k":{"id":"c1","kind":"run"}},{"id":"c2","i":1,"k":{"id":"c2","kind":"reboot"}}]',
    );
    expect(render('[{{#each $.nothing}}x{{/each}}]', 'json', prev)).toBe('[]');
  });

  it('size generators: exact byte counts, valid JSON', () => {
    expect(fill(40)).toBe('abcdefghijklmnopqrstuvwxyz0123456789abcd');
    expect(render('{{fill 1kb}}').length).toBe(1024);
    for (const n of [2, 3, 50, 117, 118, 4096, 40 * 1024]) {
      const r = records(n);
      expect(Buffer.byteLength(r)).toBe(n);
      expect(Array.isArray(JSON.parse(r))).toBe(true);
    }
    expect(records(2)).toBe('[]');
    expect(records(10)).toBe('[        ]');
    // 10 rows of 99 bytes, 30 of 101, their commas and brackets: 4061; the last row takes the other 35.
    expect(JSON.parse(records(4096)).length).toBe(40);
    const t = compileTemplate('{"data":{{records 4kb}}}', 'json', scope);
    expect(t.isStatic).toBe(true);
    expect(Buffer.byteLength(t.render(state()))).toBe(4096 + 9);
  });

  it('rejects bad templates with one "expected …, got …" line', () => {
    const detail = (src: string, s: TemplateScope = scope): string => {
      try {
        compileTemplate(src, 'json', s);
      } catch (err) {
        if (err instanceof TemplateError) return err.detail;
        throw err;
      }
      return 'compiled';
    };
    expect(detail('{{vars.nodekey}}')).toBe('expected a declared variable (vars.enroll_secret, vars.node_key), got "{{vars.nodekey}}"');
    expect(detail('{{agent.name}}')).toMatch(/^expected a template expression \(agent\.id, .*\), got "\{\{agent\.name\}\}"$/);
    expect(detail('{{prev node_key}}')).toBe('expected a JSON path like $.node_key or $.queries[0] (it must start with "$"), got "{{prev node_key}}"');
    expect(detail('{{prev $.a[x]}}')).toBe('expected a JSON path like $.node_key or $.queries[0] (expected an index or a quoted name inside [], got [x]), got "{{prev $.a[x]}}"');
    expect(detail('{{prev $.a}}', { ...scope, hasPrevious: false })).toBe('expected a step after another (the first step has no previous response), got "{{prev $.a}}"');
    expect(detail('{{#each $.q}}x')).toBe('expected {{/each}} to close {{#each}}, got the end of the template');
    expect(detail('{{key}}')).toBe('expected {{key}} inside {{#each PATH}}…{{/each}}, got "{{key}}"');
    expect(detail('{{fill 20gb}}')).toBe('expected {{fill SIZE}} with SIZE like 512, 4kb or 1mb (0 to 16mb), got "{{fill 20gb}}"');
    expect(detail('{{rand 0}}')).toBe('expected {{rand N}} with N a whole number from 1 to 2147483648, got "{{rand 0}}"');
    expect(detail('abc {{seq')).toBe('expected "}}" to close "{{" at character 5, got the end of the template');
  });
});

describe('JSON paths', () => {
  it('reads names, indexes and quoted names; missing is undefined', () => {
    const doc = { a: { 'x-y': [10, { b: 'c' }] } };
    expect(readJsonPath(doc, compileJsonPath('$.a["x-y"][1].b'))).toBe('c');
    expect(readJsonPath(doc, compileJsonPath('$.a.x-y[0]'))).toBe(10);
    expect(readJsonPath(doc, compileJsonPath('$'))).toBe(doc);
    expect(readJsonPath(doc, compileJsonPath('$.a.nope.b'))).toBeUndefined();
    expect(readJsonPath(doc, compileJsonPath('$.a[0]'))).toBeUndefined();
    expect(() => compileJsonPath('$.')).toThrow('expected a name after "." at character 2');
  });
});

describe('AgentVarStore', () => {
  it('keeps values per slot and variable in one buffer, growing it as needed', () => {
    const s = new AgentVarStore(3, ['a', 'b'], 8);
    s.set(2, 1, 'x'.repeat(100));
    s.set(0, 0, 'héllo');
    s.set(2, 0, '');
    expect(s.get(2, 1)).toBe('x'.repeat(100));
    expect(s.get(0, 0)).toBe('héllo');
    expect(s.get(2, 0)).toBe('');
    expect(s.usedBytes).toBe(106);
  });
});
