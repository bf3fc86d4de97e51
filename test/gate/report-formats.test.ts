import { describe, expect, it } from 'vitest';
import { DEFAULT_GATE, runGate, type GateOptions, type LoadedRun } from '../../src/gate/gate.js';
import { gateJunit, xmlAttr, xmlText } from '../../src/gate/junit.js';
import { gateMarkdown, mdCell } from '../../src/gate/markdown.js';
import { runResult, runWithCheckinP99 } from './fixtures.js';
import { children, parseXml } from './xml.js';

const run = (file: string, r = runResult()): LoadedRun => ({ file, result: r });
const gate = (o: Partial<GateOptions> & Pick<GateOptions, 'current'>) => runGate({ ...DEFAULT_GATE, baseline: [], thresholds: [], ...o });

/** One of each verdict: pass, fail, inconclusive (a straddling relative rule). */
function mixed(inconclusive: 'pass' | 'fail' = 'pass') {
  const cur = [400, 560, 440].map((v, i) => run(`cur-${i}.json`, runWithCheckinP99(v, { scenario: 'ci <gate> & "quotes"' })));
  const base = [400, 402, 398].map((v, i) => run(`base-${i}.json`, runWithCheckinP99(v, { scenario: 'ci <gate> & "quotes"' })));
  return gate({ current: cur, baseline: base, thresholds: ['checkin.p99 < 1s', 'checkin.p99 < 300ms', 'checkin.p99 <= +10%'], inconclusive });
}

describe('the tiny test XML parser is strict', () => {
  it.each([
    ['<a>', 'unclosed <a>'],
    ['<a></b>', '</b> closes <a>'],
    ['<a x="1" x="2"/>', 'duplicate attribute x'],
    ['<a x="<"/>', '"<" must be escaped in an attribute'],
    ['<a>&</a>', 'bare "&"'],
    ['<a>&nbsp;</a>', 'unknown entity &nbsp;'],
    ['<a/><b/>', 'content after the root element'],
    ['<a>\u0001</a>', 'forbidden character'],
    ['<a x=1/>', 'expected a quoted attribute value'],
  ])('%j → %s', (xml, what) => {
    expect(() => parseXml(xml)).toThrow(what);
  });

  it('decodes entities and character references', () => {
    expect(parseXml(`<a v="&lt;&amp;&quot;&apos;&#10;&#x41;">x &gt; y</a>`)).toEqual({ name: 'a', attrs: { v: `<&"'\nA` }, children: [], text: 'x > y' });
  });
});

