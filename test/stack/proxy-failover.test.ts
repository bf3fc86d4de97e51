import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { startBackend, startProxy, until, type TestBackend, type TestProxy } from './proxy-backends.js';

/**
 * kill -9 under load, in-process proxy and fixture backends in their own processes: an open-loop
 * sender (fixed intended send times, bounded count) posts non-idempotent requests while one agent
 * backend is SIGKILLed.
 */

interface Sent {
  atMs: number;
  status: number;
  servedBy: string;
  error: string;
}

/** Open loop: `count` POSTs at `ratePerSec`, each fired at its intended time whatever came back. */
async function openLoop(pool: Pool, path: string, count: number, ratePerSec: number, t0: number): Promise<Sent[]> {
  const out: Promise<Sent>[] = [];
  for (let i = 0; i < count; i++) {
    const due = t0 + (i * 1000) / ratePerSec;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const atMs = performance.now() - t0;
    out.push(
      pool
        .request({ method: 'POST', path, body: JSON.stringify({ i }), headers: { 'content-type': 'application/json' }, headersTimeout: 5000, bodyTimeout: 5000 })
        .then(async (r) => {
          await r.body.dump();
          return { atMs, status: r.statusCode, servedBy: String(r.headers['x-served-by'] ?? ''), error: '' };
        })
        .catch((e: Error & { code?: string }) => ({ atMs, status: 0, servedBy: '', error: e.code ?? e.message })),
    );
  }
  return Promise.all(out);
}

describe('built-in proxy: SIGKILL failover', () => {
  const backends: TestBackend[] = [];
  let proxy: TestProxy | null = null;
  let pool: Pool | null = null;
  afterEach(async () => {
    await pool?.destroy();
    await proxy?.close();
    await Promise.all(backends.splice(0).map((b) => b.kill()));
    pool = null;
    proxy = null;
  });

  it('routes around a SIGKILLed agent backend within 2 s, delivers nothing twice, and re-admits it when it is back', { timeout: 20_000 }, async () => {
    const [a1, a2, u1] = await Promise.all([startBackend('web-agent-1'), startBackend('web-agent-2'), startBackend('web-user-1')]);
    backends.push(a1, a2, u1);
    proxy = await startProxy([a1, a2], [u1]);
    pool = new Pool(proxy.url, { connections: 32 });
    const t0 = performance.now();
    const killAtMs = 1000;
    const killed = new Promise<void>((r) => setTimeout(() => void a2.kill().then(r), killAtMs));
    const sent = await openLoop(pool, '/agent/echo', 800, 200, t0); // 4 s at 200/s
    await killed;

    const ok = sent.filter((s) => s.status === 200);
    const failed = sent.filter((s) => s.status !== 200);
    // Both backends served before the kill; only the survivor from the kill on.
    expect(ok.filter((s) => s.atMs < killAtMs - 50 && s.servedBy === 'web-agent-2').length).toBeGreaterThan(50);
    const lateA2 = ok.filter((s) => s.atMs > killAtMs + 50 && s.servedBy === 'web-agent-2');
    expect(lateA2).toEqual([]);
    // Failures only for requests already in flight at the kill, never 2 s after it.
    for (const f of failed) expect(f.atMs).toBeLessThan(killAtMs + 2000);
    expect(failed.length).toBeLessThanOrEqual(5);
    const after = ok.filter((s) => s.atMs >= killAtMs + 2000);
    expect(after.length).toBeGreaterThan(150);
    expect(ok.length + failed.length).toBe(800);
    expect(new Set(after.map((s) => s.servedBy))).toEqual(new Set(['web-agent-1']));
    // No duplicates: the survivor received exactly the requests it acknowledged (a retry happens
    // only when nothing reached the first backend, so nothing was delivered twice).
    const a1Acked = ok.filter((s) => s.servedBy === 'web-agent-1').length;
    expect((await a1.stats()).requests['/agent/echo']).toBe(a1Acked);
    expect(proxy.logs.some((l) => l.startsWith('ejected web-agent-2'))).toBe(true);

    // Back on the same port: the next passing health check re-admits it.
    const back = await startBackend('web-agent-2', Number(new URL(a2.url).port));
    backends.push(back);
    const seen = new Set<string>();
    expect(
      await until(async () => {
        const r = await pool!.request({ method: 'POST', path: '/agent/echo', body: '{}' });
        await r.body.dump();
        seen.add(String(r.headers['x-served-by']));
        return seen.has('web-agent-2');
      }, 3000),
    ).toBe(true);
    expect(proxy.logs).toContain('re-admitted web-agent-2');
  });

  it('user paths fall back to the agent pool when the user backend is killed, and come back to it', { timeout: 20_000 }, async () => {
    const [a1, u1] = await Promise.all([startBackend('web-agent-1'), startBackend('web-user-1')]);
    backends.push(a1, u1);
    proxy = await startProxy([a1], [u1]);
    pool = new Pool(proxy.url, { connections: 4 });
    const servedBy = async (): Promise<[number, string]> => {
      const r = await pool!.request({ method: 'GET', path: '/api/echo' });
      await r.body.dump();
      return [r.statusCode, String(r.headers['x-served-by'])];
    };
    expect(await servedBy()).toEqual([200, 'web-user-1']);
    await u1.kill();
    // Not even the first request after the kill fails: the refused connection sends it on.
    expect(await servedBy()).toEqual([200, 'web-agent-1']);
    expect(await servedBy()).toEqual([200, 'web-agent-1']);
    const back = await startBackend('web-user-1', Number(new URL(u1.url).port));
    backends.push(back);
    expect(await until(async () => (await servedBy())[1] === 'web-user-1', 3000)).toBe(true);
  });

  it('answers 503 when every backend of the pool is down', { timeout: 10_000 }, async () => {
    const a1 = await startBackend('web-agent-1');
    backends.push(a1);
    proxy = await startProxy([a1], []);
    pool = new Pool(proxy.url, { connections: 2 });
    await a1.kill();
    // Ejected by the first refused connection, whether a health check's or a request's.
    expect(await until(() => proxy!.logs.some((l) => l.startsWith('ejected web-agent-1')), 2000)).toBe(true);
    const first = await pool.request({ method: 'GET', path: '/agent/echo' });
    expect(await first.body.text()).toContain('no healthy backend in the agent pool');
    expect(first.statusCode).toBe(503);
    const next = await pool.request({ method: 'GET', path: '/api/echo' });
    expect(await next.body.text()).toContain('no healthy backend in the user pool');
    expect([next.statusCode, next.headers['retry-after']]).toEqual([503, '1']);
  });
});
