import { spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scrapeHaproxy, startHaproxy, type RunningHaproxy } from '../../src/stack/proxy/haproxy.js';
import { startBackend, until, type TestBackend } from './proxy-backends.js';

/**
 * The system's haproxy, for real, in front of fixture backends in their own processes. Missing
 * locally: skipped with the reason printed; missing under CI: a failure (.ci/run installs it).
 */
function haproxyAvailability(): { skip: boolean; reason: string } {
  const r = spawnSync(process.env.RMMSCALE_HAPROXY ?? 'haproxy', ['-v'], { encoding: 'utf8' });
  if (r.status === 0) return { skip: false, reason: '' };
  if (process.env.CI) throw new Error('haproxy is not installed under CI: the --proxy haproxy tests must run there (.ci/run installs the Debian package)');
  const reason = 'haproxy is not installed: HAProxy tests skipped (apt-get install haproxy to run them)';
  process.stderr.write(`${reason}\n`);
  return { skip: true, reason };
}

const avail = haproxyAvailability();

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describe.skipIf(avail.skip)('real HAProxy (--proxy haproxy) in front of two agent backends and a user backend', () => {
  let a1: TestBackend;
  let a2: TestBackend;
  let u1: TestBackend;
  let hap: RunningHaproxy;
  let pool: Pool;
  /** Which server answered each agent request of the first test. */
  const servedBy: string[] = [];

  beforeAll(async () => {
    [a1, a2, u1] = await Promise.all([startBackend('web-agent-1'), startBackend('web-agent-2'), startBackend('web-user-1')]);
    const names = Object.fromEntries([a1, a2, u1].map((b) => [b.url, b.name]));
    hap = await startHaproxy({ agentPool: [a1.url, a2.url], userPool: [u1.url], names, limits: { maxBodyBytes: 4096 } });
    // Well inside HAProxy's 5 s keep-alive timeout, so an idle connection is never reused as it closes.
    pool = new Pool(hap.url, { connections: 4, keepAliveTimeout: 1000 });
  });
  afterAll(async () => {
    await pool?.destroy();
    await hap?.stop();
    await Promise.all([a1, a2, u1].map((b) => b?.kill()));
  });

  async function call(method: 'GET' | 'POST', path: string, body?: string): Promise<[number, string]> {
    const r = await pool.request({ method, path, body });
    await r.body.dump();
    return [r.statusCode, String(r.headers['x-served-by'] ?? '')];
  }

  it('routes agent paths over the agent servers and user paths to the user server, with X-Served-By', async () => {
    // Servers start up; wait for the first passing checks.
    expect(await until(async () => (await scrapeHaproxy(hap.metricsUrl)).servers.every((s) => s.up), 3000)).toBe(true);
    const agent: string[] = [];
    for (let i = 0; i < 10; i++) agent.push((await call('POST', '/agent/echo', '{}'))[1]);
    // leastconn alternates one-at-a-time requests (5 and 5 on a quiet host); a health check that
    // times out on a loaded one marks a server down for a moment and tips the split, so the test
    // asks for both servers and only agent servers.
    expect(agent.every((n) => n === 'web-agent-1' || n === 'web-agent-2')).toBe(true);
    expect(agent.filter((n) => n === 'web-agent-1').length).toBeGreaterThanOrEqual(3);
    expect(agent.filter((n) => n === 'web-agent-2').length).toBeGreaterThanOrEqual(3);
    servedBy.push(...agent);
    for (let i = 0; i < 4; i++) expect(await call('GET', '/api/echo')).toEqual([200, 'web-user-1']);
  });

  it('scrapes per-server request counts from the exporter', async () => {
    const s = await scrapeHaproxy(hap.metricsUrl);
    const count = (backend: string, server: string): number => s.servers.find((x) => x.backend === backend && x.server === server)?.requests ?? NaN;
    const n1 = servedBy.filter((n) => n === 'web-agent-1').length;
    expect([count('agent', 'web-agent-1'), count('agent', 'web-agent-2'), count('user', 'web-user-1'), count('user', 'web-agent-1')]).toEqual([n1, 10 - n1, 4, 0]);
    expect((await a1.stats()).requests['/agent/echo']).toBe(n1);
  });

  it('never forwards /metrics, /healthz, /admin/ or unknown paths, and refuses oversized bodies', async () => {
    for (const p of ['/metrics', '/healthz', '/admin/hdr', '/other']) expect([p, ...(await call('GET', p))]).toEqual([p, 404, '']);
    expect((await call('POST', '/agent/echo', 'x'.repeat(5000)))[0]).toBe(413);
    const r = await fetch(hap.metricsUrl.replace('/metrics', '/healthz'));
    expect(r.status).toBe(200);
  });

  it('routes around a SIGKILLed agent server and falls back to the agent servers for user paths', { timeout: 15_000 }, async () => {
    await a2.kill();
    const k0 = Date.now();
    // The first requests after the kill: refused connections are retried on the other server.
    const after: Array<[number, string]> = [];
    for (let i = 0; i < 6; i++) after.push(await call('POST', '/agent/echo', '{}'));
    expect(after).toEqual(new Array(6).fill([200, 'web-agent-1']));
    process.stderr.write(`haproxy agent failover: 6 requests in ${Date.now() - k0} ms\n`);
    await u1.kill();
    const t0 = Date.now();
    let last: [number, string] = [0, ''];
    const moved = await until(async () => {
      last = await call('GET', '/api/echo');
      return last[0] === 200 && last[1] === 'web-agent-1';
    }, 2000);
    expect(last).toEqual([200, 'web-agent-1']);
    expect(moved).toBe(true);
    process.stderr.write(`haproxy user fallback after ${Date.now() - t0} ms\n`);
    const s = await scrapeHaproxy(hap.metricsUrl);
    expect(s.servers.filter((x) => !x.up).map((x) => `${x.backend}/${x.server}`).sort()).toEqual(['agent/web-agent-2', 'user/web-agent-2', 'user/web-user-1']);
  });

  it('picks its ports again when one it picked is taken before haproxy binds it; a port the caller chose is not retried', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const taken = (busy.address() as AddressInfo).port;
    const picked: number[] = [];
    let calls = 0;
    // The first pick returns the taken port, as if another process grabbed it after the pick.
    const pickPort = async (): Promise<number> => {
      const p = calls++ === 0 ? taken : await freeLoopbackPort();
      picked.push(p);
      return p;
    };
    const pools = { agentPool: [a1.url], userPool: [u1.url], names: { [a1.url]: a1.name, [u1.url]: u1.name } };
    try {
      const h = await startHaproxy({ ...pools, pickPort });
      try {
        expect(picked.length).toBe(4);
        expect(h.url).toBe(`http://127.0.0.1:${picked[2]}`);
        expect((await fetch(`${h.url}/healthz`)).status).toBeGreaterThan(0);
      } finally {
        await h.stop();
      }
      await expect(startHaproxy({ ...pools, port: taken, metricsPort: await freeLoopbackPort() })).rejects.toThrow(/--proxy haproxy: haproxy exited \(\d+\) at start: .*cannot bind socket/);
    } finally {
      busy.close();
    }
  });

  it('stop() ends haproxy by PID', async () => {
    const pid = hap.pid;
    await hap.stop();
    expect(() => process.kill(pid, 0)).toThrow();
  });
});
