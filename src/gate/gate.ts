import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, RmmscaleError } from '../core/errors.js';
import { EXIT, type ExitCode } from '../core/exit-codes.js';
import { readResultFile } from '../run/result-file.js';
import type { RunResult } from '../run/result-types.js';
import { decideAbsolute, decideRelative, DEFAULT_DECIDE, mean, median, type DecideOptions, type RelativeDecision } from './decide.js';
import { formatMetricValue, parseThreshold, ThresholdError, type Threshold } from './grammar.js';
import { resolveMetric } from './resolve-metric.js';

export { gateText, summaryLine } from './gate-text.js';

/**
 * `rmmscale gate`: result.json files in, one verdict per threshold and an exit code out. Reads only
 * result files (never a live stack); prints nothing (the CLI does). docs/gate.md is the manual.
 *
 * Exit codes: 0 every threshold passed · 5 (gateFailed) a threshold or regression failed ·
 * 4 (untrustworthy) a run was incomplete or not trustworthy, or a metric has no value ·
 * 2 (badInput) a bad file, flag or threshold. Invalid beats failed: a verdict on a measurement that
 * cannot be trusted is not a verdict. Inconclusive counts as passed unless `inconclusive: 'fail'`.
 */

export const GATE_SCHEMA = 'rmmscale.gate/1';

export interface LoadedRun {
  file: string;
  result: RunResult;
}

export interface GateOptions {
  current: LoadedRun[];
  baseline: LoadedRun[];
  /** --threshold expressions, in order. */
  thresholds: string[];
  /** Also check the thresholds the scenario wrote into result.thresholds. */
  scenarioThresholds: boolean;
  decide: DecideOptions;
  /** What an inconclusive relative rule counts as. */
  inconclusive: 'pass' | 'fail';
}

export type CheckVerdict = 'pass' | 'fail' | 'inconclusive' | 'invalid';

export interface CheckResult {
  threshold: Threshold;
  verdict: CheckVerdict;
  /** The verdict the numbers gave, before an invalid measurement overrode it. */
  measured: CheckVerdict;
  /** What was compared: the median of the runs (absolute rules) or their mean (relative rules). */
  current: { values: number[]; value: number | null };
  baseline: { values: number[]; value: number | null } | null;
  decision: RelativeDecision | null;
  message: string;
}

export interface GateReport {
  schema: typeof GATE_SCHEMA;
  outcome: 'pass' | 'fail' | 'invalid';
  exitCode: ExitCode;
  scenario: string;
  current: string[];
  baseline: string[];
  /** Why the measurement is invalid (empty when it is valid). */
  invalid: string[];
  warnings: string[];
  method: { confidence: number; noiseCv: number; inconclusive: 'pass' | 'fail' };
  counts: Record<CheckVerdict, number>;
  checks: CheckResult[];
}

/** Gate input that cannot be used (no current run, a baseline of another scenario…). Exit 2. */
export class GateInputError extends RmmscaleError {
  constructor(message: string) {
    super('ERR_GATE_INPUT', message, EXIT.badInput);
  }
}

