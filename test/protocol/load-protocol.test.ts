import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core/errors.js';
import { loadProtocolFile } from '../../src/swarm/protocol/load-protocol.js';

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rmmscale-protocol-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const GOOD = `name: p
vars:
  secret: {}
enroll:
  - name: enroll
    path: /enroll
    body: '{"s":"{{vars.secret}}"}'
    extract: { key: $.key }
flows:
  - name: poll
    steps:
      - name: read
        path: /read
        body: '{"k":"{{vars.key}}"}'
      - name: write
        when: $.queries
        path: /write
        body: '{ {{#each $.queries}}"{{key}}":0{{/each}} }'
`;

function problems(text: string, vars: string[] = ['secret=x']): string[] {
  const file = join(dir, 'p.yaml');
  writeFileSync(file, text);
  try {
    loadProtocolFile(file, vars);
  } catch (err) {
    if (err instanceof ValidationError) return err.problems.map((l) => l.replace(file, 'p.yaml'));
    throw err;
  }
  return [];
}

/** GOOD with one line replaced. */
const edit = (from: string, to: string): string => {
  expect(GOOD).toContain(from);
  return GOOD.replace(from, to);
};

describe('protocol files', () => {
  it('a good file loads, with its variables resolved', () => {
    expect(problems(GOOD)).toEqual([]);
    const file = join(dir, 'p.yaml');
    const spec = loadProtocolFile(file, ['secret=s3']);
    expect(spec.values).toEqual({ secret: 's3' });
    expect(spec.name).toBe('p');
  });

  it.each([
    ['an unknown variable', edit('{{vars.key}}', '{{vars.kee}}'), ['p.yaml:14 flows[0].steps[0].body: expected a declared variable (vars.secret, vars.key), got "{{vars.kee}}"']],
    ['a bad JSON path in extract', edit('{ key: $.key }', '{ key: "$.key[" }'), ['p.yaml:8 enroll[0].extract.key: expected a JSON path like $.node_key or $.queries[0] ("[" at character 6 is not closed), got "$.key["']],
    ['a JSON path without $', edit('when: $.queries', 'when: queries'), ['p.yaml:16 flows[0].steps[1].when: expected a JSON path like $.node_key or $.queries[0], got "queries"']],
    ['a missing step name', edit('      - name: read\n', '      - nam: read\n'), ['p.yaml:12 flows[0].steps[0].name: expected an operation name of letters, digits, \'_\' and \'-\', starting with a letter (it names the step\'s histogram: NAME.p99), got nothing', 'p.yaml:12 flows[0].steps[0].nam: expected a known key (did you mean "name"?), got "nam"']],
    ['a duplicate step name', edit('name: write', 'name: read'), ['p.yaml:15 flows[0].steps[1].name: expected a step name not used before (flows[0].steps[0] has it), got "read"']],
    ['a reserved operation name', edit('name: write', 'name: latency'), ['p.yaml:15 flows[0].steps[1].name: expected an operation name other than latency, errors, throughput, ceiling, tier, node, generator (the gate keeps those), got "latency"']],
    ['an unknown template expression', edit('{{vars.key}}', '{{agent.name}}'), ['p.yaml:14 flows[0].steps[0].body: expected a template expression (agent.id, agent.hostname, agent.os, agent.index, agent.token, agent.client, agent.version, vars.NAME, seq, now, now.s, rand N, fill SIZE, records SIZE, prev PATH, #each PATH … /each), got "{{agent.name}}"']],
    ['an unclosed each', edit('{{/each}}', ''), ['p.yaml:18 flows[0].steps[1].body: expected {{/each}} to close {{#each}}, got the end of the template']],
    ['when on a first step', edit('      - name: read\n', '      - name: read\n        when: $.x\n'), ['p.yaml:13 flows[0].steps[0].when: expected "when" only on a step after another (the first step has no previous response), got "$.x"']],
    ['prev in the first enrolment step', edit('{{vars.secret}}', '{{prev $.x}}'), ['p.yaml:7 enroll[0].body: expected a step after another (the first step has no previous response), got "{{prev $.x}}"']],
    ['a bad method', edit('        path: /read\n', '        method: FETCH\n        path: /read\n'), ['p.yaml:13 flows[0].steps[0].method: expected one of GET, POST, PUT, PATCH, DELETE, got "FETCH"']],
    ['a path without a slash', edit('path: /write', 'path: write'), ['p.yaml:17 flows[0].steps[1].path: expected a path starting with "/" (templates allowed), got "write"']],
    ['neither flows nor tunnel', 'name: p\nvars: { secret: {} }\n', ['p.yaml:1 flows: expected flows (HTTP agents) or tunnel (WebSocket agents), got neither']],
    ['both flows and tunnel', `${GOOD}tunnel:\n  frame: { name: tel, send: x }\n`, ['p.yaml:4 enroll: expected enroll only with flows (a tunnel protocol connects with its headers), got enroll beside tunnel', 'p.yaml:19 tunnel: expected flows (HTTP agents) or tunnel (WebSocket agents), got both']],
    ['a tunnel reply with a bad match', 'name: t\nvars: { secret: {} }\ntunnel:\n  frame: { name: tel, send: x, reply: { path: t, equals: ack } }\n', ['p.yaml:4 tunnel.frame.reply.path: expected a JSON path like $.node_key or $.queries[0], got "t"']],
    ['prev in a periodic frame', 'name: t\nvars: { secret: {} }\ntunnel:\n  frame: { name: tel, send: "{{prev $.x}}" }\n', ['p.yaml:4 tunnel.frame.send: expected a step after another (the first step has no previous response), got "{{prev $.x}}"']],
    ['every flow weighted 0', edit('  - name: poll\n', '  - name: poll\n    weight: 0\n'), ['p.yaml:9 flows: expected a flow with a weight above 0, got weights [0]']],
    ['extract in a flow', edit('        when: $.queries\n', '        when: $.queries\n        extract: { k2: $.k }\n'), ['p.yaml:17 flows[0].steps[1].extract.k2: expected extract only in enroll steps (flows read the previous response with {{prev PATH}}), got "k2"']],
    ['an extract that shadows a declared variable', edit('{ key: $.key }', '{ secret: $.key }'), ['p.yaml:8 enroll[0].extract.secret: expected a variable name not declared or extracted before, got "secret"', 'p.yaml:14 flows[0].steps[0].body: expected a declared variable (vars.secret), got "{{vars.key}}"']],
    ['a status out of range', edit('        path: /write\n', '        path: /write\n        check: { status: 700 }\n'), ['p.yaml:18 flows[0].steps[1].check.status: expected an HTTP status from 100 to 599, or a list of them, got 700']],
    ['a signing module that does not exist', `sign: ./nope.mjs\n${GOOD}`, ['p.yaml:1 sign: expected a JavaScript module file (relative to the protocol file), got "./nope.mjs" (no such file)']],
    ['a bad size', edit("'{ {{#each", "'{{fill 1tb}}{ {{#each"), ['p.yaml:18 flows[0].steps[1].body: expected {{fill SIZE}} with SIZE like 512, 4kb or 1mb (0 to 16mb), got "{{fill 1tb}}"']],
    ['invalid YAML', 'name: [p\n', ['p.yaml:2 (syntax): expected valid YAML, got "Flow sequence in block collection must be sufficiently indented and end with a ]"']],
  ])('%s', (_what, text, expected) => {
    expect(problems(text)).toEqual(expected);
  });

  it('a declared variable without a value, and --var for an undeclared one', () => {
    expect(problems(GOOD, [])).toEqual(['p.yaml:3 vars.secret: expected a value from --var secret=VALUE (it has no default), got nothing']);
    expect(problems(GOOD, ['secret=a', 'other=b'])).toEqual(['--var: expected NAME=VALUE with NAME a variable the protocol declares (secret), got "other=b"']);
    expect(() => loadProtocolFile(join(dir, 'p.yaml'), ['novalue'])).toThrow('--var: expected NAME=VALUE, e.g. --var enroll_secret=s3cret, got "novalue"');
  });

  it('the shipped protocols load', () => {
    expect(() => loadProtocolFile('protocols/rmmscale.yaml')).not.toThrow();
    expect(() => loadProtocolFile('protocols/osquery-tls.yaml', ['enroll_secret=x'])).not.toThrow();
    expect(loadProtocolFile('protocols/rmmscale-tunnel.yaml').doc.tunnel?.frame.name).toBe('ws-rtt');
    expect(loadProtocolFile('protocols/rest-token.yaml', ['registration_key=k']).values).toEqual({ registration_key: 'k', api_version: 'v1' });
  });
});
