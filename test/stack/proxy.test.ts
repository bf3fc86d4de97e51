import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createRole } from '../../src/stack/roles/proxy.js';
import { NodeMetrics } from '../../src/stack/runtime/node-metrics.js';
import type { NodeSpec, RoleHandler } from '../../src/stack/types.js';
import { startBackend, startProxy, until, type TestBackend, type TestProxy } from './proxy-backends.js';

type Echo = { name: string; method: string; url: string; headers: Record<string, string>; bodyBytes: number; bodySum: number };

let a1: TestBackend;
let a2: TestBackend;
let u1: TestBackend;
let proxy: TestProxy;

beforeAll(async () => {
  [a1, a2, u1] = await Promise.all([startBackend('web-agent-1'), startBackend('web-agent-2'), startBackend('web-user-1')]);
  proxy = await startProxy([a1, a2], [u1], { requestTimeoutMs: 400, maxBodyBytes: 1024 * 1024 });
});
afterAll(async () => {
  await proxy?.close();
  await Promise.all([a1, a2, u1].map((b) => b?.kill()));
});

async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; servedBy: string; headers: Record<string, unknown>; text: string }> {
  const r = await request(`${proxy.url}${path}`, { headers });
  const text = await r.body.text();
  return { status: r.statusCode, servedBy: String(r.headers['x-served-by'] ?? ''), headers: r.headers, text };
}

function sum(buf: Buffer): number {
  let s = 0;
  for (const b of buf) s = (s + b) % 1_000_000_007;
  return s;
}

