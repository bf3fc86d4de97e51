import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core/errors.js';
import { parseMix, parseStage, resolveSwarmConfig, type SwarmInput } from '../../src/swarm/config.js';
import { rateAtPerSec } from '../../src/swarm/schedule.js';

const T = 'http://127.0.0.1:8080';

function problems(input: SwarmInput): string[] {
  try {
    resolveSwarmConfig(input);
  } catch (err) {
    if (err instanceof ValidationError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('swarm flags', () => {
  it('defaults to 30% of the fleet per minute, periodic, per-checkin HTTP, 60 s', () => {
    const c = resolveSwarmConfig({ target: T, agents: 20_000 });
    expect(c.workload).toEqual({ kind: 'open', checkin: { kind: 'fraction', fractionPerMin: 0.3 } });
    expect(c.arrival).toBe('periodic');
    expect(c.connection).toBe('per-checkin');
    expect(c.durationMs).toBe(60_000);
    expect(rateAtPerSec(c.profile, 30_000)).toBeCloseTo(100, 9); // 20,000 × 0.3 / 60
    expect(c.mix).toEqual({ checkin: 1, heartbeat: 0, inventory: 0 });
  });

  it('accepts the three check-in forms and turns them into the same per-agent frequency math', () => {
    expect(rateAtPerSec(resolveSwarmConfig({ target: T, agents: 6000, checkinInterval: '5m' }).profile, 1)).toBeCloseTo(20, 9);
    expect(rateAtPerSec(resolveSwarmConfig({ target: T, agents: 6000, rate: '250/s' }).profile, 1)).toBeCloseTo(250, 9);
    expect(rateAtPerSec(resolveSwarmConfig({ target: T, agents: 6000, rate: '6600/min' }).profile, 1)).toBeCloseTo(110, 9);
    expect(rateAtPerSec(resolveSwarmConfig({ target: T, agents: 6000, checkin: '50%/min' }).profile, 1)).toBeCloseTo(50, 9);
  });

  it('makes --rate max a closed workload of --connections in all, with no check-in model and no schedule', () => {
    const c = resolveSwarmConfig({ target: T, rate: 'max', connections: 40, duration: '5s' });
    expect(c.workload).toEqual({ kind: 'closed', connections: 40 });
    expect(c.connection).toBe('pool');
    expect(c.durationMs).toBe(5000);
    expect(rateAtPerSec(c.profile, 1000)).toBe(0);
    expect(problems({ target: T, rate: 'max', connection: 'keepalive' })).toEqual(['--connection: --rate max needs --connection pool, got "keepalive"']);
    expect(problems({ target: 'ws://127.0.0.1:1', mode: 'ws', rate: 'max' })).toEqual(['--rate: max (a closed loop) applies to --mode http only, got --mode ws']);
  });

  it('builds ramps from stages, starting at 0 agents', () => {
    const c = resolveSwarmConfig({ target: T, stage: ['10s:1000', '20s:1000', '10s:4000@120/s'] });
    expect(c.durationMs).toBe(40_000);
    expect(c.agents).toBe(4000);
    expect(c.profile.points.map((p) => p.agents)).toEqual([0, 1000, 1000, 4000]);
    expect(rateAtPerSec(c.profile, 15_000)).toBeCloseTo(5, 9); // 1000 × 30%/min
    expect(rateAtPerSec(c.profile, 40_000)).toBeCloseTo(120, 9);
  });

  it.each([
    [{ agents: 0 }, '--agents: expected a whole number from 1 to 2000000, got 0'],
    [{ agents: 1.5 }, '--agents: expected a whole number from 1 to 2000000, got 1.5'],
    [{ checkin: 'often' }, '--checkin: expected a check-in fraction like "30%/min", above 0, got "often"'],
    [{ checkin: '0%/min' }, '--checkin: expected a check-in fraction like "30%/min", above 0, got "0%/min"'],
    [{ rate: 'fast' }, '--rate: expected a rate like "250/s" or "6600/min", above 0, got "fast"'],
    [{ checkinInterval: '5 minutes' }, '--checkin-interval: expected a duration like "250ms", "60s", "5m" or "1h", got "5 minutes"'],
    [{ duration: '10' }, '--duration: expected a duration like "250ms", "60s", "5m" or "1h", got "10"'],
    [{ arrival: 'bursty' }, '--arrival: expected one of periodic, poisson, got "bursty"'],
    [{ mode: 'grpc' }, '--mode: expected one of http, ws, got "grpc"'],
    [{ connection: 'reuse' }, '--connection: expected one of per-checkin, keepalive, pool, got "reuse"'],
    [{ workers: 'many' }, '--workers: expected a whole number from 1 to 64, got "many"'],
    [{ mix: 'checkin=1,reboot=2' }, '--mix: expected comma-separated KIND=WEIGHT with KIND in checkin, heartbeat, inventory, e.g. "checkin=90,inventory=5,heartbeat=5", got "checkin=1,reboot=2"'],
    [{ maxErrorRate: '200%' }, '--max-error-rate: expected a percentage like "1%" (0–100), got "200%"'],
    [{ stage: ['30s'] }, '--stage: expected DURATION:AGENTS[@CHECKIN] like "30s:1000", "2m:20000@30%/min" or "1m:5000@250/s", got "30s"'],
    [{ checkin: '30%/min', rate: '10/s' }, '--checkin, --checkin-interval, --rate: expected at most one of them, got 2'],
  ] as Array<[SwarmInput, string]>)('rejects %j with one exact line', (input, message) => {
    expect(problems({ target: T, ...input })).toEqual([message]);
  });

  it('lists every problem at once, not just the first', () => {
    expect(problems({ target: T, agents: -1, arrival: 'x', mode: 'y' })).toHaveLength(3);
  });

  it('requires a loopback target unless --allow-remote', () => {
    expect(problems({ target: 'http://10.0.0.5:8080' })).toEqual([
      '--target: http://10.0.0.5:8080 is not a loopback address (127.0.0.0/8, ::1, localhost); pass --allow-remote to load a remote stack on purpose',
    ]);
    expect(problems({ target: 'http://example.com' })).toHaveLength(1);
    expect(problems({ target: 'http://10.0.0.5:8080', allowRemote: true })).toEqual([]);
    expect(problems({ target: 'http://[::1]:8080' })).toEqual([]);
    expect(problems({ target: 'http://127.9.9.9:1' })).toEqual([]);
    expect(problems({})).toEqual(['--target: expected a URL like http://127.0.0.1:8080 (required), got nothing']);
    expect(problems({ target: 'ws://127.0.0.1:1' })).toEqual(['--target: expected a URL with scheme http or https, got "ws://127.0.0.1:1"']);
    expect(problems({ target: 'ws://127.0.0.1:1,ws://127.0.0.1:2', mode: 'ws' })).toEqual([]);
  });

  it('parses mixes and stages', () => {
    expect(parseMix('--mix', 'checkin=90, inventory=5,heartbeat=5')).toEqual({ checkin: 90, inventory: 5, heartbeat: 5 });
    expect(parseStage('--stage', '2m:20000@30%/min')).toEqual({ durationMs: 120_000, agents: 20_000, checkin: { kind: 'fraction', fractionPerMin: 0.3 } });
  });
});
