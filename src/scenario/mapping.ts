import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidArgumentError } from '../core/errors.js';
import { packageRoot } from '../core/module-path.js';
import type { MappingSignals } from '../metrics/mapped-scrape.js';
import { parseSelector, SelectorSyntaxError, type Selector } from '../metrics/prom-selector.js';
import type { Problems, Segment } from './problems.js';
import { parseYamlChecked } from './yaml-checked.js';

/**
 * Mapping files: which series of a node's Prometheus /metrics mean its request rate, errors, busy
 * workers, queue depth, utilisation and latency (schemas/mapping.schema.json, docs/mappings.md).
 * A scenario's `stack.nodes[].mapping` names one: a file shipped in mappings/ by its name
 * (`node-exporter`, `haproxy-exporter`) or a .yaml file relative to the scenario's folder.
 *
 *   signals:                       # every node that names this file
 *     requests: app_requests_total{job="api"}
 *     busyWorkers: app_busy_workers
 *     workers: 16
 *   tiers:                         # …and for the nodes of tier `db`, these instead
 *     db: { busyWorkers: pg_stat_activity_count{state="active"} }
 *
 * Problems are listed as `FILE:LINE PATH: expected …, got …`, a bad selector included.
 */

export interface MetricsMapping {
  /** The shipped name, or the file's absolute path. */
  name: string;
  description: string;
  signals: MappingSignals;
  tiers: Record<string, MappingSignals>;
}

const UNIT_SEC: Record<string, number> = { seconds: 1, milliseconds: 0.001, microseconds: 0.000001 };
const SIGNAL_KEYS = ['requests', 'errors', 'busyWorkers', 'workers', 'utilization', 'queueDepth', 'latency'] as const;

/** The folder of the shipped mapping files. */
export function mappingsDir(): string {
  return join(packageRoot(import.meta.url), 'mappings');
}

/** The names of the shipped mapping files. */
export function shippedMappings(): string[] {
  const dir = mappingsDir();
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.yaml')).map((f) => f.replace(/\.yaml$/, '')).sort() : [];
}

/** A mapping by shipped name or file path (relative to `baseDir`); throws ValidationError or InvalidArgumentError. */
export function loadMapping(arg: string, baseDir: string, field = 'mapping'): MetricsMapping {
  const isFile = /\.ya?ml$/i.test(arg);
  if (!isFile && !shippedMappings().includes(arg)) throw new InvalidArgumentError(field, arg, `a shipped mapping (${shippedMappings().join(', ')}) or a .yaml mapping file`);
  const file = isFile ? resolve(baseDir, arg) : join(mappingsDir(), `${arg}.yaml`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(field, arg, `a readable mapping file (${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  return { ...parseMapping(text, file), name: isFile ? file : arg };
}

/** Validate and resolve mapping text; `file` names it in messages. */
export function parseMapping(text: string, file: string): MetricsMapping {
  return parseYamlChecked(text, file, 'mapping', (data, p) => resolveMapping(data, p, file));
}

/** The signals for a node of `tier`: the file's, with the tier's own in their place. */
export function signalsFor(m: MetricsMapping, tier: string): MappingSignals {
  const own = m.tiers[tier];
  if (!own) return m.signals;
  const out = { ...m.signals };
  for (const k of SIGNAL_KEYS) if (own[k] !== null) (out as Record<string, unknown>)[k] = own[k];
  return out;
}

const obj = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

function resolveMapping(data: unknown, p: Problems, file: string): MetricsMapping {
  const raw = obj(data);
  const signals = resolveSignals(obj(raw.signals), p, ['signals']);
  const tiers: Record<string, MappingSignals> = {};
  for (const [tier, v] of Object.entries(obj(raw.tiers))) tiers[tier] = resolveSignals(obj(v), p, ['tiers', tier]);
  const named = (v: unknown): boolean => SIGNAL_KEYS.some((k) => obj(v)[k] !== undefined);
  if (!named(raw.signals) && !Object.values(obj(raw.tiers)).some(named) && p.ok(['signals'], ['tiers'])) p.expectedWords(['signals'], `at least one signal (${SIGNAL_KEYS.join(', ')})`, 'none');
  return { name: file, description: typeof raw.description === 'string' ? raw.description : '', signals, tiers };
}

function selector(p: Problems, at: Segment[], v: unknown): Selector | null {
  if (typeof v !== 'string' || !p.ok(at)) return null;
  try {
    return parseSelector(v);
  } catch (err) {
    if (!(err instanceof SelectorSyntaxError)) throw err;
    p.expected(at, `a metric selector like name{label="value"}: ${err.message}`, v);
    return null;
  }
}

function resolveSignals(raw: Record<string, unknown>, p: Problems, at: Segment[]): MappingSignals {
  const sel = (key: string): Selector | null => selector(p, [...at, key], raw[key]);
  const u = raw.utilization;
  let utilization: MappingSignals['utilization'] = null;
  if (typeof u === 'string') {
    const g = sel('utilization');
    utilization = g && { gauge: g };
  } else if (u !== undefined) {
    const busy = selector(p, [...at, 'utilization', 'busySeconds'], obj(u).busySeconds);
    const over = obj(u).over;
    if (busy && (typeof over === 'string' || typeof over === 'number')) utilization = { busySeconds: busy, over };
  }
  const lat = obj(raw.latency);
  const hist = raw.latency === undefined ? null : selector(p, [...at, 'latency', 'histogram'], lat.histogram);
  return {
    requests: sel('requests'),
    errors: sel('errors'),
    busyWorkers: sel('busyWorkers'),
    workers: typeof raw.workers === 'number' ? raw.workers : sel('workers'),
    utilization,
    queueDepth: sel('queueDepth'),
    latency: hist && { histogram: hist, unitSec: UNIT_SEC[typeof lat.unit === 'string' ? lat.unit : 'seconds'] ?? 1 },
  };
}
