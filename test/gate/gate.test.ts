import { describe, expect, it } from 'vitest';
import { DEFAULT_GATE, gateText, loadRun, runGate, type GateOptions, type LoadedRun } from '../../src/gate/gate.js';
import { runResult, runWithCheckinP99, type RunFixture } from './fixtures.js';

const run = (file: string, r = runResult()): LoadedRun => ({ file, result: r });
const p99Runs = (prefix: string, values: number[], f: RunFixture = {}): LoadedRun[] => values.map((v, i) => run(`${prefix}-${i + 1}.json`, runWithCheckinP99(v, f)));

function gate(o: Partial<GateOptions> & Pick<GateOptions, 'current'>) {
  return runGate({ ...DEFAULT_GATE, baseline: [], thresholds: [], ...o });
}

describe('runGate: thresholds from the scenario and from flags', () => {
  it('uses result.thresholds when no --threshold is given', () => {
    const r = gate({ current: [run('cur.json', runResult({ thresholds: ['checkin.p99 < 500ms', 'errors.rate < 1%'] }))] });
    expect(r.checks.map((c) => [c.threshold.source, c.threshold.text, c.verdict])).toEqual([
      ['cur.json: thresholds[0]', 'checkin.p99 < 500ms', 'pass'],
      ['cur.json: thresholds[1]', 'errors.rate < 1%', 'pass'],
    ]);
    expect(r).toMatchObject({ outcome: 'pass', exitCode: 0, counts: { pass: 2, fail: 0, inconclusive: 0, invalid: 0 } });
  });

  it('--threshold replaces the scenario threshold on the same metric and kind, and adds the others', () => {
    const cur = run('cur.json', runResult({ thresholds: ['checkin.p99 < 300ms', 'errors.rate < 1%'] }));
    const r = gate({ current: [cur], baseline: [run('base.json')], thresholds: ['checkin.p99 < 800ms', 'checkin.p99 <= +10%'] });
    expect(r.checks.map((c) => [c.threshold.source, c.threshold.text])).toEqual([
      ['cur.json: thresholds[1]', 'errors.rate < 1%'],
      ['--threshold', 'checkin.p99 < 800ms'],
      ['--threshold', 'checkin.p99 <= +10%'],
    ]);
  });

  it("--threshold replaces a scenario threshold written in another spelling of the stat (k6's p(99), the older p999)", () => {
    const cur = run('cur.json', runResult({ thresholds: ['checkin.p99 < 300ms', 'checkin.p999 < 400ms', 'errors.rate < 1%'] }));
    const r = gate({ current: [cur], thresholds: ['checkin.p(99) < 800ms', 'checkin.p(99.9) < 900ms'] });
    expect(r.checks.map((c) => [c.threshold.source, c.threshold.text])).toEqual([
      ['cur.json: thresholds[2]', 'errors.rate < 1%'],
      ['--threshold', 'checkin.p(99) < 800ms'],
      ['--threshold', 'checkin.p(99.9) < 900ms'],
    ]);
  });

  it('a baseline written before p95 was recorded: context only for an absolute p95 rule, bad input for a relative one', () => {
    const old = loadRun('baselines/ci-gate/run-1/result.json');
    const abs = gate({ current: [run('cur.json')], baseline: [old], thresholds: ['checkin.p95 < 1s'] });
    expect(abs.checks.map((c) => [c.verdict, c.baseline])).toEqual([['pass', null]]);
    expect(() => gate({ current: [run('cur.json')], baseline: [old], thresholds: ['checkin.p(95) <= +10%'] })).toThrow(
      '--threshold "checkin.p(95) <= +10%": baselines/ci-gate/run-1/result.json has no p95 (headline.client.ops.checkin.latency.p95Us is missing: an older rmmscale wrote it); rerun to gate on p95, or use p90 or p99',
    );
  });

  it('--no-scenario-thresholds checks the flags only', () => {
    const cur = run('cur.json', runResult({ thresholds: ['checkin.p99 < 300ms'] }));
    const r = gate({ current: [cur], thresholds: ['errors.count == 0'], scenarioThresholds: false });
    expect(r.checks.map((c) => c.threshold.text)).toEqual(['errors.count == 0']);
  });

  it('bad input: no thresholds at all, a relative rule without a baseline, a malformed scenario threshold', () => {
    expect(() => gate({ current: [run('cur.json')] })).toThrow('no thresholds to check: cur.json has none (result.thresholds is empty) and no --threshold was given');
    expect(() => gate({ current: [run('cur.json')], scenarioThresholds: false })).toThrow('no thresholds to check: --no-scenario-thresholds and no --threshold was given');
    expect(() => gate({ current: [run('cur.json')], thresholds: ['checkin.p99 <= +10%'] })).toThrow('--threshold "checkin.p99 <= +10%": a baseline-relative value (+10%) needs --baseline BASE.json');
    expect(() => gate({ current: [run('cur.json', runResult({ thresholds: ['ceiling.agents >= -5%'] }))] })).toThrow(
      'cur.json: thresholds[0] "ceiling.agents >= -5%": a baseline-relative value (-5%) needs --baseline BASE.json',
    );
    expect(() => gate({ current: [run('cur.json', runResult({ thresholds: ['checkin.p99 < fast'] }))] })).toThrow(
      'cur.json: thresholds[0] "checkin.p99 < fast": expected a duration like 500ms after "<", got "fast"',
    );
  });
});

