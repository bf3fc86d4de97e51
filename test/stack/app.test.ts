import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadRole } from '../../src/stack/roles/index.js';
import { DbAgent, LEASE_NAME } from '../../src/stack/roles/app.js';
import { NodeMetrics } from '../../src/stack/runtime/node-metrics.js';
import { SqliteStore } from '../../src/stack/store/sqlite.js';
import type { NodeReadyMessage, NodeSpec, RoleContext, Store } from '../../src/stack/types.js';
import { forkNode, stopNode, type ForkedNode } from '../helpers/fork-node.js';
import { startRole } from './role-harness.js';
import { SECRET, agent, asAgent, asUser, call, checkinOf } from './web-fixture.js';
import { deriveKey } from '../../src/core/identity.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, limitMs = 10_000): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('app role: the DBAgent singleton', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function sqlite(): Promise<{ store: SqliteStore; path: string }> {
    const dir = mkdtempSync(join(tmpdir(), 'rmmscale-app-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'db.sqlite');
    const store = new SqliteStore(path);
    await store.init();
    cleanups.push(() => store.close());
    return { store, path };
  }

  function ctxFor(name: string, store: SqliteStore, loopScale = 1): RoleContext {
    const spec: NodeSpec = { name, role: 'app', tier: 'app', host: '127.0.0.1', port: 0, secret: SECRET, app: { loopScale } };
    const metrics = new NodeMetrics(spec);
    cleanups.push(() => metrics.close());
    return { spec, store, metrics, log: () => undefined };
  }

  /**
   * A holder that took the lease (TTL 600 ms) on its own connection, which then died: no renewals,
   * nothing released. `untilMs`: when its lease lapses.
   */
  async function crashedHolder(store: SqliteStore, path: string): Promise<{ crashed: DbAgent; untilMs: number }> {
    const crashedStore = new SqliteStore(path);
    const crashed = new DbAgent(ctxFor('app-crashed', crashedStore), crashedStore, { leaseTtlMs: 600, renewMs: 100 });
    await crashed.start();
    cleanups.push(() => crashed.stop());
    const untilMs = (await store.leaseHolder(LEASE_NAME))!.untilMs;
    await crashedStore.close();
    return { crashed, untilMs };
  }

  /** Metrics that remember counts and gauges, to read in the test. */
  function recording(): RoleContext['metrics'] & { counts: Map<string, number>; gauges: Map<string, number> } {
    const counts = new Map<string, number>();
    const gauges = new Map<string, number>();
    return {
      counts,
      gauges,
      count: (name, by = 1) => void counts.set(name, (counts.get(name) ?? 0) + by),
      gauge: (name, v) => void gauges.set(name, v),
      observeUs: () => undefined,
      request: () => undefined,
    };
  }

  /**
   * A store whose calls can be held, as if the process were paused (SIGSTOP) or cut off: held calls
   * wait, then go on when released, late, with what they carried when they started.
   */
  function pausable(store: Store): { store: Store; pause: () => void; resume: () => void } {
    let gate: Promise<void> | null = null;
    let open: () => void = () => undefined;
    const wrapped = new Proxy(store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        return async (...args: unknown[]) => {
          if (gate) await gate;
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    return {
      store: wrapped,
      pause: () => void (gate = new Promise<void>((r) => (open = r))),
      resume: () => {
        gate = null;
        open();
      },
    };
  }

  it('a second instance stands by instead of failing, and leads once the first stops cleanly', async () => {
    const { store } = await sqlite();
    const first = new DbAgent(ctxFor('app-1', store), store, { leaseTtlMs: 600, renewMs: 100 });
    await first.start();
    cleanups.push(() => first.stop());
    const log: string[] = [];
    const secondCtx = { ...ctxFor('app-2', store), log: (m: string) => void log.push(m) };
    const second = new DbAgent(secondCtx, store, { leaseTtlMs: 600, renewMs: 100 });
    await second.start();
    cleanups.push(() => second.stop());
    expect([first.state, second.state]).toEqual(['leader', 'standby']);
    const lease = await store.leaseHolder(LEASE_NAME);
    expect(lease?.holder).toMatch(new RegExp(`^app-1:${process.pid}#[A-Za-z0-9_-]{16}$`));
    expect(log[0]).toBe(`standby: the DBAgent lease is held by app-1:${process.pid} until ${new Date(lease!.untilMs).toISOString()}; taking over when it lapses`);
    await first.stop();
    await until('the standby to lead', async () => second.leader);
    expect(second.leaseTerm).toBe(first.leaseTerm + 1);
    expect((await store.leaseHolder(LEASE_NAME))?.holder).toMatch(new RegExp(`^app-2:${process.pid}#`));
  });

  it('a crashed holder (no renewals, no release) is taken over once its lease expires, not before, under the next term', async () => {
    const { store, path } = await sqlite();
    const { crashed, untilMs } = await crashedHolder(store, path);
    const next = new DbAgent(ctxFor('app-next', store), store, { leaseTtlMs: 600, renewMs: 100 });
    cleanups.push(() => next.stop());
    await next.start();
    expect(next.state).toBe('standby');
    const tookOverAt = await until('the takeover', async () => (next.leader ? Date.now() : null));
    expect(tookOverAt).toBeGreaterThan(untilMs);
    expect(crashed.leader).toBe(false);
    expect(next.leaseTerm).toBe(crashed.leaseTerm + 1);
  });

  it('a standby tries again the moment a dead holder\'s lease lapses, not at its next poll', async () => {
    const { store, path } = await sqlite();
    // The dead holder's lease lapses 600 ms after it took it; the standby's own TTL is 30 s, so its
    // poll is 1 s: a standby that only polled would lead up to 1 s after the lapse.
    const { untilMs } = await crashedHolder(store, path);
    const metrics = recording();
    const next = new DbAgent({ ...ctxFor('app-next', store), metrics }, store, { leaseTtlMs: 30_000, renewMs: 10_000 });
    cleanups.push(() => next.stop());
    await next.start();
    expect(next.state).toBe('standby');
    await until('the takeover', async () => next.leader);
    // The instance's own timestamp of its acquire: past the lapse, and well before a 1 s poll.
    const ledAtMs = metrics.gauges.get('dbagent:led-since-ms')!;
    expect(ledAtMs).toBeGreaterThan(untilMs);
    expect(ledAtMs - untilMs).toBeLessThan(300);
  });

  it('fencing: a leader paused past its TTL cannot write when it wakes; it stands by, and the new leader keeps writing', async () => {
    const { store, path } = await sqlite();
    const aStore = pausable(new SqliteStore(path));
    cleanups.push(() => aStore.store.close());
    const aMetrics = recording();
    const a = new DbAgent({ ...ctxFor('app-a', store, 0.001), metrics: aMetrics }, aStore.store, { leaseTtlMs: 600, renewMs: 100 });
    await a.start();
    cleanups.push(() => a.stop());
    const b = new DbAgent(ctxFor('app-b', store, 0.001), store, { leaseTtlMs: 600, renewMs: 100 });
    await b.start();
    cleanups.push(() => b.stop());
    await until('a loop of A to run', async () => (aMetrics.counts.get('loop:detect-offline') ?? 0) > 0);
    // A pauses: its renewals and the loop runs it starts from now on wait, with A's term.
    aStore.pause();
    await until('B to take over', async () => b.leader);
    expect(b.leaseTerm).toBe(a.leaseTerm + 1);
    const aRowsBefore = [...aMetrics.counts].filter(([k]) => k.endsWith(':rows')).reduce((t, [, n]) => t + n, 0);
    aStore.resume();
    await until('A to stand by', async () => a.state === 'standby');
    // What A started while paused reached the store late, under its old term: refused.
    expect(aMetrics.counts.get('dbagent:fenced') ?? 0).toBeGreaterThan(0);
    expect([...aMetrics.counts].filter(([k]) => k.endsWith(':rows')).reduce((t, [, n]) => t + n, 0)).toBe(aRowsBefore);
    expect(aMetrics.gauges.get('dbagent:leader')).toBe(0);
    expect(aMetrics.gauges.get('dbagent:standby')).toBe(1);
    expect(b.leader).toBe(true);
  });

  it('loops run at loopScale, touch the database, and report counts and timings through the node metrics', async () => {
    const { store } = await sqlite();
    const now = Date.now();
    await store.checkin({ ...checkinOf(agent) }, now - 60 * 60_000); // long offline
    const node = await startRole({ role: 'app', name: 'app', secret: SECRET, app: { loopScale: 0.001 } }, store);
    cleanups.push(() => node.close());
    const text = await until('loop runs in /metrics', async () => {
      const t = await (await fetch(`${node.url}/metrics`)).text();
      return ['rebuild-groups', 'approve-patches', 'detect-offline', 'queue-email'].every((l) => t.includes(`event="loop:${l}"`)) ? t : null;
    });
    expect(text).toMatch(/rmmscale_events_total\{[^}]*event="loop:detect-offline:rows"[^}]*\} 1\n/);
    const hdr = (await (await fetch(`${node.url}/admin/hdr`, { headers: { authorization: `Bearer ${deriveKey(SECRET, 'admin')}` } })).json()) as { histograms: Record<string, string> };
    expect(Object.keys(hdr.histograms)).toEqual(expect.arrayContaining(['op:loop:rebuild-groups', 'op:loop:detect-offline']));
    expect((await call(node.url, 'GET', '/api/v1/agents', undefined, asUser())).status).toBe(404);
  });

  it('single role: web (both APIs) and the DBAgent loops in one process', async () => {
    const { store } = await sqlite();
    const node = await startRole({ role: 'single', name: 'single', secret: SECRET, app: { loopScale: 0.001 } }, store);
    cleanups.push(() => node.close());
    expect((await call(node.url, 'POST', '/agent/v1/checkin', checkinOf(agent), asAgent())).status).toBe(200);
    const groups = await until('groups rebuilt', async () => {
      const r = (await call(node.url, 'GET', '/api/v1/agents', undefined, asUser())).json as { agents: Array<{ groupName: string | null }> };
      return r.agents[0]?.groupName ?? null;
    });
    expect(groups).toBe(`${agent.client}/${agent.os}`);
    expect((await store.leaseHolder(LEASE_NAME))?.holder).toMatch(new RegExp(`^single:${process.pid}#`));
  });
});

