import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { TelemetryBatcher } from '../../src/stack/relay/telemetry-batcher.js';
import { NodeMetrics } from '../../src/stack/runtime/node-metrics.js';
import { NodeServer } from '../../src/stack/runtime/node-server.js';
import { StoreUnavailableError } from '../../src/stack/store/errors.js';
import { GroupCommit } from '../../src/stack/store/group-commit.js';
import { RemoteStore } from '../../src/stack/store/remote.js';
import type { NodeSpec, RoleHandler, TelemetrySample } from '../../src/stack/types.js';
import { startBackend, startProxy, until } from './proxy-backends.js';

/**
 * Every queue and map keyed by client input has a bound, and past it the answer is 503 with
 * retry-after, under profile `none` too (issue 14). One flood per bound: each floods well past
 * its bound and checks that exactly the bound was taken, the rest refused at once, and that
 * what was taken still completes once the work it waited on is released.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A role that holds every request until release() (a stalled backend or database). */
function holdingRole(onRequest: (req: IncomingMessage, res: ServerResponse) => Promise<void> | void = () => undefined): RoleHandler & { release(): void; held: number } {
  const held: ServerResponse[] = [];
  return {
    routeOf: () => 'work',
    async handle(req, res) {
      await onRequest(req, res);
      if (res.headersSent) return;
      held.push(res);
    },
    release() {
      for (const r of held.splice(0)) r.writeHead(200).end('done');
    },
    get held() {
      return held.length;
    },
    close: async () => undefined,
  };
}

async function startNode(role: RoleHandler, limits: NodeSpec['limits']): Promise<{ url: string; metrics: NodeMetrics }> {
  const spec: NodeSpec = { name: 'flood-1', role: 'web', tier: 'web-agent', host: '127.0.0.1', port: 0, secret: 's', limits };
  const metrics = new NodeMetrics(spec);
  const server = new NodeServer(spec, role, metrics);
  const { url } = await server.listen();
  cleanups.push(() => server.close());
  return { url, metrics };
}

function eventCount(metrics: NodeMetrics, event: string): number {
  return Number(new RegExp(`rmmscale_events_total\\{[^}]*event="${event}"\\} (\\d+)`).exec(metrics.prometheus())?.[1] ?? 0);
}

/** Fire `n` requests at once over their own connections; statuses and retry-after per answer. */
async function flood(url: string, path: string, n: number): Promise<{ pool: Pool; answers: Array<Promise<{ status: number; retryAfter: string | undefined }>> }> {
  const pool = new Pool(url, { connections: n, pipelining: 1 });
  cleanups.push(() => pool.destroy());
  const answers = Array.from({ length: n }, () =>
    pool.request({ method: 'GET', path }).then(async (r) => {
      await r.body.dump();
      return { status: r.statusCode, retryAfter: r.headers['retry-after'] as string | undefined };
    }),
  );
  return { pool, answers };
}

