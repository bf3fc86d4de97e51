import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadScenario } from '../../src/scenario/load.js';
import type { RunResult } from '../../src/run/result-types.js';
import { resultProblems } from '../../src/run/result-file.js';
import { runScenario } from '../../src/run/run.js';
import { deriveAgent } from '../../src/core/identity.js';
import { relayFor } from '../../src/swarm/transports/ws-tunnels.js';
import { alive } from '../helpers/fork-node.js';

/**
 * Faults on a real split3 stack (each node its own process): the scenario's faults run at their
 * times, the result lists them, a restarted node comes back as a new process on its port, and a
 * node that dies with no fault to explain it ends the run as incomplete.
 */

const dir = mkdtempSync(join(tmpdir(), 'rmmscale-faults-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function scenario(name: string, faults: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `name: ${name}`,
      'stack:',
      '  topology: split3',
      '  profile: none',
      'fleet:',
      '  agents: 300',
      '  checkin: 40/s',
      '  connection: keepalive',
      '  timeout: 5s',
      '  secret: faults-test-secret',
      'stages:',
      '  - { duration: 14s, agents: 300 }',
      'slo:',
      '  p99: 5s',
      '  errors: 50%',
      '  minAchieved: 10%',
      faults,
      'timeLimit: 2m',
      '',
    ].join('\n'),
  );
  return file;
}

