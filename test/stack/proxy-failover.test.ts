import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { startBackend, startProxy, until, type TestBackend, type TestProxy } from './proxy-backends.js';

/**
 * kill -9 under load, in-process proxy and fixture backends in their own processes: an open-loop
 * sender (fixed intended send times, bounded count) posts non-idempotent requests while one agent
 * backend is SIGKILLed.
 */

/** Where the test stood when a request left: the facts its assertions order requests by (no clock). */
interface SentWhen {
  /** The backend's kill: not yet issued, issued, or the process has exited. */
  kill: 'before' | 'issued' | 'exited';
  /** The proxy had logged the backend's ejection. */
  ejected: boolean;
}

interface Sent extends SentWhen {
  status: number;
  servedBy: string;
  error: string;
}

/**
 * Open loop: `count` POSTs at `ratePerSec`, each fired at its intended time whatever came back.
 * `when(i)` is asked as request i leaves and tags it.
 */
async function openLoop(pool: Pool, path: string, count: number, ratePerSec: number, when: (i: number) => SentWhen): Promise<Sent[]> {
  const out: Promise<Sent>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const due = t0 + (i * 1000) / ratePerSec;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const at = when(i);
    out.push(
      pool
        .request({ method: 'POST', path, body: JSON.stringify({ i }), headers: { 'content-type': 'application/json' }, headersTimeout: 5000, bodyTimeout: 5000 })
        .then(async (r) => {
          await r.body.dump();
          return { ...at, status: r.statusCode, servedBy: String(r.headers['x-served-by'] ?? ''), error: '' };
        })
        .catch((e: Error & { code?: string }) => ({ ...at, status: 0, servedBy: '', error: e.code ?? e.message })),
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

  it('routes around a SIGKILLed agent backend, delivers nothing twice, and re-admits it when it is back', { timeout: 20_000 }, async () => {
    const [a1, a2, u1] = await Promise.all([startBackend('web-agent-1'), startBackend('web-agent-2'), startBackend('web-user-1')]);
    backends.push(a1, a2, u1);
    proxy = await startProxy([a1, a2], [u1]);
    pool = new Pool(proxy.url, { connections: 32 });
    // The kill goes out as request 200 leaves (1 s into 4 s at 200/s); each request is tagged with
    // where the kill and the proxy stood when it left, and the assertions order by those tags.
    const p = proxy;
    let kill: SentWhen['kill'] = 'before';
    let killed: Promise<void> = Promise.resolve();
    const sent = await openLoop(pool, '/agent/echo', 800, 200, (i) => {
      if (i === 200) {
        kill = 'issued';
        killed = a2.kill().then(() => void (kill = 'exited'));
      }
      return { kill, ejected: p.logs.some((l) => l.startsWith('ejected web-agent-2')) };
    });
    await killed;

    const ok = sent.filter((s) => s.status === 200);
    const failed = sent.filter((s) => s.status !== 200);
    expect(ok.length + failed.length).toBe(800);
    // Both backends served before the kill (in what shares is the balancer's business, and a loaded
    // host's); the dead process served nothing sent after it exited.
    const beforeKill = ok.filter((s) => s.kill === 'before');
    expect(new Set(beforeKill.map((s) => s.servedBy))).toEqual(new Set(['web-agent-1', 'web-agent-2']));
    expect(ok.filter((s) => s.kill === 'exited' && s.servedBy === 'web-agent-2')).toEqual([]);
    // Failures only for requests that left before the proxy ejected the node (in flight at the kill), and few.
    for (const f of failed) expect(f.ejected).toBe(false);
    expect(failed.length).toBeLessThanOrEqual(5);
    // The proxy ejected it while the load ran, and everything sent after that went to the survivor.
    const after = sent.filter((s) => s.ejected);
    expect(after.length).toBeGreaterThan(0);
    expect(new Set(after.map((s) => `${s.status} ${s.servedBy}`))).toEqual(new Set(['200 web-agent-1']));
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