describe('node runtime bounds, profile none (no capacity limiter)', () => {
  it('maxInflight: past it, 503 + retry-after at once; /healthz still answers; the held ones finish', async () => {
    const role = holdingRole();
    const { url, metrics } = await startNode(role, { maxInflight: 8 });
    const { answers } = await flood(url, '/work', 60);
    expect(await until(() => role.held === 8 && eventCount(metrics, 'inflight-refused') === 52, 5000)).toBe(true);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    role.release();
    const all = await Promise.all(answers);
    expect(all.filter((a) => a.status === 200)).toHaveLength(8);
    const refused = all.filter((a) => a.status === 503);
    expect(refused).toHaveLength(52);
    expect(refused.every((a) => a.retryAfter === '1')).toBe(true);
  });

  it('maxConnections: one more connection gets a 503 + retry-after written on it and is closed', async () => {
    const role = holdingRole();
    const { url, metrics } = await startNode(role, { maxConnections: 5 });
    const { port } = new URL(url);
    const open = async (): Promise<{ s: Socket; text: () => string; closed: Promise<void> }> => {
      const s = connect(Number(port), '127.0.0.1');
      cleanups.push(() => void s.destroy());
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString()));
      s.on('error', () => undefined);
      const closed = new Promise<void>((r) => s.once('close', () => r()));
      await new Promise<void>((r) => s.once('connect', () => r()));
      return { s, text: () => text, closed };
    };
    const kept: Array<Awaited<ReturnType<typeof open>>> = [];
    for (let i = 0; i < 5; i++) kept.push(await open());
    // The five are idle connections the server accepted; wait until it has counted them.
    await new Promise((r) => setTimeout(r, 100));
    // The next 20 are answered before they send anything, and closed.
    const extra = await Promise.all(Array.from({ length: 20 }, () => open()));
    await Promise.all(extra.map((e) => e.closed));
    for (const e of extra) {
      expect(e.text()).toMatch(/^HTTP\/1\.1 503 /);
      expect(e.text()).toMatch(/retry-after: 1/i);
    }
    // Refused connections never reached the role.
    expect(role.held).toBe(0);
    expect(eventCount(metrics, 'connections-refused')).toBe(20);
    // The admitted ones are served.
    kept[0].s.write('GET /work HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await until(() => role.held === 1, 2000)).toBe(true);
    role.release();
    expect(await until(() => kept[0].text().startsWith('HTTP/1.1 200'), 2000)).toBe(true);
  });

  it('group commit: past maxQueued writes, QueueFullError, answered 503 + retry-after by the runtime', async () => {
    let releaseCommit: () => void = () => undefined;
    const batches: number[] = [];
    const gc = new GroupCommit<null>(
      (jobs) =>
        new Promise<void>((resolve) => {
          batches.push(jobs.length);
          releaseCommit = () => {
            for (const j of jobs) j.resolve(j.run(null));
            resolve();
          };
        }),
      { windowMs: 0, maxBatch: 5, maxInFlight: 1, maxQueued: 10 },
    );
    // A role whose every request is one write: the database stalls, requests flood in.
    const role: RoleHandler = {
      routeOf: () => 'write',
      async handle(_req, res) {
        await gc.submit(() => 1);
        res.writeHead(200).end('committed');
      },
      close: async () => undefined,
    };
    const { url } = await startNode(role, {});
    const { answers } = await flood(url, '/write', 40);
    // The first batch is committing (stalled), 10 wait behind it, the rest are refused.
    expect(await until(() => batches.length === 1 && gc.queued === 10 && gc.refused === 40 - batches[0] - 10, 5000)).toBe(true);
    const taken = batches[0] + 10;
    for (let i = 0; i < 8; i++) {
      releaseCommit();
      await new Promise((r) => setTimeout(r, 30));
    }
    const all = await Promise.all(answers);
    expect(all.filter((a) => a.status === 200)).toHaveLength(taken);
    const refused = all.filter((a) => a.status === 503);
    expect(refused).toHaveLength(40 - taken);
    expect(refused.every((a) => a.retryAfter === '1')).toBe(true);
    // Below the bound again: writes are taken.
    const next = gc.submit(() => 2);
    await new Promise((r) => setTimeout(r, 20));
    releaseCommit();
    await expect(next).resolves.toBe(2);
  });
});

describe('store and proxy queues', () => {
  it('RemoteStore: past connections + maxQueued calls, StoreUnavailableError at once (web: 503 + retry-after)', async () => {
    const held: ServerResponse[] = [];
    let received = 0;
    const db: Server = createServer((req, res) => {
      received++;
      req.resume();
      held.push(res);
    });
    await new Promise<void>((r) => db.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => db.close(() => r())));
    cleanups.push(() => db.closeAllConnections());
    const store = new RemoteStore(`http://127.0.0.1:${(db.address() as AddressInfo).port}`, { key: 'test-db-key', connections: 2, maxQueued: 3 });
    cleanups.push(() => store.close());
    const calls = Array.from({ length: 30 }, () => store.countCheckins().then((n) => ({ ok: n }), (e: unknown) => ({ err: e })));
    // 2 sent, 3 waiting for a connection, 25 refused without touching the network.
    const early = await Promise.race([Promise.all(calls.slice(5)), new Promise((r) => setTimeout(() => r('timeout'), 1000))]);
    expect(early).not.toBe('timeout');
    expect((early as Array<{ err?: unknown }>).every((c) => c.err instanceof StoreUnavailableError)).toBe(true);
    expect(store.refused).toBe(25);
    expect(await until(() => received === 2, 2000)).toBe(true);
    // Answer everything: the 5 taken calls complete (the 3 queued ones go out as connections free up).
    const answer = (): void => {
      for (const r of held.splice(0)) r.writeHead(200, { 'content-type': 'application/json' }).end('{"result":7}');
    };
    answer();
    await until(() => received === 4, 2000);
    answer();
    await until(() => received === 5, 2000);
    answer();
    const taken = await Promise.all(calls.slice(0, 5));
    expect(taken).toEqual(Array(5).fill({ ok: 7 }));
  });

  it('proxy: each backend holds at most connections + queuePerBackend; past it 503 + retry-after', { timeout: 20_000 }, async () => {
    const backend = await startBackend('web-agent-1');
    cleanups.push(() => backend.kill());
    const proxy = await startProxy([backend], [], undefined, { queuePerBackend: 4 });
    cleanups.push(() => proxy.close());
    // 128 connections + 4 queued = 132 held by the stalled backend; 200 sent.
    const { answers } = await flood(proxy.url, '/agent/hold', 200);
    expect(await until(async () => eventCount(proxy.metrics, 'proxy-shed') === 68, 10_000)).toBe(true);
    expect(await until(async () => (await backend.stats()).holding === 128, 5000)).toBe(true);
    // Release until every taken request has been answered (the 4 queued reach the backend after the first 128).
    for (let i = 0; i < 3; i++) {
      await fetch(`${backend.url}/__release`, { method: 'POST' });
      await new Promise((r) => setTimeout(r, 200));
    }
    const all = await Promise.all(answers);
    expect(all.filter((a) => a.status === 200)).toHaveLength(132);
    const shed = all.filter((a) => a.status === 503);
    expect(shed).toHaveLength(68);
    expect(shed.every((a) => a.retryAfter === '1')).toBe(true);
    expect((await backend.stats()).requests['/agent/hold']).toBe(132);
  });
});

