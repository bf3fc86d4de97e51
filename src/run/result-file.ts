import { readFileSync } from 'node:fs';
import type { ErrorObject } from 'ajv';
import { tierLayout } from '../analysis/tier-sizing.js';
import { RmmscaleError, formatValue } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { schemaValidator } from '../core/schemas.js';
import { parseCheckinFractionPerMin, parseRatePerSec, round } from '../core/units.js';
import type { CheckinSpec } from '../scenario/types.js';
import { RUN_RESULT_SCHEMA, type ClientStats, type RunLoad, type RunResult } from './result-types.js';

/**
 * The one reader of result.json. `rmmscale report`, `rmmscale gate`, `rmmscale plan --from` (and
 * `rmmscale run`, which draws its reports and judges its exit from the file it just wrote) read a
 * result through here and nowhere else: readable, JSON, an object, schema `rmmscale.run/1`, then
 * valid against schemas/result.schema.json. Every problem is one line, error code
 * ERR_RESULT_FILE, exit 2, starting with the file's name.
 *
 * A file written before a typed fact was recorded (`load`, `stack.tiers`) is still valid (the
 * schema has them optional, as additive changes are); the reader fills them from the file's other
 * typed fields, so that everything after it sees one shape.
 */

export class ResultFileError extends RmmscaleError {
  constructor(file: string, problem: string) {
    super('ERR_RESULT_FILE', `${file}: ${problem.replace(/\s*\n\s*/g, ' ')}`, EXIT.badInput);
  }
}

const WHAT = 'the result.json of rmmscale run';
/** Problems listed on the one line; the rest are counted. */
const MAX_PROBLEMS = 6;

/** Read, parse and check a result.json. Throws ResultFileError. */
export function readResultFile(file: string): RunResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ResultFileError(file, `cannot read the result file (${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)})`);
  }
  return parseResultText(file, text);
}

