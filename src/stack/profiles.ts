import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { InvalidArgumentError, ValidationError } from '../core/errors.js';
import { lognormalSigma } from './capacity.js';
import { schemaProblems } from './schema-validate.js';
import type { CapacityProfile } from './types.js';

/**
 * Capacity profile sets: a profile per tier and one for the database. Built in: `none` (the real
 * work only) and `automate`, calibrated to the article's figures (docs/stack.md; the arithmetic is
 * checked in test/stack/topology.test.ts through src/stack/calibration.ts):
 * - 30%/min of 20,000 agents is 100 check-ins/s; a single server tops out near there: a web worker
 *   is held for its own service time (51 ms) and for the query it waits on (94 ms), so 16 workers
 *   saturate at 16 / 0.145 s ≈ 110 requests/s, and the check-in p99 crosses 1 s near 104/s;
 * - each agent web node adds about 20,000 agents (the same ≈ 104/s per node);
 * - the database limits the stack near 50,000 agents: 25 connections / 0.094 s ≈ 266 queries/s at
 *   saturation, p99 under 1 s up to ≈ 260/s, shared by 250 check-ins/s and the loops' and users'
 *   queries.
 * Other sets come from a YAML/JSON file (schemas/profile-set.schema.json).
 */
export interface ProfileSet {
  name: string;
  /** Request-level profile per tier (single, web-agent, web-user, relay, proxy…). */
  tiers: Record<string, CapacityProfile | undefined>;
  /** Query-level profile of the database (applied where the store lives). */
  db?: CapacityProfile;
}

const WEB: CapacityProfile = { workers: 16, queue: 4000, service: { dist: 'exponential', meanMs: 51 } };
/**
 * The analytics node's ingest of one relay batch. An assumption, not an article figure (seed 004
 * gives only query latency, p50 100 ms on 30-day windows): a small columnar insert, 20 ms, 4 at once.
 */
const ANALYTICS: CapacityProfile = { workers: 4, queue: 1000, service: { dist: 'exponential', meanMs: 20 } };

export const PROFILES: Record<string, ProfileSet> = {
  none: { name: 'none', tiers: {} },
  automate: {
    name: 'automate',
    tiers: { single: WEB, 'web-agent': WEB, 'web-user': WEB, analytics: ANALYTICS },
    db: { workers: 25, queue: 20_000, service: { dist: 'exponential', meanMs: 94 } },
  },
};

/** The queue bound when a file leaves it out. */
export const DEFAULT_QUEUE = 1000;

/** Requests/s a profile sustains at 100% utilisation: workers / mean service time. */
export function saturationRps(p: CapacityProfile): number {
  return (p.workers * 1000) / p.service.meanMs;
}

/** Fill defaults and check what a schema cannot (a lognormal's p99 must fit its mean). */
export function normalizeProfile(raw: CapacityProfile, at: string, problems: string[]): CapacityProfile {
  const p: CapacityProfile = { workers: raw.workers, queue: raw.queue ?? DEFAULT_QUEUE, service: { ...raw.service } };
  if (p.service.p99Ms !== undefined && p.service.dist !== 'lognormal') problems.push(`${at}.service.p99Ms: only a lognormal service time takes p99Ms, got dist ${JSON.stringify(p.service.dist)}`);
  if (p.service.dist === 'lognormal') {
    try {
      lognormalSigma(p.service.meanMs, p.service.p99Ms ?? p.service.meanMs * 3);
    } catch (err) {
      problems.push(`${at}.service: ${(err as Error).message}`);
    }
  }
  return p;
}

/** Read a YAML or JSON file as data; a missing or unparsable file is a bad flag value. */
export function readConfigFile(flag: string, path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(flag, path, `${what} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  try {
    return parseYaml(text) as unknown;
  } catch (err) {
    throw new ValidationError([`${path}: not valid YAML/JSON: ${((err as Error).message.split('\n')[0] ?? '').trim()}`]);
  }
}

/** A built-in set by name, or a set from a YAML/JSON file, validated with every problem listed. */
export function resolveProfileSet(arg: string): ProfileSet {
  const builtIn = PROFILES[arg];
  if (builtIn) return builtIn;
  if (!/\.(ya?ml|json)$/i.test(arg)) throw new InvalidArgumentError('--profile', arg, `${Object.keys(PROFILES).join(', ')}, or a .yaml/.json profile file`);
  const data = readConfigFile('--profile', arg, `${Object.keys(PROFILES).join(', ')}, or a readable .yaml/.json profile file`);
  const problems = schemaProblems('profile-set', data, arg);
  if (problems.length) throw new ValidationError(problems);
  const raw = data as { name?: string; tiers: Record<string, CapacityProfile>; db?: CapacityProfile };
  const tiers: Record<string, CapacityProfile> = {};
  for (const [tier, p] of Object.entries(raw.tiers)) tiers[tier] = normalizeProfile(p, `${arg}: tiers.${tier}`, problems);
  const db = raw.db ? normalizeProfile(raw.db, `${arg}: db`, problems) : undefined;
  if (problems.length) throw new ValidationError(problems);
  return { name: raw.name ?? arg, tiers, db };
}