/** Files as given; a directory stands for its result.json, or the result.json of each subdirectory. */
export function expandRunPaths(paths: readonly string[], flag: string): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch (err) {
      throw new InvalidArgumentError(flag, p, `a result.json file or a directory of runs (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    }
    if (!st.isDirectory()) {
      out.push(p);
      continue;
    }
    if (existsSync(join(p, 'result.json'))) {
      out.push(join(p, 'result.json'));
      continue;
    }
    const found = readdirSync(p, { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(join(p, d.name, 'result.json')))
      .map((d) => join(p, d.name, 'result.json'))
      .sort();
    if (found.length === 0) throw new InvalidArgumentError(flag, p, 'a directory holding result.json or */result.json, found neither');
    out.push(...found);
  }
  return out;
}

/** A result file, read and checked by the one reader (src/run/result-file.ts): a bad one is one line, exit 2. */
export function loadRun(file: string): LoadedRun {
  return { file, result: readResultFile(file) };
}

function key(t: Threshold): string {
  return `${t.metric.name}|${t.value.kind}`;
}

/**
 * Every threshold to check. --threshold adds to the scenario's thresholds and replaces those on the
 * same metric of the same kind (absolute or baseline-relative); flags come last, in order.
 */
export function collectThresholds(o: Pick<GateOptions, 'current' | 'baseline' | 'thresholds' | 'scenarioThresholds'>): Threshold[] {
  const flags = o.thresholds.map((t) => parseThreshold(t, '--threshold'));
  const first = o.current[0];
  const scenario = o.scenarioThresholds ? first.result.thresholds.map((t, i) => parseThreshold(t, `${first.file}: thresholds[${i}]`)) : [];
  const overridden = new Set(flags.map(key));
  const all = [...scenario.filter((t) => !overridden.has(key(t))), ...flags];
  if (all.length === 0) {
    throw new GateInputError(
      o.scenarioThresholds
        ? `no thresholds to check: ${first.file} has none (result.thresholds is empty) and no --threshold was given`
        : 'no thresholds to check: --no-scenario-thresholds and no --threshold was given',
    );
  }
  if (o.baseline.length === 0) {
    const rel = all.find((t) => t.value.kind === 'relative');
    if (rel) throw new ThresholdError(rel.source, rel.text, `a baseline-relative value (${rel.value.text}) needs --baseline BASE.json`);
  }
  return all;
}

function runProblems(r: LoadedRun): string[] {
  const out: string[] = [];
  if (!r.result.complete) out.push(`${r.file}: the run is incomplete${r.result.error ? ` (${r.result.error})` : ''}`);
  if (!r.result.summary.trustworthy) {
    const why = r.result.summary.warnings.slice(0, 2).join('; ');
    out.push(`${r.file}: the measurement is not trustworthy (summary.trustworthy false${why ? `: ${why}` : ''})`);
  }
  return out;
}

function warningsFor(o: GateOptions): string[] {
  const out: string[] = [];
  const runs = [...o.current, ...o.baseline];
  const names = [...new Set(runs.map((r) => r.result.scenario.name))];
  if (names.length > 1) out.push(`the runs come from different scenarios: ${names.join(', ')}`);
  const thr = new Set(o.current.map((r) => JSON.stringify(r.result.thresholds)));
  if (thr.size > 1) out.push(`the current runs carry different thresholds; those of ${o.current[0].file} are used`);
  const host = (r: LoadedRun): string => `${r.result.host.cpus}× ${r.result.host.cpuModel}`;
  const hosts = [...new Set(runs.map(host))];
  if (hosts.length > 1) out.push(`the runs come from different hosts (${hosts.join(' | ')}): expect more noise`);
  const stack = (r: LoadedRun): string => `${r.result.stack.topology}/${r.result.stack.profile}/${r.result.stack.db}`;
  const stacks = [...new Set(runs.map(stack))];
  if (stacks.length > 1) out.push(`the runs used different stacks (topology/profile/db: ${stacks.join(' | ')})`);
  return out;
}

function resolveAll(runs: readonly LoadedRun[], t: Threshold): { values: number[]; missing: string | null; notes: string[] } {
  const values: number[] = [];
  const notes: string[] = [];
  for (const r of runs) {
    const v = resolveMetric(r.result, r.file, t);
    if (v.value === null) return { values, missing: v.note, notes };
    if (v.note) notes.push(v.note);
    values.push(v.value);
  }
  return { values, missing: null, notes };
}

function describeValues(t: Threshold, values: readonly number[], how: 'median' | 'mean'): string {
  const f = (x: number): string => formatMetricValue(t.metric.valueKind, x);
  if (values.length === 1) return f(values[0]);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  if (lo === hi) return `${f(lo)} in all ${values.length} runs`;
  return `${how} ${f(how === 'median' ? median(values) : mean(values))} of ${values.length} runs (${f(lo)}–${f(hi)})`;
}

function check(t: Threshold, o: GateOptions): CheckResult {
  const cur = resolveAll(o.current, t);
  const relative = t.value.kind === 'relative';
  let base: ReturnType<typeof resolveAll> | null = null;
  if (o.baseline.length) {
    try {
      base = resolveAll(o.baseline, t);
    } catch (err) {
      // A baseline is only context for an absolute rule: one that lacks the metric shows "—".
      if (relative || !(err instanceof ThresholdError)) throw err;
    }
  }
  const how = relative ? 'mean' : 'median';
  const summaryOf = (r: typeof cur): { values: number[]; value: number | null } => ({
    values: r.values,
    value: r.missing || r.values.length === 0 ? null : how === 'median' ? median(r.values) : mean(r.values),
  });
  const result = (verdict: CheckVerdict, message: string, decision: RelativeDecision | null = null): CheckResult => ({
    threshold: t,
    verdict,
    measured: verdict,
    current: summaryOf(cur),
    baseline: base ? summaryOf(base) : null,
    decision,
    message,
  });
  if (cur.missing) return result('invalid', `no value: ${cur.missing}`);
  const notes = cur.notes.length ? ` (${cur.notes.join('; ')})` : '';
  if (t.value.kind === 'absolute') {
    const d = decideAbsolute(cur.values, t.op, t.value.value);
    const desc = describeValues(t, cur.values, 'median');
    return result(d.verdict, d.verdict === 'pass' ? `${desc} ${t.op} ${t.value.text}${notes}` : `${desc} is not ${t.op} ${t.value.text}${notes}`);
  }
  if (!base || base.missing) return result('invalid', `no baseline value: ${base?.missing ?? 'no baseline'}`);
  const d = decideRelative(cur.values, base.values, t.op as '<' | '<=' | '>' | '>=', t.value.ratio, o.decide);
  const msg = `${describeValues(t, cur.values, 'mean')} vs ${describeValues(t, base.values, 'mean')}: ${d.note}${notes}`;
  return result(d.verdict, msg, d);
}

export function runGate(o: GateOptions): GateReport {
  if (o.current.length === 0) throw new GateInputError('no current run: give at least one result.json');
  const thresholds = collectThresholds(o);
  const anyRelative = thresholds.some((t) => t.value.kind === 'relative');
  const invalid = [...o.current.flatMap(runProblems), ...(anyRelative ? o.baseline.flatMap(runProblems) : [])];
  const warnings = warningsFor(o);
  if (!anyRelative) for (const p of o.baseline.flatMap(runProblems)) warnings.push(`baseline ${p} (shown for context only)`);
  const checks = thresholds.map((t) => check(t, o));
  if (invalid.length) {
    for (const c of checks) {
      c.message = `measurement invalid (${invalid.join('; ')}); measured: ${c.measured}, ${c.message}`;
      c.verdict = 'invalid';
    }
  }
  const counts: Record<CheckVerdict, number> = { pass: 0, fail: 0, inconclusive: 0, invalid: 0 };
  for (const c of checks) counts[c.verdict]++;
  const failed = counts.fail > 0 || (o.inconclusive === 'fail' && counts.inconclusive > 0);
  const outcome = counts.invalid > 0 ? 'invalid' : failed ? 'fail' : 'pass';
  const exitCode = outcome === 'invalid' ? EXIT.untrustworthy : outcome === 'fail' ? EXIT.gateFailed : EXIT.ok;
  return {
    schema: GATE_SCHEMA,
    outcome,
    exitCode,
    scenario: o.current[0].result.scenario.name,
    current: o.current.map((r) => r.file),
    baseline: o.baseline.map((r) => r.file),
    invalid,
    warnings,
    method: { confidence: o.decide.confidence, noiseCv: o.decide.noiseCv, inconclusive: o.inconclusive },
    counts,
    checks,
  };
}

export const DEFAULT_GATE: Pick<GateOptions, 'decide' | 'inconclusive' | 'scenarioThresholds'> = { decide: DEFAULT_DECIDE, inconclusive: 'pass', scenarioThresholds: true };
