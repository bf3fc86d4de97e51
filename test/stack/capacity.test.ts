import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Pool } from 'undici';
import { erlangC } from '../../src/analysis/erlang-c.js';
import { Rng } from '../../src/core/random.js';
import { CapacityGate, lognormalSigma, QueueFullError, serviceSampler } from '../../src/stack/capacity.js';

let server: Server | null = null;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = null;
});

describe('Erlang C (M/M/c)', () => {
  it('matches the textbook values', () => {
    // c = 4, λ = 150/s, 1/μ = 20 ms → a = 3 Erlangs, ρ = 0.75.
    const q = erlangC(150, 4, 20);
    expect(q.utilization).toBeCloseTo(0.75, 12);
    expect(q.probWait).toBeCloseTo(0.509434, 6); // C(4, 3) = 27/53
    expect(q.meanWaitMs).toBeCloseTo((0.509434 / 50) * 1000, 3); // C / (cμ − λ) = 10.19 ms
    expect(q.meanResponseMs).toBeCloseTo(30.1887, 3);
    expect(erlangC(1, 1, 500).meanResponseMs).toBeCloseTo(1000, 9); // M/M/1: W = 1/(μ−λ)
    expect(erlangC(300, 4, 20).meanResponseMs).toBe(Infinity); // ρ > 1
  });
});

describe('service-time samplers', () => {
  it('have the requested means (and the lognormal its p99), deterministically per seed', () => {
    const n = 200_000;
    const mean = (f: () => number): number => {
      let s = 0;
      for (let i = 0; i < n; i++) s += f();
      return s / n;
    };
    expect(mean(serviceSampler({ dist: 'constant', meanMs: 7 }, new Rng('a')))).toBe(7);
    expect(mean(serviceSampler({ dist: 'exponential', meanMs: 20 }, new Rng('a')))).toBeCloseTo(20, 0);
    const ln = serviceSampler({ dist: 'lognormal', meanMs: 50, p99Ms: 200 }, new Rng('b'));
    const xs = Array.from({ length: n }, ln).sort((a, b) => a - b);
    expect(xs.reduce((a, b) => a + b, 0) / n).toBeCloseTo(50, 0);
    expect(xs[Math.floor(n * 0.99)] / 200).toBeGreaterThan(0.97);
    expect(xs[Math.floor(n * 0.99)] / 200).toBeLessThan(1.03);
    expect(lognormalSigma(50, 200)).toBeCloseTo(0.7018, 3); // z − √(z² − 2·ln 4)
    expect(serviceSampler({ dist: 'exponential', meanMs: 20 }, new Rng('s'))()).toBe(serviceSampler({ dist: 'exponential', meanMs: 20 }, new Rng('s'))());
  });
});

describe('the capacity gate', () => {
  it('holds `workers` at once, queues FIFO up to `queue`, then refuses', async () => {
    const gate = new CapacityGate({ workers: 2, queue: 1, service: { dist: 'constant', meanMs: 30 } });
    const order: number[] = [];
    const jobs = [1, 2, 3].map((i) => gate.run(() => order.push(i)));
    expect(gate.busy).toBe(2);
    expect(gate.queued).toBe(1);
    await expect(gate.run(() => 4)).rejects.toBeInstanceOf(QueueFullError);
    expect(gate.rejected).toBe(1);
    await Promise.all(jobs);
    expect(order).toEqual([1, 2, 3]);
    expect(gate.busy).toBe(0);
  });

  it('a node with workers 4, exponential 20 ms, under Poisson 150/s: mean response within 10% of Erlang C', async () => {
    const gate = new CapacityGate({ workers: 4, queue: 10_000, service: { dist: 'exponential', meanMs: 20 } }, { seed: 'mmc' });
    server = createServer((req, res) => {
      req.resume();
      gate.run(() => res.end('ok')).catch(() => res.writeHead(503).end());
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const client = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 200, pipelining: 1 });
    // Open loop: Poisson arrivals at 150/s, 3,000 requests (~20 s), latency from the intended time.
    const rng = new Rng('arrivals');
    const total = 3000;
    const latencies: number[] = [];
    const t0 = performance.now() + 50;
    let intended = t0;
    const sends: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      intended += rng.exponential(1000 / 150);
      const at = intended;
      const wait = at - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      sends.push(
        client.request({ path: '/', method: 'GET' }).then(async (r) => {
          await r.body.dump();
          latencies.push(performance.now() - at);
        }),
      );
    }
    await Promise.all(sends);
    await client.close();
    const measured = latencies.reduce((a, b) => a + b, 0) / latencies.length;
    const predicted = erlangC(150, 4, 20).meanResponseMs; // 30.19 ms
    expect(latencies).toHaveLength(total);
    expect(Math.abs(measured - predicted) / predicted).toBeLessThan(0.1);
  }, 60_000);
});