describe('JUnit XML', () => {
  it('escapes text and attributes so that anything round-trips', () => {
    const nasty = `a<b & "c" 'd'\n\te>\u0007 ok`;
    const xml = `<x a="${xmlAttr(nasty)}">${xmlText(nasty)}</x>`;
    const el = parseXml(xml);
    expect(el.attrs.a).toBe(nasty.replace('\u0007', '\uFFFD'));
    expect(el.text).toBe(nasty.replace('\u0007', '\uFFFD'));
  });

  it('one test case per threshold: failure, skipped for inconclusive, nothing for pass', () => {
    const report = mixed();
    expect(report.counts).toEqual({ pass: 1, fail: 1, inconclusive: 1, invalid: 0 });
    const root = parseXml(gateJunit(report));
    expect(root.name).toBe('testsuites');
    expect(root.attrs).toMatchObject({ tests: '3', failures: '1', errors: '0', skipped: '1' });
    const [suite] = children(root, 'testsuite');
    expect(suite.attrs.name).toBe('rmmscale gate: ci <gate> & "quotes"');
    const props = children(children(suite, 'properties')[0], 'property').map((p) => [p.attrs.name, p.attrs.value]);
    expect(props.slice(0, 3)).toEqual([['outcome', 'fail'], ['exitCode', '5'], ['current', 'cur-0.json']]);
    const cases = children(suite, 'testcase');
    expect(cases.map((c) => c.attrs.name)).toEqual(['checkin.p99 < 1s', 'checkin.p99 < 300ms', 'checkin.p99 <= +10%']);
    expect(cases.map((c) => c.children.map((x) => x.name))).toEqual([[], ['failure'], ['skipped']]);
    const failure = cases[1].children[0];
    expect(failure.attrs.message).toBe('median 440 ms of 3 runs (400 ms–560 ms) is not < 300ms');
    expect(failure.text).toBe('--threshold: checkin.p99 < 300ms\nmedian 440 ms of 3 runs (400 ms–560 ms) is not < 300ms');
    expect(cases[2].children[0].attrs.message).toMatch(/^inconclusive: mean 467 ms of 3 runs .*the interval straddles 1\.1$/);
  });

  it('inconclusive counts as a failure under inconclusive: fail', () => {
    const cases = children(children(parseXml(gateJunit(mixed('fail'))), 'testsuite')[0], 'testcase');
    expect(cases[2].children.map((x) => [x.name, x.attrs.type])).toEqual([['failure', 'inconclusive']]);
  });

  it('an invalid measurement makes every test case an error', () => {
    const r = gate({ current: [run('cur.json', runResult({ trustworthy: false }))], thresholds: ['checkin.p99 < 1s', 'errors.count == 0'] });
    const root = parseXml(gateJunit(r));
    expect(root.attrs).toMatchObject({ tests: '2', failures: '0', errors: '2', skipped: '0' });
    const cases = children(children(root, 'testsuite')[0], 'testcase');
    for (const c of cases) {
      expect(c.children.map((x) => [x.name, x.attrs.type])).toEqual([['error', 'invalid-measurement']]);
      expect(c.children[0].attrs.message).toMatch(/^measurement invalid \(cur\.json: the measurement is not trustworthy \(summary\.trustworthy false\)\); measured: pass, /);
    }
  });
});

describe('Markdown summary', () => {
  it('a table: threshold, current, baseline, verdict, details', () => {
    const md = gateMarkdown(mixed());
    const lines = md.split('\n');
    expect(lines[0]).toBe('### rmmscale gate: ❌ failed');
    expect(lines[2]).toBe('3 thresholds: 1 passed, 1 failed, 1 inconclusive (3 current runs vs 3 baseline runs) · scenario `ci <gate> & "quotes"` · exit 5');
    const table = lines.filter((l) => l.startsWith('|'));
    expect(table[0]).toBe('| threshold | current | baseline | verdict | details |');
    expect(table).toHaveLength(5);
    expect(table[2]).toBe('| `checkin.p99 < 1s` | 440 ms (median of 3: 400 ms–560 ms) | 400 ms (median of 3: 398 ms–402 ms) | ✅ pass | median 440 ms of 3 runs (400 ms–560 ms) &lt; 1s |');
    expect(table[3]).toContain('| ❌ fail |');
    expect(table[4]).toMatch(/^\| `checkin\.p99 <= \+10%` \| 467 ms \(mean of 3: 400 ms–560 ms\) \| 400 ms \(mean of 3: 398 ms–402 ms\) \| ❔ inconclusive \| /);
    // Every row has exactly five cells: no unescaped pipe leaks from a message.
    for (const row of table) expect(row.replace(/\\\|/g, '').split('|').length).toBe(7);
  });

  it('escapes pipes and line breaks in cells, and lists why a measurement is invalid', () => {
    expect(mdCell('a|b\nc <d>')).toBe('a\\|b c &lt;d&gt;');
    const r = gate({ current: [run('cur.json', runResult({ complete: false, error: 'node|1 died' }))], thresholds: ['errors.count == 0'] });
    const md = gateMarkdown(r);
    expect(md).toContain('### rmmscale gate: ⚠️ invalid measurement');
    expect(md).toContain('- cur.json: the run is incomplete (node\\|1 died)');
    expect(md).toContain('| ⚠️ invalid |');
  });
});
