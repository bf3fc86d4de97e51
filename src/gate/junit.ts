import type { GateReport } from './gate.js';

/**
 * The gate as JUnit XML, for CI test tabs: one <testcase> per threshold. A failed threshold is a
 * <failure>, an inconclusive one <skipped> (a <failure> under `--inconclusive fail`), and every
 * threshold of an invalid measurement an <error>. No timestamps or durations: the same report gives
 * the same bytes.
 */

/** Characters XML 1.0 forbids even escaped (control characters other than tab, LF, CR; lone surrogates). */
const INVALID_XML = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

export function xmlText(s: string): string {
  return s.replace(INVALID_XML, '\uFFFD').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function xmlAttr(s: string): string {
  return xmlText(s).replace(/"/g, '&quot;').replace(/'/g, '&apos;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;');
}

export function gateJunit(r: GateReport): string {
  const suite = `rmmscale gate: ${r.scenario}`;
  const classname = `rmmscale.gate.${r.scenario}`;
  let failures = 0;
  let errors = 0;
  let skipped = 0;
  const cases: string[] = [];
  for (const c of r.checks) {
    const name = c.threshold.text;
    const detail = `${c.threshold.source}: ${c.threshold.text}\n${c.message}`;
    let body = '';
    if (c.verdict === 'fail' || (c.verdict === 'inconclusive' && r.method.inconclusive === 'fail')) {
      failures++;
      const why = c.verdict === 'fail' ? c.message : `inconclusive (counted as failed: --inconclusive fail): ${c.message}`;
      body = `\n      <failure message="${xmlAttr(why)}" type="${c.verdict === 'fail' ? 'threshold' : 'inconclusive'}">${xmlText(detail)}</failure>\n    `;
    } else if (c.verdict === 'inconclusive') {
      skipped++;
      body = `\n      <skipped message="${xmlAttr(`inconclusive: ${c.message}`)}"/>\n    `;
    } else if (c.verdict === 'invalid') {
      errors++;
      body = `\n      <error message="${xmlAttr(c.message)}" type="invalid-measurement">${xmlText(detail)}</error>\n    `;
    }
    cases.push(`    <testcase classname="${xmlAttr(classname)}" name="${xmlAttr(name)}" time="0">${body}</testcase>`);
  }
  const counts = `tests="${r.checks.length}" failures="${failures}" errors="${errors}" skipped="${skipped}"`;
  const props = [
    ['outcome', r.outcome],
    ['exitCode', String(r.exitCode)],
    ...r.current.map((f) => ['current', f]),
    ...r.baseline.map((f) => ['baseline', f]),
    ...r.invalid.map((p) => ['invalid', p]),
    ...r.warnings.map((w) => ['warning', w]),
  ]
    .map(([k, v]) => `      <property name="${xmlAttr(k)}" value="${xmlAttr(v)}"/>`)
    .join('\n');
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="rmmscale gate" ${counts} time="0">`,
    `  <testsuite name="${xmlAttr(suite)}" ${counts} time="0">`,
    '    <properties>',
    props,
    '    </properties>',
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
