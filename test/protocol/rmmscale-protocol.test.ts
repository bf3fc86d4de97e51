import { afterEach, describe, expect, it } from 'vitest';
import { deriveAgent, userToken } from '../../src/core/identity.js';
import { startStack, type RunningStack } from '../../src/stack/launcher.js';
import { namedTopology } from '../../src/stack/topology.js';
import { resolveSwarmConfig } from '../../src/swarm/config.js';
import { runSwarm } from '../../src/swarm/coordinator.js';

const SECRET = 'protocol-stack-secret';
const SEED = 'protocol-stack';
let stack: RunningStack | null = null;

afterEach(async () => {
  await stack?.stop();
  stack = null;
});

describe('protocols/rmmscale.yaml: today\'s agent API as a protocol file', () => {
  it('drives the built-in stack: check-ins accepted, agents recorded, queued commands answered', async () => {
    stack = await startStack(namedTopology('single'), { secret: SECRET });
    const input = { target: stack.entryUrl, agents: 20, checkinInterval: '1s', duration: '2s', workers: 1, seed: SEED, secret: SECRET, protocol: 'protocols/rmmscale.yaml' };
    const first = await runSwarm({ config: resolveSwarmConfig(input) });
    expect(first.result.summary.failed).toBe(0);
    // 20 agents due twice each; a fire that finds its agent still busy is dropped, never queued.
    expect(first.result.ops.checkin.completed + first.result.summary.dropped).toBe(40);
    const asUser = { authorization: `Bearer ${userToken(SECRET, 'alice')}`, 'content-type': 'application/json' };
    const listed = (await (await fetch(`${stack.entryUrl}/api/v1/agents?limit=1000`, { headers: asUser })).json()) as { agents: Array<{ id: string; hostname: string }> };
    expect(listed.agents.length).toBe(20);
    const a0 = deriveAgent(SEED, SECRET, 0);
    expect(listed.agents.find((a) => a.id === a0.id)?.hostname).toBe(a0.hostname);

    // Two commands for agent 0: its next check-in returns them, and the dependent step posts both results.
    for (const kind of ['run-script', 'reboot']) {
      const r = await fetch(`${stack.entryUrl}/api/v1/agents/${a0.id}/commands`, { method: 'POST', headers: asUser, body: JSON.stringify({ kind, args: {} }) });
      expect(r.status).toBeLessThan(300);
    }
    const second = await runSwarm({ config: resolveSwarmConfig(input) });
    expect(second.result.summary.failed).toBe(0);
    expect(second.result.ops['command-result'].completed).toBe(1);
  });
});
