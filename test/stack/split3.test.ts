import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveAgent, deriveKey, userToken } from '../../src/core/identity.js';
import { resolveSwarmConfig } from '../../src/swarm/config.js';
import { runSwarm } from '../../src/swarm/coordinator.js';
import { startStack, type RunningStack } from '../../src/stack/launcher.js';
import { namedTopology } from '../../src/stack/topology.js';

const SECRET = 'split-secret';
let stack: RunningStack;
const user = { authorization: `Bearer ${userToken(SECRET, 'ops')}` };

beforeAll(async () => {
  stack = await startStack(namedTopology('split3'), { secret: SECRET });
});
afterAll(async () => {
  await stack?.stop();
});

const node = (name: string) => stack.nodes.find((n) => n.name === name)!;

async function checkin(i: number): Promise<Response> {
  const a = deriveAgent('split', SECRET, i);
  return fetch(`${stack.entryUrl}/agent/v1/checkin`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${a.token}`, 'x-agent-id': a.id },
    body: JSON.stringify({ agentId: a.id, hostname: a.hostname, os: a.os, agentVersion: a.agentVersion, client: a.client, seq: 1, status: { cpuPct: 1, memPct: 2, diskFreePct: 3, uptimeSec: 4, loggedOnUser: null } }),
  });
}

async function dbCheckins(): Promise<number> {
  const r = await fetch(`${node('db').url}/db/v1/countCheckins`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${deriveKey(SECRET, 'db-rpc')}` }, body: '[]' });
  return ((await r.json()) as { result: number }).result;
}

describe('split3: proxy → 2 agent web + 1 user web, app, db — each its own process', () => {
  it('starts six processes, with the proxy as the entry', () => {
    expect(stack.nodes.map((n) => `${n.name}:${n.role}`)).toEqual(['db:db', 'app:app', 'web-agent-1:web', 'web-agent-2:web', 'web-user-1:web', 'proxy:proxy']);
    expect(stack.entryUrl).toBe(node('proxy').url);
    expect(new Set(stack.nodes.map((n) => n.pid)).size).toBe(6);
  });

  it('routes agent paths to the agent pool (spread) and user paths to the user node', async () => {
    const servedBy = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const r = await checkin(i);
      expect(r.status).toBe(200);
      servedBy.add(r.headers.get('x-served-by') ?? '');
    }
    expect([...servedBy].sort()).toEqual(['web-agent-1', 'web-agent-2']);
    const u = await fetch(`${stack.entryUrl}/api/v1/agents?limit=5`, { headers: user });
    expect(u.status).toBe(200);
    expect(u.headers.get('x-served-by')).toBe('web-user-1');
    expect(await dbCheckins()).toBe(10);
  });

  it('answers admin paths itself: backends’ /metrics are never reachable through it', async () => {
    const m = await (await fetch(`${stack.entryUrl}/metrics`)).text();
    expect(m).toContain('node="proxy"');
    expect(m).not.toContain('node="web-agent-1"');
    const h = (await (await fetch(`${stack.entryUrl}/healthz`)).json()) as { node: string };
    expect(h.node).toBe('proxy');
    expect((await fetch(`${stack.entryUrl}/admin/hdr`, { headers: { authorization: `Bearer ${stack.adminKey}` } })).status).toBe(200);
    expect((await fetch(`${stack.entryUrl}/other`)).status).toBe(404);
  });

  it('kill -9 an agent web node under load: traffic moves to the survivor for good and every acknowledged check-in is in the database', async () => {
    const before = await dbCheckins();
    const cfg = resolveSwarmConfig({ target: stack.entryUrl, agents: 3000, rate: '100/s', duration: '8s', secret: SECRET, seed: 'split-load', workers: 1, maxErrorRate: '100%' });
    // The kill comes on the swarm's own clock: after its second second, once it is being served.
    let killedAtSec: number | null = null;
    const run = runSwarm({
      config: cfg,
      onProgress: (p) => {
        if (killedAtSec !== null || p.elapsedSec < 2 || p.achievedRatePerSec === 0) return;
        killedAtSec = p.elapsedSec;
        stack.kill('web-agent-1', 'SIGKILL');
      },
    });
    const { result } = await run;
    expect(killedAtSec).not.toBeNull();
    const acked = result.ops.checkin.completed;
    const failed = result.ops.checkin.failed;
    const after = (await dbCheckins()) - before;
    expect(after).toBeGreaterThanOrEqual(acked); // nothing acknowledged is lost
    expect(after).toBeLessThanOrEqual(acked + failed);
    // By event order, not elapsed time: no failure before the kill; after it, a second served in
    // full, and from that second on no failure (the proxy took the dead node out for good).
    const points = result.series.filter((p) => !p.warmup && p.targetRatePerSec > 0);
    for (const p of points.filter((q) => q.tSec <= killedAtSec!)) expect(p.failed).toBe(0);
    const recovered = points.findIndex((p) => p.tSec > killedAtSec! && p.completed > 0 && p.failed === 0);
    expect(recovered).toBeGreaterThan(-1);
    for (const p of points.slice(recovered)) expect(p.failed).toBe(0);
    expect(acked).toBeGreaterThan(750);
    // The survivor serves everything now.
    const r = await checkin(9999);
    expect(r.headers.get('x-served-by')).toBe('web-agent-2');
  });

  it('user paths fall back to the agent pool when the user node is down', async () => {
    stack.kill('web-user-1', 'SIGKILL');
    // Poll until the proxy sends user paths elsewhere; the deadline only gives up, it is not a target.
    const giveUpAt = Date.now() + 10_000;
    let servedBy = '';
    let status = 0;
    while (Date.now() < giveUpAt) {
      const r = await fetch(`${stack.entryUrl}/api/v1/agents?limit=1`, { headers: user });
      status = r.status;
      servedBy = r.headers.get('x-served-by') ?? '';
      if (status === 200 && servedBy.startsWith('web-agent')) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(status).toBe(200);
    expect(servedBy).toBe('web-agent-2');
  });
});
