import { InvalidArgumentError } from './errors.js';

/**
 * Parsers for the small unit grammar shared by flags and scenario files. Each takes the field name
 * so that a bad value produces `field: expected …, got …` and nothing else.
 *
 *   duration  := NUMBER ("us" | "ms" | "s" | "m" | "h")      e.g. 250ms, 60s, 5m, 1.5h
 *   rate      := NUMBER "/" ("s" | "min")                    e.g. 250/s, 6600/min
 *   checkin   := NUMBER "%/" ("min" | "h")                   e.g. 30%/min (each agent 0.3 times a minute)
 *   bytes     := INTEGER ("b" | "kb" | "mb")?                e.g. 1mb, 512kb
 */

const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(us|ms|s|m|h)$/;
const DURATION_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDurationMs(field: string, value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value * 1000;
  const m = typeof value === 'string' ? DURATION_RE.exec(value.trim()) : null;
  if (!m) throw new InvalidArgumentError(field, value, 'a duration like "250ms", "60s", "5m" or "1h"');
  return Number(m[1]) * DURATION_MS[m[2]];
}

const RATE_RE = /^(\d+(?:\.\d+)?)\s*\/\s*(s|sec|min|m)$/;

/** `250/s` or `6600/min` → requests per second. */
export function parseRatePerSec(field: string, value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return value;
  const m = typeof value === 'string' ? RATE_RE.exec(value.trim()) : null;
  const n = m ? Number(m[1]) : NaN;
  if (!m || !(n > 0)) throw new InvalidArgumentError(field, value, 'a rate like "250/s" or "6600/min", above 0');
  return m[2].startsWith('m') ? n / 60 : n;
}

const CHECKIN_RE = /^(\d+(?:\.\d+)?)\s*%\s*\/\s*(min|h)$/;

/** `30%/min` → the fraction of agents that check in each minute (0.3). */
export function parseCheckinFractionPerMin(field: string, value: unknown): number {
  const m = typeof value === 'string' ? CHECKIN_RE.exec(value.trim()) : null;
  const pct = m ? Number(m[1]) : NaN;
  if (!m || !(pct > 0)) throw new InvalidArgumentError(field, value, 'a check-in fraction like "30%/min", above 0');
  return m[2] === 'h' ? pct / 100 / 60 : pct / 100;
}

const BYTES_RE = /^(\d+)\s*(b|kb|mb)?$/i;
const BYTES_MUL: Record<string, number> = { b: 1, kb: 1024, mb: 1024 * 1024 };

export function parseBytes(field: string, value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value;
  const m = typeof value === 'string' ? BYTES_RE.exec(value.trim()) : null;
  if (!m) throw new InvalidArgumentError(field, value, 'a size like "512kb" or "1mb"');
  return Number(m[1]) * BYTES_MUL[(m[2] ?? 'b').toLowerCase()];
}

/**
 * How often agents contact the server. Exactly one of the three forms is given:
 * - `fraction`: `--checkin 30%/min`, the share of the fleet that checks in each minute;
 * - `interval`: `--checkin-interval 5m`, every agent once per interval;
 * - `rate`: `--rate 250/s`, an aggregate rate spread over the fleet.
 */
export type CheckinModel =
  | { kind: 'fraction'; fractionPerMin: number }
  | { kind: 'interval'; intervalMs: number }
  | { kind: 'rate'; ratePerSec: number };

/** Check-ins per agent per millisecond under the model, for a fleet of `agents`. */
export function perAgentFreqPerMs(model: CheckinModel, agents: number): number {
  switch (model.kind) {
    case 'fraction':
      return model.fractionPerMin / 60_000;
    case 'interval':
      return 1 / model.intervalMs;
    case 'rate':
      return agents > 0 ? model.ratePerSec / 1000 / agents : 0;
  }
}

/** Aggregate requests per second the model asks of a fleet of `agents`. */
export function aggregateRatePerSec(model: CheckinModel, agents: number): number {
  return perAgentFreqPerMs(model, agents) * 1000 * agents;
}

export function describeCheckin(model: CheckinModel): string {
  switch (model.kind) {
    case 'fraction':
      return `${round(model.fractionPerMin * 100, 3)}%/min`;
    case 'interval':
      return `every ${formatDurationMs(model.intervalMs)}`;
    case 'rate':
      return `${round(model.ratePerSec, 3)}/s`;
  }
}

export function formatDurationMs(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000) return `${round(ms / 1000, 3)}s`;
  return `${round(ms, 3)}ms`;
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
