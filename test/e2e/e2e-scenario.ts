import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Scenario } from '../../src/scenario/types.js';

/** A profile-set file in a temp folder: the run reads profiles by name or file, as users give them. */
export function profileFile(name: string, set: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'rmmscale-e2e-'));
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ name, ...set }));
  return file;
}

/** A short ceiling search by raw rate on a small emulated stack (built in code, like loadScenario's output). */
export function rateSearch(name: string, topology: string, profile: string, o: { start: number; max: number; p99Ms: number; precision?: number; warmupMs?: number; measureMs?: number }): Scenario {
  return {
    shard: { index: 0, count: 1 },
    name,
    description: 'e2e test',
    file: null,
    stack: { topology, profile, proxy: 'builtin', db: 'sqlite', dbUrl: null, target: null, portBase: null, nodes: [] },
    fleet: {
      agents: 2000,
      checkin: { kind: 'fraction', fractionPerMin: 0.3, text: '30%/min' },
      mix: { checkin: 1, heartbeat: 0, inventory: 0 },
      transport: 'http',
      connection: 'keepalive',
      arrival: 'poisson',
      jitterMs: 0,
      seed: name,
      secret: 'e2e-secret',
      timeoutMs: 10_000,
    },
    stages: null,
    ceiling: { unit: 'rate', start: o.start, max: o.max, stepFactor: 1.5, precision: o.precision ?? 0.15, warmupMs: o.warmupMs ?? 2000, measureMs: o.measureMs ?? 5000, maxSteps: 9, grain: 1 },
    faults: [],
    background: { dashboard: { ratePerSec: 1 }, commands: null, integration: null },
    slo: { p99Ms: o.p99Ms, errorRate: 0.01, minAchievedRatio: 0.97 },
    thresholds: [],
    timeLimitMs: 170_000,
    plan: { agents: [20_000], redundancy: 'n+1', maxUtilization: 0.8 },
    agent: null,
    definition: { name },
  };
}