describe('built-in proxy: routing and headers (fixture backends in their own processes)', () => {
  it('spreads agent paths over the agent pool and sends user paths to the user pool', async () => {
    const agentSeen: string[] = [];
    for (let i = 0; i < 6; i++) agentSeen.push((await get('/agent/echo')).servedBy);
    expect(agentSeen.filter((n) => n === 'web-agent-1')).toHaveLength(3);
    expect(agentSeen.filter((n) => n === 'web-agent-2')).toHaveLength(3);
    for (let i = 0; i < 3; i++) {
      const r = await get('/api/echo?limit=5');
      expect(r.status).toBe(200);
      expect(r.servedBy).toBe('web-user-1');
      expect((JSON.parse(r.text) as Echo).url).toBe('/api/echo?limit=5');
    }
  });

  it('drops hop-by-hop headers both ways and sets X-Forwarded-For/Proto', async () => {
    // node:http, not undici: undici refuses a Connection header naming other headers.
    const r = await new Promise<{ servedBy: string; headers: Record<string, unknown>; text: string }>((resolve, reject) => {
      const headers = { connection: 'keep-alive, x-private', 'x-private': 'secret', 'proxy-authorization': 'Basic eA==', te: 'trailers', 'x-agent-id': 'a-7', 'x-forwarded-for': '203.0.113.5' };
      const req = httpRequest(`${proxy.url}/agent/echo`, { headers, agent: false }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ servedBy: String(res.headers['x-served-by']), headers: res.headers, text }));
      });
      req.on('error', reject);
      req.end();
    });
    const seen = (JSON.parse(r.text) as Echo).headers;
    expect(seen['x-agent-id']).toBe('a-7');
    expect(seen['x-private']).toBeUndefined();
    expect(seen['proxy-authorization']).toBeUndefined();
    expect(seen.te).toBeUndefined();
    expect(seen['x-forwarded-for']).toBe('203.0.113.5, 127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
    // The backend sent `connection: keep-alive, x-conn-private`, `x-conn-private`, `proxy-authenticate`.
    expect(r.headers['x-conn-private']).toBeUndefined();
    expect(r.headers['proxy-authenticate']).toBeUndefined();
    expect(r.headers['x-backend']).toBe(r.servedBy);
  });

  it('answers /metrics, /healthz and /admin/* itself and 404s every other path', async () => {
    const m = await get('/metrics');
    expect(m.status).toBe(200);
    expect(m.servedBy).toBe('');
    expect(m.text).toContain('node="proxy"');
    expect((await get('/healthz')).text).toContain('"node":"proxy"');
    const admin = await get('/admin/whatever');
    expect(admin.status).toBe(401); // the proxy's own admin surface (admin key), never forwarded
    expect(admin.servedBy).toBe('');
    const other = await get('/agentx/echo');
    expect(other.status).toBe(404);
    expect(other.servedBy).toBe('');
    const before = (await a1.stats()).requests;
    expect(before['/healthz']).toBeUndefined(); // health checks are not counted as traffic by the fixture
  });

  it('least outstanding: while one backend holds a request, the other takes all new ones', async () => {
    const held = get('/agent/hold');
    let holder: TestBackend | undefined;
    expect(await until(async () => ((holder = (await a1.stats()).holding ? a1 : (await a2.stats()).holding ? a2 : undefined), holder !== undefined), 2000)).toBe(true);
    const other = holder === a1 ? a2 : a1;
    const seen = [];
    for (let i = 0; i < 10; i++) seen.push((await get('/agent/echo')).servedBy);
    expect(seen).toEqual(new Array(10).fill(other.name));
    await request(`${holder!.url}/__release`, { method: 'POST' }).then((r) => r.body.dump());
    expect((await held).servedBy).toBe(holder!.name);
  });

  it('streams a large request body and a large response intact', async () => {
    const body = Buffer.alloc(900 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
    const r = await request(`${proxy.url}/agent/echo`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    const echo = (await r.body.json()) as Echo;
    expect(echo.bodyBytes).toBe(body.length);
    expect(echo.bodySum).toBe(sum(body));
    // Chunked (no content-length): streamed too.
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 10; i++) yield body.subarray(i * 1000, (i + 1) * 1000);
    }
    const c = await request(`${proxy.url}/api/echo`, { method: 'POST', body: Readable.from(chunks()) });
    const ce = (await c.body.json()) as Echo;
    expect(ce.bodyBytes).toBe(10_000);
    expect(ce.bodySum).toBe(sum(body.subarray(0, 10_000)));
    const big = await request(`${proxy.url}/agent/big?bytes=${5 * 1024 * 1024 + 3}`);
    const got = Buffer.from(await big.body.arrayBuffer());
    expect(got.length).toBe(5 * 1024 * 1024 + 3);
    expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(Buffer.alloc(5 * 1024 * 1024 + 3, 7)).digest('hex'));
  });

  it('refuses bodies over the limit with 413, declared or chunked', async () => {
    const declared = await request(`${proxy.url}/agent/echo`, { method: 'POST', body: Buffer.alloc(1024 * 1024 + 1) });
    expect(declared.statusCode).toBe(413);
    await declared.body.dump();
    async function* tooMuch(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 20; i++) yield Buffer.alloc(64 * 1024);
    }
    const chunked = await request(`${proxy.url}/agent/echo`, { method: 'POST', body: Readable.from(tooMuch()) }).catch((e: Error) => e);
    // Either a clean 413, or the connection cut while the client was still sending: never a 200.
    if (!(chunked instanceof Error)) {
      expect(chunked.statusCode).toBe(413);
      await chunked.body.dump();
    }
  });

  it('answers 504 when the backend is slower than the upstream timeout', async () => {
    const r = await get('/agent/slow?ms=1500');
    expect(r.status).toBe(504);
    expect(r.text).toContain('UND_ERR_HEADERS_TIMEOUT');
  });

  it('never retries a request that reached a backend: one reset request, one delivery, a 502', async () => {
    const before = [(await a1.stats()).requests['/agent/reset'] ?? 0, (await a2.stats()).requests['/agent/reset'] ?? 0];
    const r = await get('/agent/reset');
    expect(r.status).toBe(502);
    const after = [(await a1.stats()).requests['/agent/reset'] ?? 0, (await a2.stats()).requests['/agent/reset'] ?? 0];
    expect(after[0] + after[1] - before[0] - before[1]).toBe(1);
  });

  it('counts per-backend requests, errors and ejections in /metrics', async () => {
    const m = (await get('/metrics')).text;
    const value = (event: string): number => Number(new RegExp(`rmmscale_events_total\\{[^}]*event="${event}"\\} (\\d+)`).exec(m)?.[1] ?? NaN);
    const r1 = value('backend:web-agent-1:requests');
    const r2 = value('backend:web-agent-2:requests');
    const ru = value('backend:web-user-1:requests');
    expect(ru).toBe(4); // 3 echo GETs + 1 chunked POST
    expect(r1 + r2).toBeGreaterThan(20);
    // The reset in the previous test ejected its backend once (passive ejection); nothing else did.
    expect((value('backend:web-agent-1:ejections') || 0) + (value('backend:web-agent-2:ejections') || 0)).toBe(1);
    expect(value('backend:web-user-1:ejections')).toBeNaN();
    expect(value('backend:web-agent-1:errors') + value('backend:web-agent-2:errors')).toBe(2); // the 504 and the 502
    // A passing health check re-admits it.
    const healthy = async (): Promise<boolean> => {
      const t = (await get('/metrics')).text;
      return ['web-agent-1', 'web-agent-2', 'web-user-1'].every((n) => new RegExp(`rmmscale_role_gauge\\{[^}]*gauge="backend:${n}:healthy"\\} 1`).test(t));
    };
    expect(await until(healthy, 2000)).toBe(true);
  });

  it('passes WebSocket upgrades through to the agent pool', { timeout: 10_000 }, async () => {
    const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/agent/v1/tunnel`);
    let servedBy = '';
    ws.once('upgrade', (res) => (servedBy = String(res.headers['x-served-by'])));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send('ping');
    const reply = await new Promise<string>((r) => ws.once('message', (d) => r(d.toString())));
    expect(reply).toBe(`${servedBy}:ping:127.0.0.1`);
    expect(['web-agent-1', 'web-agent-2']).toContain(servedBy);
    ws.close();
  });
});

describe('ProxyHandler.handle refuses admin paths even without the runtime in front', () => {
  let server: Server | null = null;
  let role: RoleHandler | null = null;
  afterEach(async () => {
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    await role?.close();
  });

  it('404s /metrics, /healthz, /admin/hdr that reach handle', async () => {
    const spec: NodeSpec = { name: 'proxy', role: 'proxy', tier: 'proxy', host: '127.0.0.1', port: 0, secret: 's', proxy: { agentPool: [a1.url], userPool: [], names: { [a1.url]: 'web-agent-1' } } };
    const metrics = new NodeMetrics(spec);
    role = await createRole({ spec, store: null, metrics, log: () => undefined });
    const h = role;
    server = createServer((req, res) => void h.handle(req, res));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (const p of ['/metrics', '/healthz', '/admin/hdr']) {
      const r = await request(`${base}${p}`);
      expect([p, r.statusCode, r.headers['x-served-by']]).toEqual([p, 404, undefined]);
      await r.body.dump();
    }
    const ok = await request(`${base}/agent/echo`);
    expect(ok.headers['x-served-by']).toBe('web-agent-1');
    await ok.body.dump();
    metrics.close();
  });
});
