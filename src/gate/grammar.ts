import { EXIT } from '../core/exit-codes.js';
import { RmmscaleError } from '../core/errors.js';
import { TIER_NAMES, type TierName } from '../run/result-types.js';

/** A tier's name as a topology file may give it (schemas/topology.schema.json). */
const TIER_NAME_RE = /^[a-z][a-z0-9-]{0,40}$/;
import { editDistance } from '../core/edit-distance.js';

/**
 * Gate thresholds: a tiny grammar, parsed once at load (docs/gate.md has the same EBNF).
 *
 *   threshold  = metric , [ ws ] , op , [ ws ] , value ;
 *   metric     = op-name "." stat                         (* checkin.p99: an operation's latency *)
 *              | "latency." stat                          (* every operation together *)
 *              | "errors." ( "rate" | "count" )
 *              | "throughput." ( "achieved" | "offered" )
 *              | "ceiling." ( "agents" | "rps" )
 *              | "tier[" tier-name "].ceiling." ( "agents" | "rps" )
 *              | "node[" node-name "]." ( "utilization" | "queue" | "p99" | "cpu" | "rate" )
 *              | "generator.lagP99" ;
 *   stat       = percentile | "max" | "mean" ;
 *   percentile = "p50" | "p90" | "p95" | "p99" | "p99.9"
 *              | "p999"                                   (* the older spelling of p99.9 *)
 *              | "p(" ( "50" | "90" | "95" | "99" | "99.9" ) ")" ;   (* k6's spelling: p(95) *)
 *   op         = "<" | "<=" | ">" | ">=" | "==" | "!=" ;
 *   value      = absolute | relative ;
 *   absolute   = number [ unit ] ;                         (* the unit must fit the metric's kind *)
 *   relative   = ( "+" | "-" ) number "%" ;               (* against the baseline: needs --baseline *)
 *   unit       = "us" | "µs" | "ms" | "s" | "%" | "/s" ;
 *   number     = digit { digit } [ "." digit { digit } ] ;
 *
 * Kinds: a latency needs a time unit (us, ms, s); a ratio (errors.rate, node utilization) is a
 * fraction 0–1 or a percentage; a rate is a bare number or N/s; counts and cores are bare numbers.
 * A sign makes the value relative: `checkin.p99 <= +10%` means "at most 10% above the baseline",
 * while `errors.rate < 0.1%` is absolute. Relative values take <, <=, > or >= only.
 * A stat's other spellings (p999, p(95)) name the same metric: `checkin.p(95)` is `checkin.p95`.
 */

export type Op = '<' | '<=' | '>' | '>=' | '==' | '!=';
const OPS: readonly Op[] = ['<', '<=', '>', '>=', '==', '!='];
const OPS_TEXT = '<, <=, >, >=, ==, !=';

export const LATENCY_STATS = ['p50', 'p90', 'p95', 'p99', 'p99.9', 'max', 'mean'] as const;
export type LatencyStat = (typeof LATENCY_STATS)[number];
/** The percentiles a result records; each also spelled the k6 way, `p(95)`. */
const PERCENTILES = ['p50', 'p90', 'p95', 'p99', 'p99.9'] as const satisfies readonly LatencyStat[];
const K6_PERCENTILES = PERCENTILES.map((st) => `p(${st.slice(1)})`);
/** Every accepted spelling of a stat → the stat: itself, `p999` (older) and k6's `p(N)`. */
const STAT_SPELLINGS: ReadonlyMap<string, LatencyStat> = new Map<string, LatencyStat>([
  ...LATENCY_STATS.map((st) => [st, st] as const),
  ['p999', 'p99.9'],
  ...PERCENTILES.map((st, i) => [K6_PERCENTILES[i], st] as const),
]);
export const NODE_FIELDS = ['utilization', 'queue', 'p99', 'cpu', 'rate'] as const;
export type NodeField = (typeof NODE_FIELDS)[number];

/** What a metric's number is, in the unit the gate compares in. */
export type ValueKind = 'latency' | 'ratio' | 'count' | 'rate' | 'cores';

