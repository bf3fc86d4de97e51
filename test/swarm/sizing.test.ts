import { describe, expect, it } from 'vitest';
import { resolveSwarmConfig } from '../../src/swarm/config.js';
import { sizeRun, tunnelBudget } from '../../src/swarm/sizing.js';

/** Worker count, caps and source addresses from the load and the open-file limit (read at run time). */

const FD = 20_000; // this machine's hard limit

describe('sizeRun', () => {
  it('fills tunnel workers to 90% of the file limit less their own files', () => {
    expect(tunnelBudget(FD)).toBe(17_936);
    expect(tunnelBudget(1024)).toBe(857);
    expect(tunnelBudget(100)).toBe(64);
    const s = sizeRun(resolveSwarmConfig({ mode: 'ws', target: 'ws://127.0.0.1:9001/t', agents: 100_000, checkinInterval: '1h' }), FD);
    expect(s.workers).toBe(6); // 100,000 / 17,936 = 5.6
    expect(s.sourceAddresses).toHaveLength(25); // 100,000 / 4,000 per address
    expect(s.sourceAddresses[0]).toBe('127.0.0.2');
    expect(sizeRun(resolveSwarmConfig({ mode: 'ws', target: 'ws://127.0.0.1:9001/t', agents: 17_936, checkinInterval: '1h' }), FD).workers).toBe(1);
    expect(sizeRun(resolveSwarmConfig({ mode: 'ws', target: 'ws://127.0.0.1:9001/t', agents: 17_937, checkinInterval: '1h' }), FD).workers).toBe(2);
  });

  it('gives each shard of a loopback fleet its own source addresses (issue 16: 4 shards of 100,000 all bound 127.0.0.2–8)', () => {
    const shard = (i: number) => sizeRun(resolveSwarmConfig({ mode: 'ws', target: 'ws://127.0.0.1:9001/t', agents: 100_000, checkinInterval: '1h', shard: `${i}/4` }), FD);
    const all = [0, 1, 2, 3].map((i) => shard(i).sourceAddresses);
    expect(all.map((a) => a.length)).toEqual([7, 7, 7, 7]); // 25,000 / 4,000 per address
    expect(all[0][0]).toBe('127.0.0.2');
    expect(all[3]).toEqual(['127.0.0.23', '127.0.0.24', '127.0.0.25', '127.0.0.26', '127.0.0.27', '127.0.0.28', '127.0.0.29']);
    expect(new Set(all.flat()).size).toBe(28); // disjoint: ~3,600 sockets per address, as unsharded
    // Past 250 addresses they wrap round, still within 127.0.0.2–251.
    const last = sizeRun(resolveSwarmConfig({ mode: 'ws', target: 'ws://127.0.0.1:9001/t', agents: 100_000, checkinInterval: '1h', shard: '999/1000', sourceAddresses: 3 }), FD).sourceAddresses;
    expect(last).toEqual(['127.0.0.249', '127.0.0.250', '127.0.0.251']);
  });

  it('leaves keep-alive HTTP workers a fifth of their budget for requests in flight', () => {
    const s = sizeRun(resolveSwarmConfig({ target: 'http://127.0.0.1:8080', agents: 50_000, connection: 'keepalive' }), FD);
    // budget 14,000 (70%); 80% of it held: 50,000 / 11,200 = 4.5
    expect(s.workers).toBe(5);
    expect(s.maxInflight).toBe(14_000 - 10_000);
  });

  it('sizes per-check-in HTTP by rate alone', () => {
    // 20,000 agents at 30%/min = 100/s: one worker, the whole budget in flight.
    const s = sizeRun(resolveSwarmConfig({ target: 'http://127.0.0.1:8080', agents: 20_000 }), FD);
    expect(s.workers).toBe(1);
    expect(s.maxInflight).toBe(14_000);
    expect(s.peakRatePerSec).toBeCloseTo(100, 6);
    // 10,000/s needs two (8,000 a worker).
    expect(sizeRun(resolveSwarmConfig({ target: 'http://127.0.0.1:8080', agents: 20_000, rate: '10000/s' }), FD).workers).toBe(2);
  });

  it('shares a closed loop\'s --connections among its workers, as wrk\'s -c means the total', () => {
    const cfg = (workers: number) => resolveSwarmConfig({ target: 'http://127.0.0.1:8080', rate: 'max', connections: 100, workers });
    expect(sizeRun(cfg(1), FD).maxInflight).toBe(100);
    expect(sizeRun(cfg(2), FD).maxInflight).toBe(50);
    expect(sizeRun(cfg(3), FD).maxInflight).toBe(34);
    // An open-model pool keeps its connections per worker.
    expect(sizeRun(resolveSwarmConfig({ target: 'http://127.0.0.1:8080', agents: 20_000, rate: '10000/s', connection: 'pool', connections: 100 }), FD).maxInflight).toBe(100);
  });
});