describe('relay telemetry: bounded per agent and in total', () => {
  function batcher(opts: { maxBuffered: number; maxPerOwner: number }) {
    const writes: Array<() => void> = [];
    const acked: string[] = [];
    const counts = new Map<string, number>();
    const b = new TelemetryBatcher<string>(
      { maxSamples: 1000, maxDelayMs: 1000, maxInFlight: 1, ...opts },
      {
        write: () => new Promise<void>((resolve) => writes.push(resolve)),
        committed: (owner, seq) => acked.push(`${owner}:${seq}`),
        failed: () => undefined,
        metrics: { count: (n, by = 1) => counts.set(n, (counts.get(n) ?? 0) + by), observeUs: () => undefined, request: () => undefined },
        nowMs: () => Date.now(),
      },
    );
    cleanups.push(() => b.close());
    return { b, writes, acked, counts };
  }
  const sample = (agentId: string, i: number): TelemetrySample => ({ agentId, relay: 'relay-1', atMs: i, cpuPct: 1, memPct: 2 });

  it('one agent flooding gets its share and no more; the others still get in; the total holds', async () => {
    const { b, writes, acked, counts } = batcher({ maxBuffered: 120, maxPerOwner: 50 });
    // (maxSamples 1000: nothing leaves by size; the one batch leaves after maxDelayMs.)
    const flooder = Array.from({ length: 5000 }, (_, i) => b.add(sample('a-flood', i), 'flood', i));
    expect(flooder.filter(Boolean)).toHaveLength(50);
    expect(counts.get('telemetry-dropped-agent-limit')).toBe(4950);
    // Quiet agents are not starved by the flooder.
    const quiet = Array.from({ length: 10 }, (_, i) => b.add(sample(`a-${i}`, 0), `q${i}`, 0));
    expect(quiet.every(Boolean)).toBe(true);
    // The shared bound still holds: 40 agents × 2 frames past 120 buffered are refused.
    const many = Array.from({ length: 80 }, (_, i) => b.add(sample(`m-${i}`, 0), `m${i >> 1}`, i));
    expect(b.buffered).toBe(120);
    expect(many.filter(Boolean)).toHaveLength(60);
    expect(counts.get('telemetry-dropped-backlog')).toBe(20);
    expect(b.heldBy('flood')).toBe(50);
    // Commits free the flooder's share (in flight counts until its batch ends).
    await new Promise((r) => setTimeout(r, 1100));
    expect(writes.length).toBe(1);
    expect(b.heldBy('flood')).toBe(50);
    writes[0]();
    expect(await until(() => b.heldBy('flood') === 0, 2000)).toBe(true);
    expect(acked.filter((a) => a.startsWith('flood:'))).toHaveLength(50);
    expect(b.add(sample('a-flood', 9999), 'flood', 9999)).toBe(true);
  });
});
