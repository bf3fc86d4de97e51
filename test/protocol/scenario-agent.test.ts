import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core/errors.js';
import { parseScenario } from '../../src/scenario/load.js';
import { runCli } from '../helpers/spawn-cli.js';

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rmmscale-agent-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const HEAD = 'stack: { target: http://127.0.0.1:9 }\nstages: [{ duration: 10s, agents: 10 }]\n';

function problems(text: string, file = join(dir, 's.yaml')): string[] {
  try {
    parseScenario(text, file);
  } catch (err) {
    if (err instanceof ValidationError) return err.problems.map((l) => l.replace(file, 's.yaml').replace(dir, 'DIR'));
    throw err;
  }
  return [];
}

describe('a scenario\'s agent:', () => {
  it('a protocol file relative to the scenario, with agentVars (redacted in the definition)', () => {
    const s = parseScenario(`${HEAD}agent: ../../protocols/osquery-tls.yaml\nagentVars: { enroll_secret: s3cret }\n`, resolve('test/protocol/s.yaml'));
    expect(s.agent?.name).toBe('osquery-tls');
    expect(s.agent?.values).toEqual({ enroll_secret: 's3cret' });
    expect((s.definition as { agentVars: unknown }).agentVars).toEqual({ enroll_secret: '(redacted)' });
  });

  it('an inline protocol: its problems at their own lines of the scenario', () => {
    const text = `${HEAD}agent:\n  name: inline\n  flows:\n    - name: f\n      steps:\n        - name: s\n          path: /x\n          body: '{{vars.nope}}'\n`;
    expect(problems(text)).toEqual(['s.yaml:10 agent.flows[0].steps[0].body: expected a declared variable (none declared here), got "{{vars.nope}}"']);
    const ok = parseScenario(text.replace('{{vars.nope}}', '{{agent.id}}'), join(dir, 's.yaml'));
    expect(ok.agent?.file).toBeNull();
  });

  it('a protocol file with problems, a missing file, agentVars without agent', () => {
    writeFileSync(join(dir, 'p.yaml'), 'name: p\nvars: { k: {} }\nflows:\n  - name: f\n    steps: [{ name: s, path: /x }]\n');
    expect(problems(`${HEAD}agent: p.yaml\n`)).toEqual([`s.yaml:3 agent: ${join(dir, 'p.yaml')}:2 vars.k: expected a value from --var k=VALUE (it has no default), got nothing`.replace(dir, 'DIR')]);
    expect(problems(`${HEAD}agent: nope.yaml\n`)).toEqual([`s.yaml:3 agent: expected a readable protocol file, got "nope.yaml" (DIR/nope.yaml does not exist)`]);
    expect(problems(`${HEAD}agentVars: { k: v }\n`)).toEqual(['s.yaml:3 agentVars: expected agentVars only with agent: (a protocol file or an inline protocol), got {"k":"v"}']);
  });
});

describe('rmmscale swarm --protocol', () => {
  it('a bad protocol file: its lines, exit 2, nothing sent', async () => {
    writeFileSync(join(dir, 'p.yaml'), 'name: p\nflows:\n  - name: f\n    steps: [{ name: s, path: /x, body: "{{seq}" }]\n');
    const r = await runCli(['swarm', '--target', 'http://127.0.0.1:9', '--protocol', join(dir, 'p.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`rmmscale: ${join(dir, 'p.yaml')}:4 flows[0].steps[0].body: expected "}}" to close "{{" at character 1, got the end of the template`);
  });

  it('--var without --protocol, and for an undeclared variable', async () => {
    const a = await runCli(['swarm', '--target', 'http://127.0.0.1:9', '--var', 'x=1']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('--var: applies with --protocol only, got "x=1" without one');
    const b = await runCli(['swarm', '--target', 'http://127.0.0.1:9', '--protocol', 'protocols/rmmscale.yaml', '--var', 'x=1']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('--var: expected NAME=VALUE with NAME a variable the protocol declares (it declares none), got "x=1"');
  });
});

describe('a scenario\'s agent: against fleet.transport', () => {
  it('a tunnel protocol needs transport ws, a flows protocol transport http', () => {
    const head = 'stack: { target: ws://127.0.0.1:9/t }\nstages: [{ duration: 10s, agents: 10 }]\n';
    expect(() => parseScenario(`${head}fleet: { transport: ws }\nagent: ../../protocols/rmmscale-tunnel.yaml\n`, resolve('test/protocol/s.yaml'))).not.toThrow();
    expect(() => parseScenario(`${head}fleet: { transport: ws }\nagent: ../../protocols/rmmscale.yaml\n`, resolve('test/protocol/s.yaml'))).toThrow(
      `${resolve('test/protocol/s.yaml')}:4 agent: expected a protocol with tunnel: for fleet.transport ws, got rmmscale, which has flows`,
    );
  });
});