export type MetricRef =
  | { kind: 'op-latency'; op: string; stat: LatencyStat }
  | { kind: 'latency'; stat: LatencyStat }
  | { kind: 'errors'; field: 'rate' | 'count' }
  | { kind: 'throughput'; field: 'achieved' | 'offered' }
  | { kind: 'ceiling'; field: 'agents' | 'rps' }
  | { kind: 'tier-ceiling'; tier: TierName; field: 'agents' | 'rps' }
  | { kind: 'node'; node: string; field: NodeField }
  | { kind: 'generator'; field: 'lagP99' };

export interface Metric {
  /**
   * As written, e.g. `node[web-agent-1].utilization`, with a stat's other spelling made canonical
   * (`checkin.p(95)` → `checkin.p95`, `latency.p999` → `latency.p99.9`); the key --threshold
   * overrides by, so `checkin.p(99)` replaces a scenario's `checkin.p99`.
   */
  name: string;
  ref: MetricRef;
  /** latency: ms; ratio: a fraction; count; rate: per second; cores. */
  valueKind: ValueKind;
}

export type ThresholdValue =
  /** In the metric's unit: ms for a latency, a fraction for a ratio, per second for a rate. */
  | { kind: 'absolute'; value: number; text: string }
  /** `+10%` → changePct 10, ratio 1.10 (current ÷ baseline). */
  | { kind: 'relative'; changePct: number; ratio: number; text: string };

export interface Threshold {
  /** Where it was written: `--threshold` or `FILE: thresholds[0]`. */
  source: string;
  text: string;
  metric: Metric;
  op: Op;
  value: ThresholdValue;
}

/** A threshold that does not parse or cannot apply. One line; exit 2. */
export class ThresholdError extends RmmscaleError {
  constructor(source: string, text: string, detail: string) {
    super('ERR_THRESHOLD', `${source} ${JSON.stringify(text)}: ${detail}`, EXIT.badInput);
  }
}

const RESERVED = new Set(['latency', 'errors', 'throughput', 'ceiling', 'tier', 'node', 'generator']);
const FIXED: Record<string, { ref: MetricRef; kind: ValueKind }> = {
  'errors.rate': { ref: { kind: 'errors', field: 'rate' }, kind: 'ratio' },
  'errors.count': { ref: { kind: 'errors', field: 'count' }, kind: 'count' },
  'throughput.achieved': { ref: { kind: 'throughput', field: 'achieved' }, kind: 'rate' },
  'throughput.offered': { ref: { kind: 'throughput', field: 'offered' }, kind: 'rate' },
  'ceiling.agents': { ref: { kind: 'ceiling', field: 'agents' }, kind: 'count' },
  'ceiling.rps': { ref: { kind: 'ceiling', field: 'rps' }, kind: 'rate' },
  'generator.lagP99': { ref: { kind: 'generator', field: 'lagP99' }, kind: 'latency' },
};
for (const stat of LATENCY_STATS) FIXED[`latency.${stat}`] = { ref: { kind: 'latency', stat }, kind: 'latency' };

const NODE_KIND: Record<NodeField, ValueKind> = { utilization: 'ratio', queue: 'count', p99: 'latency', cpu: 'cores', rate: 'rate' };

const STATS_TEXT = `${LATENCY_STATS.join('|')} (or k6's ${K6_PERCENTILES.join('|')})`;

export const KNOWN_METRICS_TEXT =
  `OP.STAT (OP: an operation such as checkin, heartbeat, inventory; STAT: ${STATS_TEXT}), latency.STAT, errors.rate|count, ` +
  'throughput.achieved|offered, ceiling.agents|rps, tier[TIER].ceiling.agents|rps, node[NAME].utilization|queue|p99|cpu|rate, generator.lagP99';

const OP_NAME_RE = /^[A-Za-z][A-Za-z0-9_-]*$/;

