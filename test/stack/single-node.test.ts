import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveAgent, userToken } from '../../src/core/identity.js';
import { startStack, type RunningStack } from '../../src/stack/launcher.js';
import { namedTopology } from '../../src/stack/topology.js';
import { checkinOf } from './web-fixture.js';

const SECRET = 'node-test-secret';
let stack: RunningStack;
const agent = deriveAgent('node-test', SECRET, 1);
const other = deriveAgent('node-test', SECRET, 2);
const admin = userToken(SECRET, 'alice');

beforeAll(async () => {
  stack = await startStack(namedTopology('single'), { secret: SECRET, limits: { maxBodyBytes: 16 * 1024, headersTimeoutMs: 800 } });
});
afterAll(async () => {
  await stack?.stop();
});

function checkinBody(a = agent, seq = 1): string {
  return JSON.stringify(checkinOf(a, seq));
}

async function post(path: string, body: string, headers: Record<string, string>): Promise<{ status: number; json: unknown }> {
  const r = await fetch(stack.entryUrl + path, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  const text = await r.text();
  return { status: r.status, json: text ? (JSON.parse(text) as unknown) : null };
}

const asAgent = (a = agent): Record<string, string> => ({ authorization: `Bearer ${a.token}`, 'x-agent-id': a.id });
const asUser = { authorization: `Bearer ${admin}` };

async function agentCount(): Promise<number> {
  const r = await fetch(`${stack.entryUrl}/api/v1/agents?limit=1000`, { headers: asUser });
  return ((await r.json()) as { agents: unknown[] }).agents.length;
}

describe('a single-server node: agent API, user API, and bad input', () => {
  it('accepts a valid check-in and durably records the agent', async () => {
    const r = await post('/agent/v1/checkin', checkinBody(), asAgent());
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ ok: true, commands: [], nextCheckinSec: 300 });
    expect(await agentCount()).toBe(1);
  });

  it.each([
    ['no token', {}],
    ['a wrong token', { authorization: 'Bearer nope', 'x-agent-id': agent.id }],
    ["another agent's token", { authorization: `Bearer ${other.token}`, 'x-agent-id': agent.id }],
    ['a user token', { authorization: `Bearer ${admin}`, 'x-agent-id': agent.id }],
  ])('rejects %s with 401', async (_name, headers) => {
    expect((await post('/agent/v1/checkin', checkinBody(), headers as Record<string, string>)).status).toBe(401);
  });

  it('an unknown agent id with a valid-looking token: 401 and never an upsert', async () => {
    const before = await agentCount();
    const stranger = deriveAgent('node-test', 'some-other-secret', 99);
    const r = await post('/agent/v1/checkin', checkinBody(stranger), asAgent(stranger));
    expect(r.status).toBe(401);
    expect(await agentCount()).toBe(before);
  });

  it('answers malformed JSON with 400 and a body that does not match the agent with 400', async () => {
    expect((await post('/agent/v1/checkin', '{"agentId": ', asAgent())).status).toBe(400);
    expect((await post('/agent/v1/checkin', checkinBody(other), asAgent())).status).toBe(400);
  });

  it('answers a body over the limit with 413', async () => {
    const big = JSON.stringify({ agentId: agent.id, software: 'x'.repeat(32 * 1024) });
    expect((await post('/agent/v1/inventory', big, asAgent())).status).toBe(413);
  });

  it('times out slow headers', async () => {
    const { port } = new URL(stack.entryUrl);
    const outcome = await new Promise<string>((resolve) => {
      const s = connect(Number(port), '127.0.0.1', () => s.write('POST /agent/v1/checkin HTTP/1.1\r\nHost: x\r\n'));
      let data = '';
      s.on('data', (d) => (data += d.toString()));
      s.on('close', () => resolve(data.split('\r\n')[0] || 'closed'));
      setTimeout(() => {
        s.destroy();
        resolve('still open after 5 s');
      }, 5000);
    });
    expect(outcome).toBe('HTTP/1.1 408 Request Timeout');
  });

  it('requires a user token on the user API, and keeps the two kinds apart', async () => {
    expect((await fetch(`${stack.entryUrl}/api/v1/agents`)).status).toBe(401);
    expect((await fetch(`${stack.entryUrl}/api/v1/agents`, { headers: asAgent() })).status).toBe(401);
    expect((await fetch(`${stack.entryUrl}/api/v1/stats/by-os`, { headers: asUser })).status).toBe(200);
  });

  it('delivers a command created on the user API with each check-in until its result is stored', async () => {
    const created = await post(`/api/v1/agents/${agent.id}/commands`, JSON.stringify({ kind: 'script', args: { name: 'patch-scan' } }), asUser);
    expect(created.status).toBe(201);
    const { commandId } = created.json as { commandId: string };
    const c1 = await post('/agent/v1/checkin', checkinBody(agent, 2), asAgent());
    expect((c1.json as { commands: Array<{ id: string; kind: string }> }).commands).toEqual([{ id: commandId, kind: 'script', args: { name: 'patch-scan' } }]);
    const c2 = await post('/agent/v1/checkin', checkinBody(agent, 3), asAgent());
    expect((c2.json as { commands: Array<{ id: string }> }).commands.map((c) => c.id)).toEqual([commandId]);
    const res = await post('/agent/v1/command-results', JSON.stringify({ agentId: agent.id, results: [{ commandId, exitCode: 0, output: 'ok', durationMs: 5 }] }), asAgent());
    expect(res.status).toBe(200);
    const c3 = await post('/agent/v1/checkin', checkinBody(agent, 4), asAgent());
    expect((c3.json as { commands: unknown[] }).commands).toEqual([]);
    expect((await post(`/api/v1/agents/agt-0000000000000000/commands`, JSON.stringify({ kind: 'x' }), asUser)).status).toBe(404);
  });

  it('pages through agents for an integration sync', async () => {
    for (let i = 10; i < 15; i++) await post('/agent/v1/checkin', checkinBody(deriveAgent('node-test', SECRET, i)), asAgent(deriveAgent('node-test', SECRET, i)));
    const seen: string[] = [];
    let after = '';
    for (let page = 0; page < 10; page++) {
      const r = (await (await fetch(`${stack.entryUrl}/api/v1/sync/agents?limit=2&after=${after}`, { headers: asUser })).json()) as { agents: Array<{ id: string }>; next: string | null };
      seen.push(...r.agents.map((a) => a.id));
      if (!r.next) break;
      after = r.next;
    }
    expect(seen).toHaveLength(6);
    expect([...seen].sort()).toEqual(seen);
  });

  it('serves its own metrics, and never hands admin paths to the role', async () => {
    const m = await (await fetch(`${stack.entryUrl}/metrics`)).text();
    expect(m).toMatch(/rmmscale_requests_total\{node="single",role="single",tier="single",route="checkin",status="200"\} \d+/);
    expect(m).toContain('rmmscale_request_duration_seconds_bucket');
    expect(m).toContain('process_resident_memory_bytes');
    expect((await fetch(`${stack.entryUrl}/admin/nope`, { headers: { authorization: `Bearer ${stack.adminKey}` } })).status).toBe(404);
    const hdr = (await (await fetch(`${stack.entryUrl}/admin/hdr`, { headers: { authorization: `Bearer ${stack.adminKey}` } })).json()) as { histograms: Record<string, string> };
    expect(Object.keys(hdr.histograms)).toContain('checkin');
  });
});