/** Parse and check the text of a result.json (`file` names it in errors). Throws ResultFileError. */
export function parseResultText(file: string, text: string): RunResult {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ResultFileError(file, `not JSON (${(err as Error).message}); expected ${WHAT}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ResultFileError(file, `expected a JSON object: ${WHAT}`);
  const schema = (doc as { schema?: unknown }).schema;
  if (schema !== RUN_RESULT_SCHEMA) throw new ResultFileError(file, `schema: expected "${RUN_RESULT_SCHEMA}" (${WHAT}), got ${formatValue(schema)}`);
  const problems = resultProblems(doc);
  if (problems.length) {
    const more = problems.length > MAX_PROBLEMS ? `; and ${problems.length - MAX_PROBLEMS} more` : '';
    throw new ResultFileError(file, `not a complete ${RUN_RESULT_SCHEMA} result: ${problems.slice(0, MAX_PROBLEMS).join('; ')}${more}`);
  }
  return withTypedFacts(file, doc as RunResult);
}

/** Every problem of `doc` against schemas/result.schema.json, one line each (empty: valid). */
export function resultProblems(doc: unknown): string[] {
  const validate = schemaValidator('result');
  if (validate(doc)) return [];
  const errors = validate.errors ?? [];
  // `X or null` is an anyOf: when the value is not null, the "must be null" branch and the anyOf
  // summary say nothing the other branch's errors do not.
  const nullBranch = (e: ErrorObject): boolean => e.keyword === 'anyOf' || (e.keyword === 'type' && (e.params as { type?: unknown }).type === 'null');
  const lines = errors.filter((e) => !nullBranch(e) && e.keyword !== 'if').map(describe);
  return [...new Set(lines)];
}

/** `/windows/0/client` → `windows[0].client`. */
function jsonPath(instancePath: string): string {
  let out = '';
  for (const raw of instancePath.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(part) ? `[${part}]` : out ? `.${part}` : part;
  }
  return out || '(top level)';
}

/** What a value is, for "got …": objects and arrays by kind (they can be large), anything else as written. */
function kindOf(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'object') return 'object';
  return formatValue(v);
}

/** The kinds a (sub)schema allows: `object`, `number or null`… */
function kindsOf(s: unknown): string {
  const node = (s ?? {}) as { type?: string | string[]; anyOf?: unknown[]; $ref?: string; enum?: unknown[]; const?: unknown };
  if (node.type) return Array.isArray(node.type) ? node.type.join(' or ') : node.type;
  if (node.$ref) return 'object';
  if (node.anyOf) return node.anyOf.map(kindsOf).join(' or ');
  if (node.enum) return `one of ${node.enum.map((v) => String(v)).join(', ')}`;
  if (node.const !== undefined) return formatValue(node.const);
  return 'a value';
}

function describe(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  const at = jsonPath(e.instancePath);
  switch (e.keyword) {
    case 'required': {
      const missing = String(p.missingProperty);
      const props = (e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {};
      return `${jsonPath(`${e.instancePath}/${missing}`)}: expected ${kindsOf(props[missing])}, got missing`;
    }
    case 'type':
      return `${at}: expected ${Array.isArray(p.type) ? p.type.join(' or ') : String(p.type)}, got ${kindOf(e.data)}`;
    case 'enum':
      return `${at}: expected one of ${(p.allowedValues as unknown[]).map((v) => String(v)).join(', ')}, got ${kindOf(e.data)}`;
    case 'const':
      return `${at}: expected ${formatValue(p.allowedValue)}, got ${kindOf(e.data)}`;
    case 'pattern':
      return `${at}: expected a value matching ${String(p.pattern)}, got ${kindOf(e.data)}`;
    case 'minimum':
      return `${at}: expected a number ${String(p.comparison)} ${String(p.limit)}, got ${kindOf(e.data)}`;
    default:
      return `${at}: ${e.message ?? 'is invalid'}, got ${kindOf(e.data)}`;
  }
}

/**
 * What a file written before a field was recorded lacks, from its other typed fields:
 * - `load`: the unit is the search's (stages count agents); the check-in model is the one its
 *   windows ran at, since a search by agents and every stage run at the fleet's model, and a
 *   search by rate could not set one before `load` existed, so its fleet had the default, 30%/min;
 * - `stack.tiers`: from the nodes, as the run lays them out (analysis/tier-sizing.ts);
 * - a window's `client.attemptedRatePerSec`: its sends (`count`) over its measured seconds;
 * - `faults`: none (faults came with them);
 * - `ledger`: null (not checked: the ledger came after);
 * - a search by rate counted its tiers' `ceilingAgents` at its fixed fleet's size, not at the
 *   check-in model as `summary.ceilingAgents` did: they are recounted alike (× ceilingAgents ÷ the
 *   headline's agents), or dropped when the search found no ceiling to recount them by.
 */
function withTypedFacts(file: string, r: RunResult): RunResult {
  const stored = r as Partial<RunResult> & { stack: Partial<RunResult['stack']> };
  const load: RunLoad = stored.load ?? { unit: r.search?.unit ?? 'agents', checkin: r.search?.unit === 'rate' ? DEFAULT_CHECKIN : windowsCheckin(file, r) };
  const tiers = stored.stack.tiers ?? tierLayout(r.stack.nodes);
  const attempted = (c: ClientStats, sec: number): ClientStats => (c.attemptedRatePerSec === undefined ? { ...c, attemptedRatePerSec: round(c.count / Math.max(0.001, sec), 1) } : c);
  const windows = r.windows.map((w) => ({ ...w, client: attempted(w.client, w.measuredSec) }));
  const hw = windows.find((w) => w.index === r.headline?.windowIndex);
  const headline = r.headline && hw ? { ...r.headline, client: attempted(r.headline.client, hw.measuredSec) } : r.headline;
  let summary = r.summary;
  if (!stored.load && r.search?.unit === 'rate') {
    const agents = r.headline?.client.agents ?? 0;
    const ratio = r.summary.ceilingAgents !== null && agents > 0 ? r.summary.ceilingAgents / agents : null;
    summary = { ...r.summary, tiers: r.summary.tiers.map((t) => ({ ...t, ceilingAgents: t.ceilingAgents === null || ratio === null ? null : Math.round(t.ceilingAgents * ratio) })) };
  }
  return { ...r, summary, load, stack: { ...r.stack, tiers }, windows, headline, faults: stored.faults ?? [], ledger: stored.ledger ?? null };
}

const DEFAULT_CHECKIN: CheckinSpec = { kind: 'fraction', fractionPerMin: 0.3, text: '30%/min' };

/** The check-in model of the headline window (else the last window), as its `checkin` text says; the default without windows. */
function windowsCheckin(file: string, r: RunResult): CheckinSpec {
  const i = r.windows.findIndex((x) => x.index === r.headline?.windowIndex);
  const at = i >= 0 ? i : r.windows.length - 1;
  if (at < 0) return DEFAULT_CHECKIN;
  const text = r.windows[at].checkin.trim();
  const field = `windows[${at}].checkin`;
  try {
    return text.includes('%') ? { kind: 'fraction', fractionPerMin: parseCheckinFractionPerMin(field, text), text } : { kind: 'rate', ratePerSec: parseRatePerSec(field, text), text };
  } catch (err) {
    throw new ResultFileError(file, (err as Error).message);
  }
}