/** Parse one threshold expression; throws a ThresholdError naming `source`, the text and the token. */
export function parseThreshold(text: string, source: string): Threshold {
  const fail = (detail: string): never => {
    throw new ThresholdError(source, text, detail);
  };
  const s = text.trim();
  if (s === '') fail('expected METRIC OP VALUE, like "checkin.p99 < 500ms", got nothing');

  // metric: everything up to whitespace or an operator character.
  const metricText = /^[^\s<>=!]*/.exec(s)![0];
  let i = metricText.length;
  while (i < s.length && /\s/.test(s[i])) i++;
  const opText = /^[<>=!]*/.exec(s.slice(i))![0];
  if (metricText === '') fail(`expected a metric like checkin.p99 before ${opText ? JSON.stringify(opText) : 'the operator'}, got nothing`);
  const metric = parseMetric(metricText, fail);

  if (!OPS.includes(opText as Op)) {
    const got = opText || (s.slice(i).match(/^\S+/)?.[0] ?? '');
    fail(`expected an operator (${OPS_TEXT}) after ${JSON.stringify(metricText)}, got ${got ? JSON.stringify(got) : 'nothing'}`);
  }
  const op = opText as Op;
  i += opText.length;
  while (i < s.length && /\s/.test(s[i])) i++;
  const rest = s.slice(i);
  const valueText = /^\S*/.exec(rest)![0];
  const trailing = rest.slice(valueText.length).trim();
  if (/^[+-]?\d+(\.\d+)?$/.test(valueText) && /^(us|µs|ms|s|%|\/s)$/.test(trailing)) {
    fail(`expected the unit right after the number, like "${valueText}${trailing}", got ${JSON.stringify(`${valueText} ${trailing}`)}`);
  }
  const value = parseValue(metric, op, valueText, fail);
  if (trailing !== '') fail(`unexpected ${JSON.stringify(trailing)} after the value ${JSON.stringify(valueText)}`);
  return { source, text, metric, op, value };
}

