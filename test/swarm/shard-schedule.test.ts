import { describe, expect, it } from 'vitest';
import { deriveFleet } from '../../src/core/identity.js';
import { resolveSwarmConfig, type SwarmInput } from '../../src/swarm/config.js';
import { planConnects } from '../../src/swarm/connect-plan.js';
import { planFleet } from '../../src/swarm/fleet-schedule.js';
import { localAgents } from '../../src/swarm/local-agents.js';
import { shareCount, type LoadProfile } from '../../src/swarm/schedule.js';
import { parseShard, parseStartAt, workerShare, type Shard } from '../../src/swarm/shard.js';

/**
 * Exact sharding: n shards of W workers each hold disjoint slices of the fleet and of the send
 * schedule, and their union is exactly one unsharded run's fleet and schedule (ids, every send's
 * agent, time and fire number, and so the count of sends per second), for periodic and Poisson
 * arrivals, jitter, stages, and the tunnels' connect schedule.
 */

const SHARD_COUNTS = [1, 2, 3, 7];
/** Workers per shard: a shard sizes its own, so the union must not depend on them either. */
const WORKERS = [1, 2, 3];

function perSecond(times: number[]): number[] {
  const out: number[] = [];
  for (const t of times) out[Math.floor(t / 1000)] = (out[Math.floor(t / 1000)] ?? 0) + 1;
  return Array.from(out, (x) => x ?? 0);
}

type Fire = { agent: number; atMs: number; k: number };
const byTime = (a: Fire, b: Fire): number => a.atMs - b.atMs || a.agent - b.agent;

/** Every send of every worker of every shard of n. */
function shardedFires(profile: LoadProfile, seed: string, agents: number, n: number, opts: { arrival: 'periodic' | 'poisson'; jitterMs?: number }): Fire[][] {
  return Array.from({ length: n }, (_, index) => {
    const workers = WORKERS[index % WORKERS.length];
    const shard: Shard = { index, count: n };
    return Array.from({ length: workers }, (_, w) => planFleet(profile, seed, agents, 0, profile.durationMs, workerShare(shard, w, workers), opts)).flat();
  });
}

const cases: Array<{ name: string; flags: SwarmInput; arrival: 'periodic' | 'poisson'; jitterMs?: number }> = [
  { name: 'periodic, steady', flags: { agents: '2000', checkinInterval: '5s', duration: '20s' }, arrival: 'periodic' },
  { name: 'periodic, jittered', flags: { agents: '2000', checkinInterval: '10s', jitter: '2s', duration: '20s' }, arrival: 'periodic', jitterMs: 2000 },
  { name: 'poisson, steady', flags: { agents: '2000', rate: '150/s', arrival: 'poisson', duration: '20s' }, arrival: 'poisson' },
  { name: 'periodic, stages (ramp, hold, new rate, ramp down)', flags: { checkinInterval: '5s' }, arrival: 'periodic' },
  { name: 'poisson, stages', flags: { checkinInterval: '5s', arrival: 'poisson' }, arrival: 'poisson' },
];
const STAGES = ['6s:1500', '4s:1500', '4s:2100@40%/min', '5s:300'];

