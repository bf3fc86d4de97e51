import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULT_DECIDE } from '../../src/gate/decide.js';
import { expandRunPaths, loadRun, runGate } from '../../src/gate/gate.js';
import { parseThreshold } from '../../src/gate/grammar.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('shipped gate expressions parse', () => {
  it('examples/github-actions.yml: a valid workflow whose gate step runs, reports and uploads', () => {
    const wf = parse(readFileSync(`${root}examples/github-actions.yml`, 'utf8')) as { jobs: Record<string, { steps: Array<{ run?: string; uses?: string; if?: string; with?: Record<string, string> }> }> };
    const steps = Object.values(wf.jobs)[0].steps;
    const runs = steps.map((s) => s.run ?? '').join('\n');
    expect(runs).toContain('npx rmmscale run scenarios/ci-gate.yaml --out reports/ci');
    const gate = steps.find((s) => s.run?.startsWith('npx rmmscale gate'))!;
    expect(gate.run).toContain('--baseline baselines/ci-gate');
    expect(gate.if).toContain('!cancelled()');
    const exprs = [...gate.run!.matchAll(/--threshold "([^"]+)"/g)].map((m) => m[1]);
    expect(exprs).toEqual(['checkin.p99 <= +5%', 'throughput.achieved >= -3%']);
    for (const expr of exprs) expect(() => parseThreshold(expr, '--threshold')).not.toThrow();
    expect(runs).toContain('>> "$GITHUB_STEP_SUMMARY"');
    expect(steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))?.with?.path).toBe('reports/ci/');
  });

  it('baselines/ci-gate: three trustworthy, complete runs of scenarios/ci-gate.yaml that the gate reads as one baseline', () => {
    const files = expandRunPaths([`${root}baselines/ci-gate`], '--baseline');
    expect(files).toHaveLength(3);
    const runs = files.map((f) => loadRun(f));
    for (const r of runs) {
      expect(r.result.scenario.name).toBe('ci-gate');
      expect(r.result.complete).toBe(true);
      expect(r.result.summary.trustworthy).toBe(true);
    }
    // The baseline judged against itself, with the example's rules: a pass, never a failure.
    const report = runGate({ current: runs, baseline: runs, thresholds: ['checkin.p99 <= +5%', 'throughput.achieved >= -3%'], scenarioThresholds: true, decide: DEFAULT_DECIDE, inconclusive: 'pass' });
    expect(report.outcome).toBe('pass');
    expect(report.counts.fail).toBe(0);
  });

  it('every scenario in scenarios/ carries thresholds the gate accepts', () => {
    const files = readdirSync(`${root}scenarios`).filter((f) => f.endsWith('.yaml'));
    let checked = 0;
    for (const f of files) {
      const doc = parse(readFileSync(`${root}scenarios/${f}`, 'utf8')) as { thresholds?: unknown };
      const list = Array.isArray(doc?.thresholds) ? (doc.thresholds as string[]) : [];
      list.forEach((t, i) => expect(() => parseThreshold(t, `scenarios/${f}: thresholds[${i}]`)).not.toThrow());
      checked += list.length;
    }
    // The counts prove the loop ran (a missing folder or a renamed key would check nothing); a new
    // scenario or threshold updates them.
    expect(files).toHaveLength(10);
    expect(checked).toBe(3);
  });
});
