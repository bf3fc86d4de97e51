import { InvalidArgumentError } from '../core/errors.js';
import type { FleetShare } from './schedule.js';

/**
 * Shard i of n: a disjoint slice of the fleet and of its send schedule, for running one fleet from
 * several generator machines. Agents are striped, as k6's execution segments stripe iteration
 * indices: shard i holds global agents g ≡ i (mod n), and inside a shard worker w of W holds
 * g ≡ i + n·w (mod n·W). Every schedule is a pure function of the seed and g (fleet-schedule.ts,
 * connect-plan.ts), so the union of the n shards is exactly the fleet and the sends of one
 * unsharded run; `rmmscale merge` puts their results back together.
 */
export interface Shard {
  index: number;
  count: number;
}

/** Not sharded: the whole fleet. */
export const NO_SHARD: Shard = { index: 0, count: 1 };

/** At most this many shards (a sanity bound, far above any real fleet of machines). */
export const MAX_SHARDS = 1000;

/** `i/n` with 0 ≤ i < n ≤ 1000, e.g. `0/3`. */
export function parseShard(field: string, value: unknown): Shard {
  const m = typeof value === 'string' ? /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(value) : null;
  const allowed = `"i/n": shard i of n, 0 ≤ i < n ≤ ${MAX_SHARDS}, e.g. "0/3"`;
  if (!m) throw new InvalidArgumentError(field, value, allowed);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > MAX_SHARDS || index >= count) throw new InvalidArgumentError(field, value, allowed);
  return { index, count };
}

export function describeShard(s: Shard): string {
  return `${s.index}/${s.count}`;
}

/** The agents worker `workerIndex` of `workerCount` holds in this shard: g = first + s·stride. */
export function workerShare(shard: Shard, workerIndex: number, workerCount: number): FleetShare {
  return { first: shard.index + shard.count * workerIndex, stride: shard.count * workerCount };
}

/** Agents this shard holds out of `agents`. */
export function shardAgents(shard: Shard, agents: number): number {
  return Math.max(0, Math.ceil((agents - shard.index) / shard.count));
}

/**
 * `--start-at`: an ISO 8601 time with a zone (`2026-12-06T01:00:00Z`) or epoch milliseconds; every
 * shard given the same value starts its t = 0 at that wall-clock instant.
 */
export function parseStartAt(field: string, value: unknown): number {
  const allowed = 'an ISO 8601 time with a zone, like "2026-12-06T01:00:00Z", or epoch milliseconds';
  if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
  if (typeof value !== 'string') throw new InvalidArgumentError(field, value, allowed);
  const v = value.trim();
  if (/^\d{10,}$/.test(v)) return Number(v);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(v)) throw new InvalidArgumentError(field, value, allowed);
  const ms = Date.parse(v);
  if (!Number.isFinite(ms)) throw new InvalidArgumentError(field, value, allowed);
  return ms;
}