describe('exact sharding: the union of n shards is one unsharded run', () => {
  for (const c of cases) {
    it(`${c.name}: every send, and so the sends per second, for n = ${SHARD_COUNTS.join(', ')}`, () => {
      const staged = c.name.includes('stages');
      const cfg = resolveSwarmConfig({ target: 'http://127.0.0.1:9', seed: 'shards', ...c.flags, stage: staged ? STAGES : undefined });
      const whole = planFleet(cfg.profile, cfg.seed, cfg.agents, 0, cfg.profile.durationMs, undefined, c);
      expect(whole.length).toBeGreaterThan(1000);
      const wholePerSecond = perSecond(whole.map((f) => f.atMs));
      for (const n of SHARD_COUNTS) {
        const shards = shardedFires(cfg.profile, cfg.seed, cfg.agents, n, c);
        // Disjoint: shard i sends only for its agents g ≡ i (mod n).
        shards.forEach((fires, i) => expect(fires.every((f) => f.agent % n === i)).toBe(true));
        const union = shards.flat().sort(byTime);
        expect(union).toEqual(whole);
        expect(perSecond(union.map((f) => f.atMs))).toEqual(wholePerSecond);
      }
    });
  }

  it('gives each shard a disjoint slice of the fleet whose union is the fleet (ids)', () => {
    const agents = 1000;
    const fleet = deriveFleet('ids', 'secret', agents).map((a) => a.id);
    for (const n of SHARD_COUNTS) {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const workers = WORKERS[i % WORKERS.length];
        for (let w = 0; w < workers; w++) {
          const share = workerShare({ index: i, count: n }, w, workers);
          const local = localAgents({ seed: 'ids', secret: 'secret', agents, share, identitiesFile: null }, false);
          expect(local.count).toBe(shareCount(agents, share));
          for (let s = 0; s < local.count; s++) ids[share.first + s * share.stride] = local.idAt(s);
        }
      }
      expect(ids).toEqual(fleet);
    }
  });

  it('tunnels: every agent first connects at the same intended time in any split, paced and along the ramp', () => {
    const cfg = resolveSwarmConfig({ target: 'ws://127.0.0.1:9', mode: 'ws', seed: 't', checkinInterval: '5m', stage: ['2s:3000', '3s:3000'], connectRate: '1000/s' });
    const whole = planConnects(cfg.profile, 1000, cfg.agents);
    expect(whole).toHaveLength(3000);
    // The ramp activates 1,500 agents a second, faster than 1,000/s: the connects are paced…
    for (let g = 1; g < whole.length; g++) expect(whole[g].atMs - whole[g - 1].atMs).toBeGreaterThanOrEqual(1 - 1e-9);
    expect(whole[2999].atMs - whole[0].atMs).toBeCloseTo(2999, 6);
    // …and none before its agent is active (agent g at g / 1500 s into the ramp).
    for (const c of whole) expect(c.atMs).toBeGreaterThanOrEqual(((c.agent + 1 - 1e-9) / 3000) * 2000 - 1e-6);
    for (const n of SHARD_COUNTS) {
      const union = Array.from({ length: n }, (_, i) => {
        const workers = WORKERS[i % WORKERS.length];
        return Array.from({ length: workers }, (_, w) => planConnects(cfg.profile, 1000, cfg.agents, workerShare({ index: i, count: n }, w, workers))).flat();
      })
        .flat()
        .sort((a, b) => a.agent - b.agent);
      expect(union).toEqual(whole);
      expect(perSecond(union.map((c) => c.atMs))).toEqual(perSecond(whole.map((c) => c.atMs)));
    }
  });
});

describe('--shard and --start-at', () => {
  it('parses i/n and refuses anything else with one line', () => {
    expect(parseShard('--shard', '2/7')).toEqual({ index: 2, count: 7 });
    expect(() => parseShard('--shard', '3/3')).toThrow('--shard: expected "i/n": shard i of n, 0 ≤ i < n ≤ 1000, e.g. "0/3", got "3/3"');
    expect(() => parseShard('--shard', '1')).toThrow('--shard: expected "i/n"');
    expect(() => parseShard('--shard', '0/0')).toThrow('--shard: expected "i/n"');
  });

  it('reads an ISO time with a zone or epoch ms', () => {
    expect(parseStartAt('--start-at', '2026-12-06T01:00:00Z')).toBe(Date.UTC(2026, 11, 6, 1, 0, 0));
    expect(parseStartAt('--start-at', '1796000000000')).toBe(1796000000000);
    expect(() => parseStartAt('--start-at', '2026-12-06 01:00')).toThrow('--start-at: expected an ISO 8601 time with a zone');
  });

  it('checks --shard in the swarm configuration, listing the problem with the others', () => {
    expect(resolveSwarmConfig({ target: 'http://127.0.0.1:9', shard: '1/4' }).shard).toEqual({ index: 1, count: 4 });
    expect(() => resolveSwarmConfig({ target: 'http://127.0.0.1:9', shard: '4/4', rate: 'max' })).toThrow('--shard: expected "i/n"');
    expect(() => resolveSwarmConfig({ target: 'http://127.0.0.1:9', shard: '1/2', rate: 'max', connection: 'pool' })).toThrow('--shard: a closed loop (--rate max) has no schedule to split');
  });
});