describe('the DBAgent singleton and the launcher', () => {
  it('a second DBAgent on the same database starts as a standby and does not lead', async () => {
    const dir = (await import('node:fs')).mkdtempSync((await import('node:path')).join((await import('node:os')).tmpdir(), 'rmmscale-lease-'));
    const first = await startStack(namedTopology('single'), { secret: SECRET, dataDir: dir });
    try {
      const second = await startStack({ name: 'app-only', nodes: [{ name: 'app-2', role: 'app', tier: 'app' }] }, { secret: SECRET, dataDir: dir });
      try {
        const m = await (await fetch(second.nodes[0]!.metricsUrl)).text();
        expect(m).toMatch(/rmmscale_role_gauge\{[^}]*gauge="dbagent:standby"\} 1\n/);
        expect(m).toMatch(/rmmscale_role_gauge\{[^}]*gauge="dbagent:leader"\} 0\n/);
      } finally {
        await second.stop();
      }
    } finally {
      await first.stop();
    }
  });

  it('leaves no process behind, even after a node was SIGKILLed', async () => {
    const s = await startStack(namedTopology('single'), { secret: SECRET });
    const pid = s.nodes[0].pid;
    const exited = new Promise((r) => s.once('event', r));
    s.kill('single', 'SIGKILL');
    expect(await exited).toMatchObject({ event: 'node-exit', node: 'single', signal: 'SIGKILL' });
    await s.stop();
    expect(() => process.kill(pid, 0)).toThrow();
  });
});
