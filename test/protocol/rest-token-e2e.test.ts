import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveSwarmConfig } from '../../src/swarm/config.js';
import { runSwarm } from '../../src/swarm/coordinator.js';

/**
 * protocols/rest-token.yaml against a small REST agent server: registration with a key gives an
 * id and a token (201), GET polls carry the token, every 4th poll hands out two tasks, and the
 * PUT of results must name exactly those tasks.
 */
let server: Server | null = null;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = null;
});

describe('protocols/rest-token.yaml end to end', () => {
  it('registers each agent once, polls with its own token, reports exactly the tasks handed out', async () => {
    const tokens = new Map<string, string>(); // token → agent id
    const seen = { registered: 0, badAuth: 0, polls: 0, handedOut: 0, reported: 0, wrongReport: 0, inventoryBytes: [] as number[] };
    const outstanding = new Map<string, number[]>();
    let taskId = 0;
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const url = new URL(req.url ?? '/', 'http://x');
        const json = (status: number, doc: unknown): void => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
        if (req.method === 'POST' && url.pathname === '/api/v1/agents/register') {
          if (req.headers['x-registration-key'] !== 'reg-key') return json(403, { error: 'bad key' });
          const id = `a${++seen.registered}`;
          const token = `tok-${id}-${(JSON.parse(body) as { serial: string }).serial}`;
          tokens.set(token, id);
          return json(201, { id, token });
        }
        const m = /^\/api\/v1\/agents\/([^/]+)\/(tasks|results|inventory)$/.exec(url.pathname);
        const auth = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
        if (!m || tokens.get(auth) !== m[1]) {
          seen.badAuth++;
          return json(401, { error: 'unauthorized' });
        }
        const id = m[1];
        if (m[2] === 'tasks' && req.method === 'GET' && url.searchParams.has('seq')) {
          seen.polls++;
          const tasks = seen.polls % 4 === 0 ? [{ id: ++taskId }, { id: ++taskId }] : [];
          if (tasks.length) outstanding.set(id, tasks.map((t) => t.id));
          seen.handedOut += tasks.length;
          return json(200, { tasks });
        }
        if (m[2] === 'results' && req.method === 'PUT') {
          const results = (JSON.parse(body) as { results: Array<{ task: number; output: string }> }).results;
          const want = outstanding.get(id) ?? [];
          if (JSON.stringify(results.map((r) => r.task)) === JSON.stringify(want) && results.every((r) => r.output.length === 256)) seen.reported += results.length;
          else seen.wrongReport++;
          outstanding.delete(id);
          return json(200, {});
        }
        if (m[2] === 'inventory' && req.method === 'POST') {
          seen.inventoryBytes.push(Buffer.byteLength(body));
          return json(200, {});
        }
        return json(404, {});
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const config = resolveSwarmConfig({ target: url, agents: 30, checkinInterval: '1s', duration: '3s', workers: 1, connection: 'keepalive', protocol: 'protocols/rest-token.yaml', var: ['registration_key=reg-key'] });
    const { result } = await runSwarm({ config });
    expect(seen.registered).toBe(30);
    expect(result.ops.register.completed).toBe(30);
    expect(seen.badAuth).toBe(0);
    expect(seen.wrongReport).toBe(0);
    expect(seen.handedOut).toBeGreaterThan(0);
    expect(seen.reported).toBe(seen.handedOut);
    expect(result.ops.report.completed * 2).toBe(seen.handedOut);
    expect((result.ops.poll?.completed ?? 0) + (result.ops.inventory?.completed ?? 0) + result.summary.dropped).toBe(90);
    // {"collectedAt":<10 digits>,"software":<32 KB>}
    for (const n of seen.inventoryBytes) expect(n).toBe(32 * 1024 + 38);
    expect(result.summary.failed).toBe(0);
  });
});