describe('runGate: verdicts and exit codes', () => {
  it('an absolute threshold failed: exit 5', () => {
    const r = gate({ current: [run('cur.json', runWithCheckinP99(612))], thresholds: ['checkin.p99 < 500ms', 'errors.count == 0'] });
    expect(r).toMatchObject({ outcome: 'fail', exitCode: 5, counts: { pass: 1, fail: 1 } });
    expect(r.checks[0].message).toBe('612 ms is not < 500ms');
  });

  it('absolute rules on several runs use the median, and say so', () => {
    const r = gate({ current: p99Runs('cur', [420, 900, 410]), thresholds: ['checkin.p99 < 500ms'] });
    expect(r.checks[0]).toMatchObject({ verdict: 'pass', message: 'median 420 ms of 3 runs (410 ms–900 ms) < 500ms' });
    expect(r.checks[0].current.values).toHaveLength(3);
    const same = gate({ current: p99Runs('cur', [420, 420]), thresholds: ['checkin.p99 < 500ms'] });
    expect(same.checks[0].message).toBe('420 ms in all 2 runs < 500ms');
  });

  it('a regression beyond +10% over three runs each: exit 5', () => {
    const r = gate({ current: p99Runs('cur', [520, 525, 515]), baseline: p99Runs('base', [400, 402, 398]), thresholds: ['checkin.p99 <= +10%'] });
    expect(r).toMatchObject({ outcome: 'fail', exitCode: 5 });
    expect(r.checks[0].decision).toMatchObject({ verdict: 'fail', method: 'welch', n: 3, m: 3 });
    expect(r.checks[0].message).toMatch(/^mean 520 ms of 3 runs \(515 ms–525 ms\) vs mean 400 ms of 3 runs \(398 ms–402 ms\): ×1\.3 \(95% CI /);
  });

  it('no regression: exit 0; an inconclusive comparison passes by default, fails with inconclusive: fail', () => {
    const same = gate({ current: p99Runs('cur', [401, 399, 400]), baseline: p99Runs('base', [400, 402, 398]), thresholds: ['checkin.p99 <= +10%'] });
    expect(same).toMatchObject({ outcome: 'pass', exitCode: 0, counts: { pass: 1 } });
    const noisy = { current: p99Runs('cur', [400, 560, 440]), baseline: p99Runs('base', [400, 402, 398]), thresholds: ['checkin.p99 <= +10%'] };
    expect(gate(noisy)).toMatchObject({ outcome: 'pass', exitCode: 0, counts: { inconclusive: 1 } });
    expect(gate({ ...noisy, inconclusive: 'fail' })).toMatchObject({ outcome: 'fail', exitCode: 5, counts: { inconclusive: 1 } });
  });

  it('single runs: the assumed noise; --noise 0 makes it a point comparison', () => {
    const o = { current: [run('cur.json', runWithCheckinP99(420))], baseline: [run('base.json', runWithCheckinP99(400))], thresholds: ['checkin.p99 <= +10%'] };
    expect(gate(o).checks[0].verdict).toBe('inconclusive');
    expect(gate({ ...o, decide: { confidence: 0.95, noiseCv: 0 } }).checks[0].verdict).toBe('pass');
  });

  it('an untrustworthy current run makes every verdict invalid: exit 4, even with a failing threshold', () => {
    const cur = run('cur.json', runWithCheckinP99(900, { trustworthy: false, warnings: ['stage 1: not trustworthy: worker cpu 0.97'] }));
    const r = gate({ current: [cur], thresholds: ['checkin.p99 < 500ms'] });
    expect(r).toMatchObject({ outcome: 'invalid', exitCode: 4, counts: { invalid: 1 } });
    expect(r.invalid).toEqual(['cur.json: the measurement is not trustworthy (summary.trustworthy false: stage 1: not trustworthy: worker cpu 0.97)']);
    expect(r.checks[0]).toMatchObject({ verdict: 'invalid', measured: 'fail' });
    expect(r.checks[0].message).toBe('measurement invalid (cur.json: the measurement is not trustworthy (summary.trustworthy false: stage 1: not trustworthy: worker cpu 0.97)); measured: fail, 900 ms is not < 500ms');
  });

  it('an incomplete run is invalid: exit 4', () => {
    const r = gate({ current: [run('cur.json', runResult({ complete: false, error: 'stack node web-1 exited' }))], thresholds: ['errors.count == 0'] });
    expect(r).toMatchObject({ outcome: 'invalid', exitCode: 4, invalid: ['cur.json: the run is incomplete (stack node web-1 exited)'] });
  });

  it('an invalid baseline invalidates relative rules only; with absolute rules alone it is a warning', () => {
    const bad = run('base.json', runResult({ trustworthy: false }));
    expect(gate({ current: [run('cur.json')], baseline: [bad], thresholds: ['checkin.p99 <= +10%'] }).exitCode).toBe(4);
    const abs = gate({ current: [run('cur.json')], baseline: [bad], thresholds: ['checkin.p99 < 500ms'] });
    expect(abs.exitCode).toBe(0);
    expect(abs.warnings).toEqual(['baseline base.json: the measurement is not trustworthy (summary.trustworthy false) (shown for context only)']);
  });

  it('a metric the run did not produce is invalid: exit 4', () => {
    const r = gate({ current: [run('cur.json', runResult({ search: { outcome: 'budget' } }))], thresholds: ['ceiling.agents >= 40000'] });
    expect(r).toMatchObject({ exitCode: 4, checks: [{ verdict: 'invalid', message: 'no value: cur.json: no ceiling (search outcome budget)' }] });
  });

  it('warns when runs come from different scenarios or hosts', () => {
    const r = gate({ current: [run('cur.json', runResult({ scenario: 'a' }))], baseline: [run('base.json', runResult({ scenario: 'b', cpuModel: 'Other CPU' }))], thresholds: ['checkin.p99 < 1s'] });
    expect(r.warnings).toEqual(['the runs come from different scenarios: a, b', 'the runs come from different hosts (2× Fixture CPU | 2× Other CPU): expect more noise']);
  });

  it('prints one line per threshold for a terminal', () => {
    const r = gate({ current: [run('cur.json', runWithCheckinP99(612))], thresholds: ['checkin.p99 < 500ms', 'errors.count == 0'] });
    expect(gateText(r)).toBe(
      [
        'rmmscale gate: FAIL (exit 5): 2 thresholds: 1 passed, 1 failed (1 current run)',
        '  fail          checkin.p99 < 500ms  612 ms is not < 500ms',
        '  pass          errors.count == 0    0 == 0',
        '',
      ].join('\n'),
    );
  });

  it('a heading replaces "rmmscale gate" and the gate\'s exit code (rmmscale run prints its own)', () => {
    const r = gate({ current: [run('cur.json', runWithCheckinP99(612))], thresholds: ['checkin.p99 < 500ms', 'errors.count == 0'] });
    expect(gateText(r, 'thresholds')).toBe(gateText(r).replace('rmmscale gate: FAIL (exit 5):', 'thresholds: FAIL:'));
    expect(gateText(r, 'thresholds').split('\n')[0]).toBe('thresholds: FAIL: 2 thresholds: 1 passed, 1 failed (1 current run)');
  });
});
