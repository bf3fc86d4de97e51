import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deriveAgent } from '../../src/core/identity.js';
import { CapacityLimiter } from '../../src/stack/capacity.js';
import { limitStore } from '../../src/stack/store/limited.js';
import { RemoteStore } from '../../src/stack/store/remote.js';
import { startRole, type InProcessNode } from './role-harness.js';
import { SECRET, agent, asAgent, asUser, call, checkinOf, other, tempStore } from './web-fixture.js';
import { deriveKey } from '../../src/core/identity.js';

describe('web role: agent and user APIs on a real socket', () => {
  let db: Awaited<ReturnType<typeof tempStore>>;
  let node: InProcessNode;
  const extra: Array<{ close(): Promise<void> }> = [];
  beforeEach(async () => {
    db = await tempStore();
    node = await startRole({ role: 'web', name: 'web-both', secret: SECRET, web: { serves: 'both' } }, db.store);
  });
  afterEach(async () => {
    for (const e of extra.splice(0)) await e.close();
    await node.close();
    await db.close();
  });

  it('check-in → 200 with no commands; the agent shows on the dashboard; heartbeat and inventory accepted', async () => {
    const r = await call(node.url, 'POST', '/agent/v1/checkin', checkinOf(agent), asAgent());
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ ok: true, commands: [], nextCheckinSec: 300 });
    expect((await call(node.url, 'POST', '/agent/v1/heartbeat', { agentId: agent.id, seq: 2 }, asAgent())).status).toBe(200);
    expect((await call(node.url, 'POST', '/agent/v1/inventory', { agentId: agent.id, software: ['7-Zip'] }, asAgent())).status).toBe(200);
    const list = await call(node.url, 'GET', '/api/v1/agents?status=online', undefined, asUser());
    expect((list.json as { agents: Array<{ id: string; hostname: string }> }).agents.map((a) => [a.id, a.hostname])).toEqual([[agent.id, agent.hostname]]);
    expect(db.count('checkins')).toBe(1);
    expect(db.count('inventory')).toBe(1);
  });

  it('a command created by a user reaches the agent on its next check-in, and on each one after until its result is stored', async () => {
    await call(node.url, 'POST', '/agent/v1/checkin', checkinOf(agent), asAgent());
    const created = await call(node.url, 'POST', `/api/v1/agents/${agent.id}/commands`, { kind: 'script', args: { ps: 'Get-Service' } }, asUser());
    expect(created.status).toBe(201);
    const commandId = (created.json as { commandId: string }).commandId;
    const next = await call(node.url, 'POST', '/agent/v1/checkin', checkinOf(agent, 2), asAgent());
    expect((next.json as { commands: unknown[] }).commands).toEqual([{ id: commandId, kind: 'script', args: { ps: 'Get-Service' } }]);
    // Not acknowledged yet (that response could have been lost): handed out again.
    expect((await call(node.url, 'POST', '/agent/v1/checkin', checkinOf(agent, 3), asAgent())).json).toEqual({ ok: true, commands: [{ id: commandId, kind: 'script', args: { ps: 'Get-Service' } }], nextCheckinSec: 300 });
    const res = await call(node.url, 'POST', '/agent/v1/command-results', { agentId: agent.id, results: [{ commandId, exitCode: 0, output: 'ok', durationMs: 9 }] }, asAgent());
    expect(res.status).toBe(200);
    expect(db.count('commands WHERE result_exit = 0')).toBe(1);
    expect((await call(node.url, 'POST', '/agent/v1/checkin', checkinOf(agent, 4), asAgent())).json).toEqual({ ok: true, commands: [], nextCheckinSec: 300 });
  });

  it('command creation for an unknown agent → 404, and nothing is queued', async () => {
    const r = await call(node.url, 'POST', `/api/v1/agents/${other.id}/commands`, { kind: 'reboot' }, asUser());
    expect(r.status).toBe(404);
    expect(r.json).toEqual({ error: `agent ${JSON.stringify(other.id)} is unknown` });
    expect(db.count('commands')).toBe(0);
  });

  it('dashboard aggregates and the integration sync paging through every agent', async () => {
    const fleet = Array.from({ length: 5 }, (_, i) => deriveAgent('web-test', SECRET, 10 + i));
    for (const a of fleet) expect((await call(node.url, 'POST', '/agent/v1/checkin', checkinOf(a), asAgent(a))).status).toBe(200);
    const byOs = (await call(node.url, 'GET', '/api/v1/stats/by-os', undefined, asUser())).json as { stats: Array<{ key: string; agents: number; online: number }> };
    expect(byOs.stats.reduce((s, x) => s + x.agents, 0)).toBe(5);
    expect(byOs.stats.every((x) => x.online === x.agents)).toBe(true);
    const byClient = (await call(node.url, 'GET', '/api/v1/stats/by-client', undefined, asUser())).json as { stats: Array<{ key: string }> };
    expect(byClient.stats.map((x) => x.key)).toEqual([...new Set(fleet.map((a) => a.client))].sort());
    const seen: string[] = [];
    let after = '';
    for (let page = 0; page < 5; page++) {
      const r = (await call(node.url, 'GET', `/api/v1/sync/agents?limit=2${after ? `&after=${after}` : ''}`, undefined, asUser())).json as { agents: Array<{ id: string }>; next: string | null };
      seen.push(...r.agents.map((a) => a.id));
      if (!r.next) break;
      after = r.next;
    }
    expect(seen).toEqual(fleet.map((a) => a.id).sort());
    expect((await call(node.url, 'GET', '/api/v1/agents?limit=0', undefined, asUser())).status).toBe(400);
    expect((await call(node.url, 'GET', '/api/v1/agents?status=asleep', undefined, asUser())).status).toBe(400);
  });

  it('labels requests by route in /metrics', async () => {
    await call(node.url, 'POST', '/agent/v1/checkin', checkinOf(agent), asAgent());
    await call(node.url, 'GET', '/api/v1/stats/by-os', undefined, asUser());
    const text = await (await fetch(`${node.url}/metrics`)).text();
    expect(text).toMatch(/rmmscale_requests_total\{[^}]*route="checkin"[^}]*status="200"[^}]*\} 1/);
    expect(text).toMatch(/rmmscale_requests_total\{[^}]*route="stats"[^}]*status="200"[^}]*\} 1/);
  });

  it('an agent-only node answers user paths with 404, a user-only node agent paths with 404', async () => {
    const agentOnly = await startRole({ role: 'web', name: 'web-agent', secret: SECRET, web: { serves: 'agent' } }, db.store);
    extra.push(agentOnly);
    const userOnly = await startRole({ role: 'web', name: 'web-user', secret: SECRET, web: { serves: 'user' } }, db.store);
    extra.push(userOnly);
    expect((await call(agentOnly.url, 'POST', '/agent/v1/checkin', checkinOf(agent), asAgent())).status).toBe(200);
    expect((await call(agentOnly.url, 'GET', '/api/v1/agents', undefined, asUser())).status).toBe(404);
    expect((await call(userOnly.url, 'GET', '/api/v1/agents', undefined, asUser())).status).toBe(200);
    expect((await call(userOnly.url, 'POST', '/agent/v1/checkin', checkinOf(agent), asAgent())).status).toBe(404);
  });

  it('a database that is full or gone is a 503 with retry-after, not a 500', async () => {
    // Full: one connection, no queue, 200 ms per query; the second concurrent check-in is refused.
    const limited = limitStore(db.store, new CapacityLimiter({ workers: 1, queue: 0, service: { dist: 'constant', meanMs: 200 } }));
    const busy = await startRole({ role: 'web', name: 'web-busy', secret: SECRET }, limited);
    extra.push(busy);
    const [a, b] = await Promise.all([
      call(busy.url, 'POST', '/agent/v1/checkin', checkinOf(agent), asAgent()),
      call(busy.url, 'POST', '/agent/v1/checkin', checkinOf(other), asAgent(other)),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 503]);
    expect((a.status === 503 ? a : b).headers.get('retry-after')).toBe('1');
    // Gone: the db node's port is closed.
    const dead = new RemoteStore('http://127.0.0.1:9', { connections: 1, key: deriveKey(SECRET, 'db-rpc') });
    extra.push(dead);
    const orphan = await startRole({ role: 'web', name: 'web-orphan', secret: SECRET }, dead);
    extra.push(orphan);
    const r = await call(orphan.url, 'POST', '/agent/v1/checkin', checkinOf(agent), asAgent());
    expect(r.status).toBe(503);
    expect((r.json as { error: string }).error).toMatch(/^the database is unavailable: db node http:\/\/127\.0\.0\.1:9/);
  });

  it('a hung database (it accepts, never answers): every agent write and a new command get a clear 503 with retry-after', async () => {
    const hung = createServer(() => undefined); // SIGSTOP as the web node sees it: connected, no answer
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    extra.push({ close: () => new Promise<void>((r) => (hung.closeAllConnections(), hung.close(() => r()))) });
    const store = new RemoteStore(`http://127.0.0.1:${(hung.address() as AddressInfo).port}`, { connections: 2, timeoutMs: 300, key: deriveKey(SECRET, 'db-rpc') });
    extra.push(store);
    const web = await startRole({ role: 'web', name: 'web-hung-db', secret: SECRET }, store);
    extra.push(web);
    const answers = await Promise.all([
      call(web.url, 'POST', '/agent/v1/checkin', checkinOf(agent), asAgent()),
      call(web.url, 'POST', '/agent/v1/inventory', { agentId: agent.id, seq: 9, software: [] }, asAgent()),
      call(web.url, 'POST', '/agent/v1/command-results', { agentId: agent.id, seq: 10, results: [] }, asAgent()),
      call(web.url, 'POST', `/api/v1/agents/${agent.id}/commands`, { kind: 'script', args: {} }, asUser()),
    ]);
    for (const r of answers) {
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('1');
      expect((r.json as { error: string }).error).toMatch(/^the database is unavailable: db node http:\/\/127\.0\.0\.1:\d+: UND_ERR_HEADERS_TIMEOUT$/);
    }
  });
});
