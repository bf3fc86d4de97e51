import { connect, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deriveAgent, userToken } from '../../src/core/identity.js';
import { startRole, type InProcessNode } from './role-harness.js';
import { SECRET, agent, alice, asAgent, asUser, call, checkinOf, other, tempStore } from './web-fixture.js';

/**
 * Bad input and bad callers against a web node on a real socket: 401 for missing or wrong
 * credentials (checked from headers, before the body), 400 for malformed JSON, 413 over the body
 * limit without reading the body, a timeout for slow headers, and never an upsert for an agent
 * the stack did not issue.
 */

const MAX_BODY = 16 * 1024;
const HEADERS_TIMEOUT_MS = 400;

/** A raw HTTP exchange: write `chunks`, collect what comes back until the server closes or `until` matches. */
function raw(url: string, chunks: string[], opts: { until?: RegExp; waitMs?: number } = {}): Promise<{ text: string; closed: boolean }> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s: Socket = connect(Number(port), '127.0.0.1');
    let text = '';
    let settled = false;
    const done = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => done(false), opts.waitMs ?? 5000);
    s.on('data', (d: Buffer) => {
      text += d.toString();
      if (opts.until?.test(text)) done(false);
    });
    s.on('close', () => done(true));
    s.on('error', (err) => (settled ? undefined : reject(err)));
    s.on('connect', () => {
      for (const c of chunks) s.write(c);
    });
  });
}

describe('web role security and bad input', () => {
  let db: Awaited<ReturnType<typeof tempStore>>;
  let node: InProcessNode;
  beforeEach(async () => {
    db = await tempStore();
    node = await startRole({ role: 'web', name: 'web', secret: SECRET, limits: { maxBodyBytes: MAX_BODY, headersTimeoutMs: HEADERS_TIMEOUT_MS } }, db.store);
  });
  afterEach(async () => {
    await node.close();
    await db.close();
  });

  it.each([
    ['no credentials', {}],
    ['no x-agent-id', { authorization: `Bearer ${agent.token}` }],
    ['a wrong token', { authorization: 'Bearer not-a-token', 'x-agent-id': agent.id }],
    ["another agent's token", { authorization: `Bearer ${other.token}`, 'x-agent-id': agent.id }],
    ['a user token', { authorization: `Bearer ${alice}`, 'x-agent-id': agent.id }],
    ['a Basic scheme', { authorization: `Basic ${agent.token}`, 'x-agent-id': agent.id }],
  ])('agent API with %s → 401, nothing written', async (_name, headers) => {
    const r = await call(node.url, 'POST', '/agent/v1/checkin', checkinOf(agent), headers as Record<string, string>);
    expect(r.status).toBe(401);
    expect(db.count('agents')).toBe(0);
    expect(db.count('checkins')).toBe(0);
  });

  it.each([
    ['no credentials', {}],
    ['an agent token', asAgent()],
    ['a user token under another secret', asUser(userToken('other-secret', 'alice'))],
    ['a tampered user token', asUser(`${alice.slice(0, -1)}${alice.endsWith('A') ? 'B' : 'A'}`)],
  ])('user API with %s → 401', async (_name, headers) => {
    expect((await call(node.url, 'GET', '/api/v1/agents', undefined, headers)).status).toBe(401);
    expect((await call(node.url, 'POST', `/api/v1/agents/${agent.id}/commands`, { kind: 'reboot' }, headers)).status).toBe(401);
  });

  it('an unknown agent id with a valid-looking token → 401 and never an upsert', async () => {
    await call(node.url, 'POST', '/agent/v1/checkin', checkinOf(agent), asAgent());
    const before = db.count('agents');
    // Well-formed id and token, minted under another secret: the stack never issued this agent.
    const stranger = deriveAgent('web-test', 'someone-elses-secret', 77);
    const r = await call(node.url, 'POST', '/agent/v1/checkin', checkinOf(stranger), asAgent(stranger));
    expect(r.status).toBe(401);
    expect(db.count('agents')).toBe(before);
    expect(before).toBe(1);
  });

  it('malformed JSON → 400; a body for another agent or of the wrong shape → 400 naming the field', async () => {
    expect((await call(node.url, 'POST', '/agent/v1/checkin', '{"agentId": ', asAgent())).status).toBe(400);
    const wrongAgent = await call(node.url, 'POST', '/agent/v1/checkin', checkinOf(other), asAgent());
    expect(wrongAgent.status).toBe(400);
    expect((wrongAgent.json as { error: string }).error).toBe(`agentId: expected the x-agent-id header's ${JSON.stringify(agent.id)}`);
    const noStatus = await call(node.url, 'POST', '/agent/v1/checkin', { ...checkinOf(agent), status: { cpuPct: 'high' } }, asAgent());
    expect((noStatus.json as { error: string }).error).toBe('status.cpuPct: expected a number');
    expect((await call(node.url, 'POST', '/agent/v1/command-results', { results: 'none' }, asAgent())).status).toBe(400);
    expect((await call(node.url, 'POST', `/api/v1/agents/${agent.id}/commands`, '{kind:', asUser())).status).toBe(400);
    expect((await call(node.url, 'POST', `/api/v1/agents/%E0%A4%A/commands`, { kind: 'x' }, asUser())).status).toBe(400);
    expect(db.count('agents')).toBe(0);
  });

  it('a declared body over the limit → 413 before the body is sent, and the connection closes', async () => {
    const head =
      `POST /agent/v1/inventory HTTP/1.1\r\nHost: x\r\nauthorization: Bearer ${agent.token}\r\nx-agent-id: ${agent.id}\r\n` +
      `content-type: application/json\r\ncontent-length: ${100 * 1024 * 1024}\r\n\r\n{"agentId":`;
    const r = await raw(node.url, [head]);
    expect(r.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(r.text).toMatch(/connection: close/i);
    expect(r.closed).toBe(true);
  });

  it('a chunked body crossing the limit → 413 while the client is still sending', async () => {
    const head = `POST /agent/v1/inventory HTTP/1.1\r\nHost: x\r\nauthorization: Bearer ${agent.token}\r\nx-agent-id: ${agent.id}\r\ntransfer-encoding: chunked\r\n\r\n`;
    const piece = 'x'.repeat(8192);
    const chunk = `${piece.length.toString(16)}\r\n${piece}\r\n`;
    // Three 8 KiB chunks (24 KiB > 16 KiB) and no terminating chunk: the request never completes.
    const r = await raw(node.url, [head, chunk, chunk, chunk]);
    expect(r.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(r.closed).toBe(true);
    expect(db.count('inventory')).toBe(0);
  });

  it('credentials are checked before the body: a bad token with a huge declared body → 401 at once', async () => {
    const head = `POST /agent/v1/checkin HTTP/1.1\r\nHost: x\r\nauthorization: Bearer nope\r\nx-agent-id: ${agent.id}\r\ncontent-length: ${50 * 1024 * 1024}\r\n\r\n`;
    const r = await raw(node.url, [head]);
    expect(r.text).toMatch(/^HTTP\/1\.1 401 /);
    expect(r.closed).toBe(true);
  });

  it('slow headers: a client that never finishes its headers is timed out (408) and disconnected', async () => {
    const r = await raw(node.url, ['POST /agent/v1/checkin HTTP/1.1\r\nHost: x\r\nx-agent-id: '], { waitMs: 10 * HEADERS_TIMEOUT_MS + 5000 });
    expect(r.closed).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1\.1 408 /);
  });
});
