import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSelector } from '../../src/metrics/prom-selector.js';
import { settleMappedNodes, settleStack, StackNotRecoveredError } from '../../src/run/settle.js';
import type { RunningStack } from '../../src/stack/launcher.js';

/** A node whose /healthz reports the queue depth the test sets. */
let servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

async function node(queue: () => number): Promise<RunningStack['nodes'][number]> {
  const server = createServer((_req, res) => res.end(JSON.stringify({ queueDepth: queue(), db: null })));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { name: 'web-agent-1', role: 'web', tier: 'web-agent', url, metricsUrl: `${url}/metrics`, pid: 0 } as RunningStack['nodes'][number];
}

describe('settling between windows', () => {
  it('returns true once every queue is empty', async () => {
    let depth = 3;
    const n = await node(() => (depth > 0 ? depth-- : 0));
    const warnings: string[] = [];
    expect(await settleStack({ nodes: [n] }, new AbortController().signal, warnings, 5000)).toBe(true);
    expect(warnings).toEqual([]);
  });

  it('gives up at its bound, says so, and returns false: a search then stops on a stack that did not recover', async () => {
    const n = await node(() => 3148);
    const warnings: string[] = [];
    expect(await settleStack({ nodes: [n] }, new AbortController().signal, warnings, 300)).toBe(false);
    expect(warnings).toEqual(['queues had not drained 0.3 s after a window: the next window started on a loaded stack']);
    const err = new StackNotRecoveredError('step 4');
    expect(err.exitCode).toBe(3);
    expect(err.message).toBe('the stack did not recover after step 4: its queues had not drained 60 s later, so the next window would measure that backlog, not its own load');
  });
});

describe('settling an external stack (stack.nodes)', () => {
  it("waits on each node's mapped queue gauge, and asks no node whose mapping has none", async () => {
    let depth = 2;
    let asked = 0;
    const server = createServer((_req, res) => {
      asked++;
      res.end(`app_queue{pool="a"} ${depth > 0 ? depth-- : 0}\napp_queue{pool="b"} 0\n`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    const metricsUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
    const none = { requests: null, errors: null, busyWorkers: null, workers: null, utilization: null, queueDepth: null, latency: null };
    const queued = { name: 'api-1', role: 'web', tier: 'api', url: metricsUrl, metricsUrl, mapped: { mapping: 'm.yaml', signals: { ...none, queueDepth: parseSelector('app_queue') } } };
    const cpuOnly = { ...queued, name: 'db-host', mapped: { mapping: 'node-exporter', signals: none } };
    const warnings: string[] = [];
    expect(await settleMappedNodes([queued, cpuOnly], new AbortController().signal, warnings, 5000)).toBe(true);
    // 2, 1, then 0: three answers from the node with a queue, none for the other.
    expect(asked).toBe(3);
    expect(warnings).toEqual([]);
  });
});