function parseMetric(name: string, fail: (detail: string) => never): Metric {
  const bracket = /^(tier|node)\[/.exec(name);
  if (bracket) {
    const head = bracket[1];
    const close = name.indexOf(']');
    if (close < 0) fail(`expected "]" to close "${head}[" in ${JSON.stringify(name)}`);
    const label = name.slice(head.length + 1, close);
    const field = name.slice(close + 1);
    if (label === '' || label.includes('[')) fail(`expected a ${head === 'tier' ? 'tier' : 'node'} name inside ${head}[…], got ${label === '' ? 'nothing' : JSON.stringify(label)}`);
    if (head === 'tier') {
      // Any tier a topology can name: whether the run has it is for the result to say (resolve-metric.ts).
      if (!TIER_NAME_RE.test(label)) fail(`expected a tier name inside tier[…] (lowercase letters, digits and "-", like ${TIER_NAMES.join(', ')} or a topology file's own), got ${JSON.stringify(label)}`);
      if (field === '.ceiling.agents' || field === '.ceiling.rps') {
        const f = field === '.ceiling.agents' ? 'agents' : 'rps';
        return { name, ref: { kind: 'tier-ceiling', tier: label as TierName, field: f }, valueKind: f === 'agents' ? 'count' : 'rate' };
      }
    } else {
      const f = field.slice(1) as NodeField;
      if (field.startsWith('.') && (NODE_FIELDS as readonly string[]).includes(f)) return { name, ref: { kind: 'node', node: label, field: f }, valueKind: NODE_KIND[f] };
    }
    const near = head === 'tier' ? [`tier[${label}].ceiling.agents`, `tier[${label}].ceiling.rps`] : NODE_FIELDS.map((f) => `node[${label}].${f}`);
    return fail(unknownMetric(name, near));
  }
  const fixed = FIXED[name];
  if (fixed) return { name, ref: fixed.ref, valueKind: fixed.kind };
  // OP.STAT or latency.STAT: an op name has no dot, so the stat is everything after the first one.
  const dot = name.indexOf('.');
  const head = dot < 0 ? name : name.slice(0, dot);
  const isOp = !RESERVED.has(head) && OP_NAME_RE.test(head);
  if (dot > 0 && (isOp || head === 'latency')) {
    const statText = name.slice(dot + 1);
    const stat = STAT_SPELLINGS.get(statText);
    if (stat) {
      const ref: MetricRef = isOp ? { kind: 'op-latency', op: head, stat } : { kind: 'latency', stat };
      return { name: `${head}.${stat}`, ref, valueKind: 'latency' };
    }
    if (/^p\(.*\)$/.test(statText)) {
      return fail(`unknown metric ${JSON.stringify(name)}; percentiles: ${K6_PERCENTILES.join(', ')} (or ${PERCENTILES.join(', ')}); other stats: max, mean`);
    }
  }
  const opGuesses = isOp ? LATENCY_STATS.map((st) => `${head}.${st}`) : [];
  return fail(unknownMetric(name, opGuesses));
}

function unknownMetric(name: string, extra: string[]): string {
  const lower = name.toLowerCase();
  const scored = [...Object.keys(FIXED), ...extra].map((c) => ({ c, d: c.toLowerCase().startsWith(lower) && lower.length >= 4 ? 0.5 : editDistance(lower, c.toLowerCase()) }));
  const best = Math.min(...scored.map((x) => x.d));
  if (best <= 2) {
    const near = scored.filter((x) => x.d === best).map((x) => JSON.stringify(x.c));
    return `unknown metric ${JSON.stringify(name)}; did you mean ${near.join(' or ')}?`;
  }
  return `unknown metric ${JSON.stringify(name)}; known: ${KNOWN_METRICS_TEXT}`;
}


const EXPECTED: Record<ValueKind, string> = {
  latency: 'a duration like 500ms',
  ratio: 'a fraction from 0 to 1 or a percentage like 0.1%',
  count: 'a number like 40000',
  rate: 'a rate like 250/s',
  cores: 'a number of CPU cores like 1.5',
};

const VALUE_RE = /^(\d+(?:\.\d+)?)(us|µs|ms|s|%|\/s)?$/;

function parseValue(metric: Metric, op: Op, text: string, fail: (detail: string) => never): ThresholdValue {
  const got = text === '' ? 'nothing' : JSON.stringify(text);
  if (text.startsWith('+') || text.startsWith('-')) {
    const m = /^([+-])(\d+(?:\.\d+)?)%$/.exec(text);
    if (!m) return fail(`expected a baseline-relative change like +10% or -5% after ${JSON.stringify(op)}, got ${got}`);
    if (op === '==' || op === '!=') return fail(`a baseline-relative value (${text}) needs <, <=, > or >=, got ${JSON.stringify(op)}`);
    const changePct = (m[1] === '-' ? -1 : 1) * Number(m[2]);
    if (changePct <= -100) return fail(`a relative change must be above -100%, got ${got}`);
    return { kind: 'relative', changePct, ratio: 1 + changePct / 100, text };
  }
  const m = VALUE_RE.exec(text);
  const expected = `expected ${EXPECTED[metric.valueKind]} after ${JSON.stringify(op)}, got ${got}`;
  if (!m) return fail(expected);
  const n = Number(m[1]);
  const unit = m[2] ?? '';
  switch (metric.valueKind) {
    case 'latency': {
      const perMs: Record<string, number> = { us: 0.001, µs: 0.001, ms: 1, s: 1000 };
      if (!(unit in perMs)) return fail(unit === '' ? `${expected} (${metric.name} is a latency: give a unit, us, ms or s)` : expected);
      return { kind: 'absolute', value: n * perMs[unit], text };
    }
    case 'ratio': {
      if (unit === '%' && n <= 100) return { kind: 'absolute', value: n / 100, text };
      if (unit === '' && n <= 1) return { kind: 'absolute', value: n, text };
      return fail(expected);
    }
    case 'rate':
      if (unit === '' || unit === '/s') return { kind: 'absolute', value: n, text };
      return fail(expected);
    case 'count':
    case 'cores':
      if (unit === '') return { kind: 'absolute', value: n, text };
      return fail(expected);
  }
}

/** The metric's value in words, for reports: `412 ms`, `0.12%`, `40,000`, `250/s`, `1.5 cores`. */
export function formatMetricValue(kind: ValueKind, v: number): string {
  const sig = (x: number): string => (Math.abs(x) >= 100 ? String(Math.round(x)) : String(Number(x.toPrecision(3))));
  switch (kind) {
    case 'latency':
      return v >= 10_000 ? `${sig(v / 1000)} s` : v < 1 ? `${sig(v * 1000)} µs` : `${sig(v)} ms`;
    case 'ratio':
      return `${sig(v * 100)}%`;
    case 'count':
      return Number.isInteger(v) ? v.toLocaleString('en-US') : sig(v);
    case 'rate':
      return `${sig(v)}/s`;
    case 'cores':
      return `${sig(v)} cores`;
  }
}