describe('faults in a run (split3, real processes)', () => {
  it('kill, restart, stop and slow run at their times; the run completes and lists each', async () => {
    const file = scenario('faults-all', 'faults:\n  - { at: 2s, kill: web-agent-1 }\n  - { at: 4s, restart: web-agent-1 }\n  - { at: 7s, stop: web-user-1, for: 1s }\n  - { at: 9s, slow: db, by: 400ms, for: 3s }');
    const out = join(dir, 'out-all');
    const pids = new Map<string, number>();
    const { result, resultFile } = await runScenario({
      scenario: loadScenario(file),
      outDir: out,
      allowRemote: false,
      onEvent: (e) => {
        if (e.type === 'stack-healthy') for (const n of e.nodes) pids.set(n.name, n.pid);
      },
    });
    expect(result.error).toBeNull();
    expect(result.complete).toBe(true);
    expect(result.faults.map((f) => [f.action, f.node, f.at, f.outcome])).toEqual([
      ['kill', 'web-agent-1', 2, 'done'],
      ['restart', 'web-agent-1', 4, 'done'],
      ['stop', 'web-user-1', 7, 'done'],
      ['slow', 'db', 9, 'done'],
    ]);
    // In the order written, each after the measured stage began.
    const fired = result.faults.map((f) => f.firedAtSec!);
    expect([...fired].sort((a, b) => a - b)).toEqual(fired);
    for (const f of result.faults) expect(f.errorsSec).toBeGreaterThanOrEqual(0);
    // The restart is a new process on the same port.
    const web1 = result.stack.nodes.find((n) => n.name === 'web-agent-1')!;
    expect(web1.pid).not.toBe(pids.get('web-agent-1'));
    expect(alive(pids.get('web-agent-1')!)).toBe(false);
    // The slow db: every query waited 400 ms for 3 s of the 14, so the check-ins' p99 is above it.
    expect(result.windows[0]!.client.ops.checkin!.latency.p99Us).toBeGreaterThanOrEqual(400_000);
    // The file says the same, and no node is left running.
    expect((JSON.parse(readFileSync(resultFile, 'utf8')) as RunResult).faults).toEqual(result.faults);
    for (const n of result.stack.nodes) expect(alive(n.pid)).toBe(false);
  }, 120_000);

  it('a node that dies with no fault to explain it ends the run, incomplete', async () => {
    const file = scenario('faults-none', '');
    const pids = new Map<string, number>();
    const { result } = await runScenario({
      scenario: loadScenario(file),
      outDir: join(dir, 'out-none'),
      allowRemote: false,
      onEvent: (e) => {
        if (e.type === 'stack-healthy') for (const n of e.nodes) pids.set(n.name, n.pid);
        if (e.type === 'window-start') setTimeout(() => process.kill(pids.get('web-user-1')!, 'SIGKILL'), 2000);
      },
    });
    expect(result.complete).toBe(false);
    expect(result.error).toBe('node web-user-1 exited during the run (SIGKILL) and no fault named it; nothing measured after that is claimed');
    expect(result.summary.ceilingAgents).toBeNull();
    for (const pid of pids.values()) expect(alive(pid)).toBe(false);
  }, 120_000);

  // One relays2 run for the tunnel faults (a stack start and a warm-up fewer than one run each):
  // a disconnect of a share of the open tunnels first, then, once those are back, a relay kill and
  // its restart.
  it('a disconnect drops that share of the tunnels and they reconnect; a relay killed then restarted: its agents fail over and come home', async () => {
    const file = join(dir, 'faults-relay.yaml');
    writeFileSync(
      file,
      [
        'name: faults-relay',
        'stack:',
        '  topology: relays2',
        '  profile: none',
        'fleet:',
        '  agents: 200',
        '  transport: ws',
        '  checkin: 60%/min',
        '  secret: faults-test-secret',
        '  seed: faults-relay',
        'stages:',
        '  - { duration: 3s, agents: 200 }',
        '  - { duration: 29s, agents: 200 }',
        'slo:',
        '  p99: 5s',
        '  errors: 50%',
        '  minAchieved: 10%',
        'faults:',
        '  - { at: 1s, stage: 2, disconnect: 25% }',
        '  - { at: 5s, stage: 2, kill: relay-1 }',
        '  - { at: 11s, stage: 2, restart: relay-1 }',
        'timeLimit: 2m',
        '',
      ].join('\n'),
    );
    const homeA = Array.from({ length: 200 }, (_, i) => deriveAgent('faults-relay', 'faults-test-secret', i)).filter((a) => relayFor(a.id, 2) === 0).length;
    const { result } = await runScenario({ scenario: loadScenario(file), outDir: join(dir, 'out-relay'), allowRemote: false });
    expect(result.complete).toBe(true);
    const [disconnect, kill, restart] = result.faults;
    // The disconnect dropped a quarter of the 200 open tunnels; each came back on its home relay.
    expect(disconnect).toMatchObject({ action: 'disconnect', at: 4, stage: 2, fraction: 0.25, outcome: 'done', dropped: 50, reconnect: { agents: 50, returnedHome: 0 } });
    expect(disconnect!.reconnect!.t99Ms).not.toBeNull();
    // One reconnect measured per drop: the disconnect's and the kill's.
    expect(result.windows[1]!.client.ops['ws-reconnect']?.completed).toBe(50 + homeA);
    // The kill dropped exactly relay-1's agents; all came back on the default policy (t99 set).
    expect(kill).toMatchObject({ action: 'kill', node: 'relay-1', outcome: 'done', reconnect: { agents: homeA, returnedHome: 0 } });
    expect(kill!.reconnect!.t99Ms).not.toBeNull();
    expect(kill!.reconnect!.peakConnectsPerSec).toBeGreaterThan(0);
    expect(kill!.relayPeakConnectsPerSec).toBeGreaterThan(0);
    expect(kill!.reconnectCurve!.back.at(-1)).toBe(homeA);
    // The restart dropped nobody (the relay was down) and brought every one of them home.
    expect(restart).toMatchObject({ action: 'restart', node: 'relay-1', outcome: 'done', reconnect: { agents: 0, t99Ms: null, returnedHome: homeA } });
    expect(result.timeline['relay-1']!.some((p) => (p.tunnelOpensPerSec ?? 0) > 0)).toBe(true);
    // As written, the file passes the schema.
    expect(resultProblems(JSON.parse(readFileSync(join(dir, 'out-relay', 'result.json'), 'utf8')))).toEqual([]);
  }, 120_000);
});
