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

  it('kill -9 an agent web node under load: traffic moves within 2 s and every acknowledged check-in is in the database', async () => {
    const before = await dbCheckins();
    const cfg = resolveSwarmConfig({ target: stack.entryUrl, agents: 3000, rate: '100/s', duration: '8s', secret: SECRET, seed: 'split-load', workers: 1, maxErrorRate: '100%' });
    const run = runSwarm({ config: cfg });
    await new Promise((r) => setTimeout(r, 2000));
    const killedAt = 2; // seconds into the run (± the swarm's start-up)
    stack.kill('web-agent-1', 'SIGKILL');
    const { result } = await run;
    const acked = result.ops.checkin.completed;
    const failed = result.ops.checkin.failed;
    const after = (await dbCheckins()) - before;
    expect(after).toBeGreaterThanOrEqual(acked); // nothing acknowledged is lost
    expect(after).toBeLessThanOrEqual(acked + failed);
    // Failures only around the kill: none from 2 s after it to the end.
    const late = result.series.filter((p) => !p.warmup && p.tSec > killedAt + 2 && p.targetRatePerSec > 0);
    expect(late.length).toBeGreaterThanOrEqual(3);
    for (const p of late) expect(p.failed).toBe(0);
    expect(acked).toBeGreaterThan(750);
    // The survivor serves everything now.
    const r = await checkin(9999);
    expect(r.headers.get('x-served-by')).toBe('web-agent-2');
  });

  it('user paths fall back to the agent pool when the user node is down', async () => {
    stack.kill('web-user-1', 'SIGKILL');
    const deadline = Date.now() + 2000;
    let servedBy = '';
    let status = 0;
    while (Date.now() < deadline) {
      const r = await fetch(`${stack.entryUrl}/api/v1/agents?limit=1`, { headers: user });
      status = r.status;
      servedBy = r.headers.get('x-served-by') ?? '';
      if (status === 200 && servedBy.startsWith('web-agent')) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(status).toBe(200);
    expect(servedBy).toBe('web-agent-2');
    expect(Date.now()).toBeLessThan(deadline);
  });
});