describe('app role in real node processes', () => {
  const nodes: ForkedNode[] = [];
  let dir = '';
  afterEach(async () => {
    for (const n of nodes.splice(0)) await stopNode(n);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a second app process on the same database is a standby: ready, not leading, and leads once the first is killed', async () => {
    dir = mkdtempSync(join(tmpdir(), 'rmmscale-app-proc-'));
    const spec = (name: string): NodeSpec => ({
      name,
      role: 'app',
      tier: 'app',
      host: '127.0.0.1',
      port: 0,
      secret: SECRET,
      db: { kind: 'sqlite', path: join(dir, 'db.sqlite') },
      app: { leaseTtlMs: 1000, renewMs: 200 },
    });
    const gauge = async (url: string, name: string): Promise<number | null> => {
      const m = new RegExp(`rmmscale_role_gauge\\{[^}]*gauge="${name}"\\} (\\d+)`).exec(await (await fetch(url)).text());
      return m ? Number(m[1]) : null;
    };
    const first = forkNode(spec('app-1'));
    nodes.push(first);
    const r1 = (await first.first) as NodeReadyMessage;
    expect(r1.type).toBe('ready');
    const second = forkNode(spec('app-2'));
    nodes.push(second);
    const r2 = (await second.first) as NodeReadyMessage;
    expect(r2.type).toBe('ready');
    expect([await gauge(r1.metricsUrl, 'dbagent:leader'), await gauge(r2.metricsUrl, 'dbagent:leader'), await gauge(r2.metricsUrl, 'dbagent:standby')]).toEqual([1, 0, 1]);
    first.proc.kill('SIGKILL');
    await until('the standby process to lead', async () => (await gauge(r2.metricsUrl, 'dbagent:leader')) === 1);
    expect(await gauge(r2.metricsUrl, 'dbagent:term')).toBe(2);
    expect(second.stderr()).toMatch(/standby: the DBAgent lease is held by app-1:\d+ until/);
  });
});
