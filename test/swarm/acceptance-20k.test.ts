import { afterEach, describe, expect, it } from 'vitest';
import { resolveSwarmConfig } from '../../src/swarm/config.js';
import { runSwarm } from '../../src/swarm/coordinator.js';
import { startAgentServer, type TestAgentServer } from '../helpers/agent-server.js';

let server: TestAgentServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

describe('acceptance: the article fleet', () => {
  it('20,000 agents at 30%/min for 60 s: the server counts 6,000 check-ins ± 2%, and the swarm reports the same', async () => {
    server = await startAgentServer('acceptance-secret');
    const cfg = resolveSwarmConfig({ target: server.url, agents: 20_000, checkin: '30%/min', duration: '60s', secret: 'acceptance-secret', seed: 'acceptance' });
    const { result } = await runSwarm({ config: cfg });
    const served = server.counts.get('/agent/v1/checkin') ?? 0;
    expect(server.rejected).toBe(0);
    expect(Math.abs(served - 6000) / 6000).toBeLessThanOrEqual(0.02);
    expect(result.ops.checkin.completed).toBe(served);
    expect(result.summary.failed).toBe(0);
    expect(result.summary.achievedRatePerSec).toBeGreaterThan(98);
    expect(result.summary.achievedRatePerSec).toBeLessThan(102);
    expect(server.agents.size).toBe(served); // 60 s of a 200 s period: each agent at most once
  }, 120_000);
});
