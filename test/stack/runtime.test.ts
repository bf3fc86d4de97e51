import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeHdrSnapshot } from '../../src/core/protocol.js';
import { decodeHistogram } from '../../src/metrics/histogram.js';
import type { NodeReadyMessage, NodeSpec } from '../../src/stack/types.js';
import { ECHO_ROLE, alive, forkNode, stopNode, type ForkedNode } from '../helpers/fork-node.js';
import { until } from './proxy-backends.js';
import { deriveKey } from '../../src/core/identity.js';

const nodes: ForkedNode[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(stopNode));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The admin key of the secret `spec` gives every node. */
const ADMIN = { headers: { authorization: `Bearer ${deriveKey('s', 'admin')}` } };

function spec(over: Partial<NodeSpec> = {}): NodeSpec {
  return { name: 'echo-1', role: 'web', tier: 'web-agent', host: '127.0.0.1', port: 0, secret: 's', ...over };
}

async function start(s: NodeSpec): Promise<{ node: ForkedNode; ready: NodeReadyMessage }> {
  const node = forkNode(s, { roleModule: ECHO_ROLE });
  nodes.push(node);
  const m = await node.first;
  if (m.type !== 'ready') throw new Error(`node failed: ${m.error}`);
  return { node, ready: m };
}

/** The value of one Prometheus sample line, by name and a label substring. */
function sample(text: string, name: string, labelPart = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(name) && !l.startsWith('#') && l.includes(labelPart) && /[{ ]/.test(l[name.length]));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : undefined;
}

