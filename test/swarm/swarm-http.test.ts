import { afterEach, describe, expect, it } from 'vitest';
import { resolveSwarmConfig, type SwarmInput } from '../../src/swarm/config.js';
import { runSwarm } from '../../src/swarm/coordinator.js';
import { readHlog, decodeHistogram } from '../../src/metrics/histogram.js';
import { startAgentServer, type TestAgentServer } from '../helpers/agent-server.js';
import { expectKeptScheduleUnlessStolen } from '../helpers/host-trust.js';

const SECRET = 'test-secret';
let server: TestAgentServer | null = null;

afterEach(async () => {
  await server?.close();
  server = null;
});

function config(input: SwarmInput) {
  return resolveSwarmConfig({ secret: SECRET, seed: 'swarm-test', ...input });
}

describe('swarm over HTTP against a real server', () => {
  it('delivers the scheduled check-ins, and the server counts exactly what the swarm reports', async () => {
    server = await startAgentServer(SECRET, { commandEvery: 25 });
    // 12,000 agents at 30%/min = 60 check-ins/s; 4 s → 240.
    const { result, hlog } = await runSwarm({ config: config({ target: server.url, agents: 12_000, duration: '4s', workers: 2 }) });
    const served = server.counts.get('/agent/v1/checkin') ?? 0;
    const checkin = result.ops.checkin;
    expect(server.rejected).toBe(0);
    expect(checkin.completed).toBe(served);
    expect(Math.abs(served - 240) / 240).toBeLessThan(0.02);
    // Commands returned with every 25th check-in come back as results, once each.
    expect(server.counts.get('/agent/v1/command-results') ?? 0).toBe(result.ops['command-result']?.completed ?? 0);
    // Results whose simulated execution ends after the run are not sent (their intended time is
    // outside the run): at most a few of the last commands.
    const results = result.ops['command-result']?.completed ?? 0;
    expect(results).toBeLessThanOrEqual(Math.floor(served / 25));
    expect(results).toBeGreaterThanOrEqual(Math.floor(served / 25) - 3);
    expect(result.summary.failed).toBe(0);
    expect(result.config.workers).toBe(2);
    expectKeptScheduleUnlessStolen(result);
    // Every interval and op is in the .hlog, and its counts add up to the result's.
    const intervals = readHlog(hlog).filter((i) => i.tag === 'checkin');
    expect(intervals.reduce((a, i) => a + i.histogram.totalCount, 0)).toBe(checkin.count);
    expect(decodeHistogram(checkin.histograms.corrected).totalCount).toBe(checkin.count);
  });

  it('per-checkin opens a connection per request; pool reuses a few; keepalive one per agent', async () => {
    server = await startAgentServer(SECRET);
    await runSwarm({ config: config({ target: server.url, agents: 50, rate: '100/s', duration: '2s', connection: 'per-checkin', workers: 1 }) });
    const perCheckinSockets = server.sockets;
    const perCheckinRequests = server.counts.get('/agent/v1/checkin') ?? 0;
    expect(perCheckinSockets).toBe(perCheckinRequests);

    await server.close();
    server = await startAgentServer(SECRET);
    await runSwarm({ config: config({ target: server.url, agents: 50, rate: '100/s', duration: '2s', connection: 'pool', connections: 4, workers: 1 }) });
    expect(server.sockets).toBeLessThanOrEqual(4);
    expect(server.counts.get('/agent/v1/checkin')).toBeGreaterThan(150);

    await server.close();
    server = await startAgentServer(SECRET);
    await runSwarm({ config: config({ target: server.url, agents: 20, rate: '100/s', duration: '2s', connection: 'keepalive', workers: 1 }) });
    expect(server.sockets).toBeLessThanOrEqual(20);
    expect(server.agents.size).toBe(20);
  });

  it('spreads sockets over loopback source addresses', async () => {
    server = await startAgentServer(SECRET);
    await runSwarm({ config: config({ target: server.url, agents: 40, rate: '80/s', duration: '1s', sourceAddresses: 4, workers: 1 }) });
    expect([...server.remoteAddresses].sort()).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']);
  });

  it('counts sends held back by a full pool as dropped and calls the run generator-bound', async () => {
    server = await startAgentServer(SECRET, { delayMs: 100 });
    // 200/s with 100 ms service needs ~20 in flight; the pool allows 2.
    const { result } = await runSwarm({ config: config({ target: server.url, agents: 200, rate: '200/s', duration: '2s', connection: 'pool', connections: 2, workers: 1 }) });
    expect(result.summary.dropped).toBeGreaterThan(300);
    expect(result.errors['dropped:inflight-cap']).toBe(result.summary.dropped);
    expect(result.summary.attempted + result.summary.dropped).toBe(result.summary.intended);
    expect(result.verdict.generatorBound).toBe(true);
    expect(result.verdict.trustworthy).toBe(false);
  });

  it('runs poisson arrivals at the mean rate', async () => {
    server = await startAgentServer(SECRET);
    const { result } = await runSwarm({ config: config({ target: server.url, agents: 500, rate: '200/s', duration: '3s', arrival: 'poisson', workers: 2 }) });
    // 600 expected; Poisson σ ≈ 24.5, 4σ bound.
    expect(Math.abs(result.ops.checkin.count - 600)).toBeLessThan(100);
    expect(result.ops.checkin.count).toBe(server.counts.get('/agent/v1/checkin'));
  });

  it('sends warm-up load for real but keeps it out of the totals, histograms and verdict', async () => {
    server = await startAgentServer(SECRET);
    const { result } = await runSwarm({ config: config({ target: server.url, agents: 200, rate: '100/s', warmup: '2s', duration: '2s', workers: 1 }) });
    const served = server.counts.get('/agent/v1/checkin') ?? 0;
    expect(Math.abs(served - 400)).toBeLessThanOrEqual(4); // warm-up + measured
    expect(Math.abs(result.ops.checkin.count - 200)).toBeLessThanOrEqual(2); // measured only
    expect(result.summary.intended).toBe(result.ops.checkin.count);
    expect(result.series.filter((p) => p.warmup).map((p) => p.tSec)).toEqual([1, 2]);
    expect(result.series.filter((p) => p.warmup).reduce((a, p) => a + p.completed, 0) + result.ops.checkin.count).toBe(served);
    expect(result.config).toMatchObject({ durationMs: 2000, warmupMs: 2000 });
    expect(result.summary.targetRatePerSec).toBe(100);
  });

  it('refuses an unreachable target with a one-line reason', async () => {
    await expect(runSwarm({ config: config({ target: 'http://127.0.0.1:9', agents: 10, duration: '1s' }) })).rejects.toThrow(
      'target http://127.0.0.1:9 is unreachable: connection refused (is the stack running?)',
    );
  });
});
