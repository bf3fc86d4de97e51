import { finiteOrNull, fmtCount, fmtRate, fmtUs } from '../core/format.js';
import type { RunResult, WindowResult } from '../run/result-types.js';

/**
 * What every report says first, with the number formats of core/format.ts
 * all three share (HTML, Markdown, terminal), so the same run reads the same everywhere. Pure: a RunResult in, strings out.
 */

export type ReportStatus = 'pass' | 'fail' | 'untrustworthy' | 'incomplete';

/** What a report says first: the run's status, one sentence, and the warnings (the JSON-free view of a RunResult). */
export interface ReportHeadline {
  status: ReportStatus;
  /** One sentence: the outcome with its numbers. */
  headline: string;
  /** Every warning the reader must see, generator- and host-bound ones first. De-duplicated. */
  warnings: string[];
}

export function verdictOf(r: RunResult): ReportHeadline {
  const warnings = collectWarnings(r);
  const s = r.summary;
  const limiting = s.limitingTier ? `, limited by ${s.limitingTier}` : s.noTierNamed ? ', no limiting tier could be named' : '';
  const ceiling = (): string => `${fmtCount(s.ceilingAgents)} agents (${fmtRate(s.ceilingRps)})`;
  let status: ReportStatus;
  let headline: string;
  if (r.search) {
    const { outcome, lastGood, firstBad } = r.search;
    const unit = r.search.unit === 'agents' ? 'agents' : 'req/s';
    switch (outcome) {
      case 'found':
        status = 'pass';
        headline = `Ceiling found: ${ceiling()}${limiting}; the first load over the SLO was ${fmtCount(firstBad)} ${unit}`;
        break;
      case 'above-max':
        status = 'pass';
        headline = `No ceiling up to the search maximum: the SLO held at ${fmtCount(lastGood)} ${unit}`;
        break;
      case 'below-start':
        status = 'fail';
        headline = `Below the start: the first step (${fmtCount(firstBad)} ${unit}) already broke the SLO${limiting}`;
        break;
      case 'budget':
        status = 'incomplete';
        headline = `Search budget spent: the ceiling is between ${fmtCount(lastGood)} and ${fmtCount(firstBad)} ${unit}${limiting}`;
        break;
      case 'untrustworthy':
        status = 'untrustworthy';
        headline = `No ceiling: the load generator or host saturated before the stack did (${lastGood === null ? 'no load met the SLO before that' : `last good ${fmtCount(lastGood)} ${unit}`})`;
        break;
    }
  } else {
    const w = headlineWindow(r);
    const verdictWindows = w ? [w] : r.windows;
    const breaches = verdictWindows.flatMap((x) => x.verdict.breaches);
    const agents = r.headline?.client.agents ?? w?.agents ?? null;
    if (verdictWindows.length === 0) {
      status = 'incomplete';
      headline = 'No measured window: nothing to judge';
    } else if (verdictWindows.every((x) => x.verdict.ok)) {
      status = 'pass';
      headline = `SLO met at ${fmtCount(agents)} agents (${fmtRate(r.headline?.client.achievedRatePerSec ?? null)} achieved)`;
    } else {
      status = 'fail';
      headline = `SLO breached at ${fmtCount(agents)} agents: ${breaches.join('; ')}${limiting}`;
    }
  }
  if (!s.trustworthy) status = 'untrustworthy';
  if (r.interrupted || !r.complete || r.error) {
    const why = r.error ?? (r.interrupted ? 'interrupted' : 'incomplete');
    headline = `Run ended early (${why}). ${headline}`;
    if (status === 'pass') status = 'incomplete';
  }
  if (r.plan) {
    const p = r.plan;
    headline += `. Plan for ${fmtCount(p.agents)} agents: ${p.feasible ? 'feasible' : 'not feasible'}, ${p.firstToSaturate.tier} saturates first at ${fmtCount(finiteOrNull(p.firstToSaturate.atAgents))} agents`;
  }
  return { status, headline, warnings };
}

export const STATUS_LABEL: Record<ReportStatus, string> = {
  pass: 'PASS',
  fail: 'FAIL',
  untrustworthy: 'UNTRUSTWORTHY',
  incomplete: 'INCOMPLETE',
};

/**
 * The summary's warnings, then each window's generator reasons and warnings that the summary does
 * not already quote, each once.
 */
function collectWarnings(r: RunResult): string[] {
  const out = new Set<string>();
  for (const w of r.summary.warnings) out.add(w);
  const quoted = (text: string): boolean => r.summary.warnings.some((w) => w.includes(text));
  for (const w of r.windows) {
    const g = w.generator;
    const tag = `window ${w.index} (${w.label})`;
    const kind = [g.generatorBound ? 'generator-bound' : '', g.hostBound ? 'host-bound' : ''].filter(Boolean).join(' and ');
    const reasons = g.reasons.filter((x) => !quoted(x));
    if (g.trust) {
      // GeneratorTrust's judgement: the rig's trouble, and whether it could have changed the verdict.
      const t = g.trust;
      if (!g.trustworthy && !quoted(t.why)) out.add(`${tag}: not trustworthy (${t.judgedAs}${kind ? `; ${kind}` : ''}): ${t.why}`);
      else if (g.trustworthy && kind) out.add(`${tag}: ${kind} (${reasons.join('; ') || 'no reason recorded'}), but the verdict holds (${t.judgedAs}): ${t.why}`);
    } else if ((kind || !g.trustworthy) && (reasons.length > 0 || g.reasons.length === 0)) out.add(`${tag}: ${kind || 'not trustworthy'}: ${reasons.join('; ') || 'no reason recorded'}`);
    for (const x of g.warnings) if (!quoted(x)) out.add(`${tag}: ${x}`);
  }
  return [...out];
}

export function headlineWindow(r: RunResult): WindowResult | null {
  const i = r.headline?.windowIndex;
  if (i === null || i === undefined) return null;
  return r.windows.find((w) => w.index === i) ?? null;
}

type LatencyVsCleanRow = NonNullable<NonNullable<RunResult['faults']>[number]['latencyVsClean']>[number];

/**
 * One op's p50 during a fault against the clean part of its stage, as the reports show it:
 * the ratio, its 95% interval and whether it is within 10% ("unresolved" when the interval
 * straddles 1.10). A result written before the interval existed shows the ratio only.
 */
export function latencyVsCleanParts(l: LatencyVsCleanRow): { cleanP50: string; faultP50: string; ratio: string; interval: string; within: string } {
  const ms = (x: number | null): string => (x === null ? '–' : fmtUs(x * 1000));
  const x = (v: number): string => `${v.toFixed(2)}×`;
  const ci = l.p50RatioCi;
  return {
    cleanP50: ms(l.cleanP50Ms),
    faultP50: ms(l.faultP50Ms),
    ratio: l.p50Ratio === null ? '–' : x(l.p50Ratio),
    interval: ci ? `${x(ci.low)}–${x(ci.high)}` : '–',
    within: l.within10pct ?? '–',
  };
}