describe('a node process (node-main + runtime) with a test role', () => {
  it('reports ready over IPC and serves /healthz, /metrics and /admin/hdr itself', async () => {
    const { node, ready } = await start(spec());
    expect(ready).toMatchObject({ type: 'ready', name: 'echo-1', role: 'web', pid: node.proc.pid });
    expect(ready.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(ready.metricsUrl).toBe(`${ready.url}/metrics`);
    for (let i = 0; i < 5; i++) expect((await fetch(`${ready.url}/work`)).status).toBe(200);
    expect((await fetch(`${ready.url}/other`)).status).toBe(404);
    expect((await fetch(`${ready.url}/admin/nothing`, ADMIN)).status).toBe(404); // admin space never reaches the role

    const health = (await (await fetch(`${ready.url}/healthz`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ ok: true, node: 'echo-1', role: 'web', tier: 'web-agent', pid: node.proc.pid, inflight: 0, busyWorkers: null, hostLimited: false });
    expect(Object.keys(health)).toEqual(expect.arrayContaining(['eventLoopDelayP99Ms', 'hostCpu', 'hostSteal', 'utilization', 'queueDepth']));

    const text = await (await fetch(ready.metricsUrl)).text();
    expect(sample(text, 'rmmscale_requests_total', 'route="work",status="200"')).toBe(5);
    expect(sample(text, 'rmmscale_requests_total', 'route="other",status="404"')).toBe(1);
    expect(sample(text, 'rmmscale_request_duration_seconds_count', 'route="work"')).toBe(5);
    expect(sample(text, 'rmmscale_request_duration_seconds_bucket', 'route="work",le="+Inf"')).toBe(5);
    expect(sample(text, 'rmmscale_events_total', 'event="echo"')).toBe(6);
    expect(sample(text, 'rmmscale_role_gauge', 'gauge="echo_ready"')).toBe(1);
    for (const name of ['rmmscale_inflight_requests', 'rmmscale_event_loop_delay_p99_seconds', 'rmmscale_host_cpu_ratio', 'rmmscale_host_steal_ratio', 'rmmscale_host_limited', 'process_cpu_seconds_total', 'process_resident_memory_bytes']) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(1e6);
    expect(text).not.toContain('rmmscale_busy_workers'); // no profile, no limiter metrics

    const hdr = (await (await fetch(`${ready.url}/admin/hdr`, ADMIN)).json()) as NodeHdrSnapshot;
    expect(hdr.node).toBe('echo-1');
    expect(decodeHistogram(hdr.histograms.work).totalCount).toBe(5);
    expect(decodeHistogram(hdr.histograms['op:echo-op']).totalCount).toBe(6);
    expect(hdr.perSecond.work.reduce((a, b) => a + b.count, 0)).toBe(5);
  });

  it('the capacity limiter: busy workers and queue depth exported, 503 when the queue is full, unlimited routes bypass it', async () => {
    // A service long enough (3 s) that the steps below happen inside it; each waits for the node's
    // own gauges, not for a guessed sleep.
    const { ready } = await start(spec({ profile: { workers: 1, queue: 1, service: { dist: 'constant', meanMs: 3000 } } }));
    const metrics = async (): Promise<string> => (await fetch(ready.metricsUrl)).text();
    const ended: string[] = [];
    const first = fetch(`${ready.url}/work`).then((r) => (ended.push('first'), r));
    expect(await until(async () => sample(await metrics(), 'rmmscale_busy_workers') === 1, 5000)).toBe(true);
    const second = fetch(`${ready.url}/work`).then((r) => (ended.push('second'), r));
    expect(await until(async () => sample(await metrics(), 'rmmscale_queue_depth') === 1, 5000)).toBe(true);
    const during = await metrics();
    expect(sample(during, 'rmmscale_busy_workers')).toBe(1);
    expect(sample(during, 'rmmscale_inflight_requests')).toBe(2);
    const third = await fetch(`${ready.url}/work`);
    expect(third.status).toBe(503);
    expect(third.headers.get('retry-after')).toBe('1');
    // Not queued behind the first request: it answers while both are still held.
    expect((await fetch(`${ready.url}/unlimited`)).status).toBe(200);
    expect(ended).toEqual([]);
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    expect(ended).toEqual(['first', 'second']); // FIFO: the queued one after the one it waited for
    const after = await (await fetch(ready.metricsUrl)).text();
    expect(sample(after, 'rmmscale_rejected_total')).toBe(1);
    expect(sample(after, 'rmmscale_requests_total', 'route="work",status="503"')).toBe(1);
    expect(sample(after, 'rmmscale_requests_total', 'route="work",status="200"')).toBe(2);
    expect(sample(after, 'rmmscale_worker_slots')).toBe(1);
    // The node measured all three: the two it served and the one it refused (that a served one's
    // latency includes its queueing is the limiter's arithmetic, checked on a fake clock in
    // capacity.test.ts).
    const hdr = (await (await fetch(`${ready.url}/admin/hdr`, ADMIN)).json()) as NodeHdrSnapshot;
    expect(decodeHistogram(hdr.histograms.work).totalCount).toBe(3);
  });

  it('opens the store named by spec.db, limited by dbProfile, and passes the spec (limits) to the role', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rmmscale-runtime-'));
    dirs.push(dir);
    const { ready } = await start(spec({ db: { kind: 'sqlite', path: join(dir, 'db.sqlite') }, dbProfile: { workers: 2, queue: 10, service: { dist: 'constant', meanMs: 1 } }, limits: { maxBodyBytes: 4096 } }));
    expect(await (await fetch(`${ready.url}/store`)).json()).toEqual({ checkins: 0, kind: 'sqlite', maxBodyBytes: 4096 });
  });

  it('hands upgrades to the role', async () => {
    const { ready } = await start(spec({ name: 'echo-up' }));
    const { port } = new URL(ready.url);
    const head = await new Promise<string>((resolve, reject) => {
      const s = connect(Number(port), '127.0.0.1', () => s.write('GET /tunnel HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n'));
      let buf = '';
      s.on('data', (d) => (buf += d.toString()));
      s.on('end', () => resolve(buf));
      s.on('error', reject);
    });
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
    expect(head).toContain('x-node: echo-up');
  });

  it('applies spec.limits.headersTimeoutMs: slow headers get 408 and the connection closes', async () => {
    const { ready } = await start(spec({ limits: { headersTimeoutMs: 400, requestTimeoutMs: 800 } }));
    const { port } = new URL(ready.url);
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect(Number(port), '127.0.0.1', () => s.write('GET /work HTTP/1.1\r\nhost: x\r\n')); // never finishes
      let buf = '';
      const bound = setTimeout(() => s.destroy(new Error('no timeout within 5 s')), 5000);
      s.on('data', (d) => (buf += d.toString()));
      s.on('close', () => {
        clearTimeout(bound);
        resolve(buf);
      });
      s.on('error', reject);
    });
    expect(reply.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
  });

  it('a role that refuses to start (a known error): failed message, one stderr line, exit 3', async () => {
    const node = forkNode(spec({ name: 'refuse-2' }), { roleModule: ECHO_ROLE });
    nodes.push(node);
    expect(await node.first).toEqual({ type: 'failed', name: 'refuse-2', code: 'ERR_STACK', error: 'refuse-2: refused to start, the lease is held by node other' });
    expect(await node.exited).toEqual({ code: 3, signal: null });
    expect(node.stderr()).toBe('[refuse-2] refuse-2: refused to start, the lease is held by node other\n');
  });

  it('an unknown failure at start: failed message on one line (the stack goes to stderr), exit 3', async () => {
    const node = forkNode(spec({ name: 'crash-1' }), { roleModule: ECHO_ROLE });
    nodes.push(node);
    expect(await node.first).toEqual({ type: 'failed', name: 'crash-1', code: 'ERR_NODE_START', error: 'a bug; with a second line' });
    expect((await node.exited).code).toBe(3);
    expect(node.stderr()).toContain('TypeError: a bug');
  });

  it('a port already in use fails the start with exit 3', async () => {
    const { ready } = await start(spec());
    const node = forkNode(spec({ name: 'echo-2', port: Number(new URL(ready.url).port) }), { roleModule: ECHO_ROLE });

    nodes.push(node);
    const port = new URL(ready.url).port;
    expect(await node.first).toEqual({ type: 'failed', name: 'echo-2', code: 'ERR_STACK', error: `echo-2: cannot listen on 127.0.0.1:${port}: EADDRINUSE` });
    expect((await node.exited).code).toBe(3);
    expect(node.stderr()).toBe(`[echo-2] echo-2: cannot listen on 127.0.0.1:${port}: EADDRINUSE\n`);
  });

  it('exits 0 on SIGTERM and closes its port', async () => {
    const { node, ready } = await start(spec());
    node.proc.kill('SIGTERM');
    expect(await node.exited).toEqual({ code: 0, signal: null });
    await expect(fetch(`${ready.url}/healthz`)).rejects.toThrow();
  });

  it('exits by itself when its launcher goes away (the IPC channel closes)', async () => {
    const { node } = await start(spec());
    const pid = node.proc.pid!;
    node.proc.disconnect();
    expect((await node.exited).code).toBe(0);
    expect(alive(pid)).toBe(false);
  });
});
