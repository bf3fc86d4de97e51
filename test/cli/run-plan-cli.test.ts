import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunResult } from '../../src/run/result-types.js';
import { runCli } from '../helpers/spawn-cli.js';
import { buildResult } from '../report/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'rmmscale-run-cli-'));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('rmmscale run: bad input is one line and exit 2, before anything starts', () => {
  it.each([
    [['run', '/nonexistent/x.yaml'], /^rmmscale: SCENARIO: expected a readable scenario file .*got "\/nonexistent\/x.yaml"$/],
    [['run', file('remote.yaml', 'stack:\n  target: http://10.1.2.3:8080\nstages:\n  - { duration: 5s, agents: 10 }\n')], /^rmmscale: stack\.target: .*10\.1\.2\.3.*--allow-remote/],
    [['run', file('bad.yaml', 'stack:\n  topology: single\nstages:\n  - { duration: fast, agents: 10 }\n')], /bad\.yaml:4 stages\[0\]\.duration: expected/],
    [['run', file('ok.yaml', 'stack:\n  topology: single\nstages:\n  - { duration: 5s, agents: 10 }\nthresholds: ["checkin.p99 < 1s"]\n'), '--junit'], /^rmmscale: --junit: expected a file path, got ""$/],
    [['run', file('ok2.yaml', 'stack:\n  topology: single\nstages:\n  - { duration: 5s, agents: 10 }\nthresholds: ["checkin.p99 < 1s"]\n'), '--md', ''], /^rmmscale: --md: expected a file path, got ""$/],
    [['run', file('none.yaml', 'stack:\n  topology: single\nstages:\n  - { duration: 5s, agents: 10 }\n'), '--md', 'gate.md'], /^rmmscale: --md: expected a scenario with thresholds: to report on \(.*none\.yaml has none\), got "gate\.md"$/],
    [['run', file('typo.yaml', 'stack:\n  topology: single\nstages:\n  - { duration: 5s, agents: 10 }\nthresholds: ["checkin.p99 < 500"]\n')], /^rmmscale: .*typo\.yaml: thresholds\[0\] "checkin\.p99 < 500": expected a duration like 500ms after "<", got "500"/],
    [['run', file('rel.yaml', 'stack:\n  topology: single\nstages:\n  - { duration: 5s, agents: 10 }\nthresholds: ["errors.rate < 1%", "checkin.p99 <= +10%"]\n')], /^rmmscale: .*rel\.yaml: thresholds\[1\] "checkin\.p99 <= \+10%": a baseline-relative value \(\+10%\) cannot be checked by rmmscale run/],
    [['plan', '--agents', 'many'], /^rmmscale: --agents: expected a whole number of agents .* got "many"$/],
    [['plan', '--slo', 'p50<1s'], /^rmmscale: --slo: expected a p99 bound like "p99<500ms" or "p99<1s", got "p50<1s"$/],
    [['plan', '--redundancy', 'n+2'], /^rmmscale: --redundancy: expected n\+1 or none, got "n\+2"$/],
    // The one reader's messages (src/run/result-file.ts), as `rmmscale report` and `gate` say them.
    [['plan', '--from', file('notjson.json', '{')], /^rmmscale: \/\S+\/notjson\.json: not JSON \(.+\); expected the result\.json of rmmscale run$/],
    [['plan', '--from', file('other.json', '{"schema":"rmmscale.swarm/1"}')], /^rmmscale: \/\S+\/other\.json: schema: expected "rmmscale\.run\/1" \(the result\.json of rmmscale run\), got "rmmscale\.swarm\/1"$/],
    [['plan', '--from', file('partial.json', '{"schema":"rmmscale.run/1","summary":{}}')], /^rmmscale: \/\S+\/partial\.json: not a complete rmmscale\.run\/1 result: scenario: expected object, got missing; versions: expected object, got missing; host: expected object, got missing; startedAt: expected string, got missing; endedAt: expected string, got missing; complete: expected boolean, got missing; and 18 more$/],
  ])('%j', async (args, line) => {
    const r = await runCli(args as string[]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines.some((l) => (line as RegExp).test(l)), r.stderr).toBe(true);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // never a stack trace
  });
});

describe('rmmscale plan (the automate model)', () => {
  it('prints nodes per tier for 20k, 40k and 50k agents; the JSON matches the arithmetic', async () => {
    const r = await runCli(['plan', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { plans: Array<{ agents: number; tiers: Array<{ tier: string; nodes: number; demandRps: number; headroom: number }>; firstToSaturate: { tier: string } }> };
    expect(out.plans.map((p) => p.agents)).toEqual([20_000, 40_000, 50_000]);
    for (const p of out.plans) {
      const web = p.tiers.find((t) => t.tier === 'web-agent')!;
      // One check-in per agent every 200 s: 0.005/s per agent.
      expect(web.demandRps).toBeCloseTo(p.agents * 0.005, 9);
      expect(p.firstToSaturate.tier).toBe('db');
    }
    // A web node carries ≈104/s at p99 ≤ 1 s; at 80% that is ≈83/s: 100/s → 2 nodes, +1 for n+1.
    expect(out.plans[0].tiers.find((t) => t.tier === 'web-agent')!.nodes).toBe(3);
    const text = await runCli(['plan', '--agents', '20000']);
    // 3 agent web nodes and the user web node: the split4 topology.
    expect(text.stdout).toMatch(/^20,000 \| split4 \| 3 \(\d+%\) \| 1 \(\d+%\) \| db at [\d,]+ \| db is a single point of failure$/m);
    const infeasible = await runCli(['plan', '--agents', '50000']);
    expect(infeasible.stdout).toMatch(/^50,000 \| \(split5: not enough\) \| /m);
  });
});

describe('rmmscale plan --from: the check-in model is the result\'s typed load.checkin', () => {
  type PlanOut = { plans: Array<{ agents: number; tiers: Array<{ tier: string; nodes: number; demandRps: number }> }>; notes: string[] };
  /** The report fixture (a split3 search, 0.05 requests/s per agent at its 6,500-agent ceiling) with its check-in model set. */
  const withCheckin = (name: string, checkin: RunResult['load']['checkin']): string => {
    const r = buildResult();
    r.load = { unit: 'agents', checkin };
    // What the old reader looked at instead; nothing reads it now.
    r.scenario.definition = { fleet: { checkin: checkin.text } };
    return file(name, JSON.stringify(r));
  };

  it('a fixed rate (325/s over the 6,500 agents of the headline: 300%/min each) plans as that share per minute does', async () => {
    const fixed = await runCli(['plan', '--from', withCheckin('fixed-rate.json', { kind: 'rate', ratePerSec: 325, text: '325/s' }), '--agents', '20000', '--json']);
    expect(fixed.stderr).toBe('');
    expect(fixed.code).toBe(0);
    const share = await runCli(['plan', '--from', withCheckin('share.json', { kind: 'fraction', fractionPerMin: 3, text: '300%/min' }), '--agents', '20000', '--json']);
    const a = JSON.parse(fixed.stdout) as PlanOut;
    const b = JSON.parse(share.stdout) as PlanOut;
    expect(a.plans).toEqual(b.plans);
    // The plan's 30%/min is a tenth of the run's per-agent rate: demand scales by 0.1, not by a guess.
    expect(a.notes).toContain("demand scaled ×0.100 from the run's check-in rate (325/s) to the plan's");
    const tiers = buildResult().summary.tiers;
    const web = tiers.find((t) => t.tier === 'web-agent')!;
    const plannedWeb = a.plans[0].tiers.find((t) => t.tier === 'web-agent')!;
    expect(plannedWeb.demandRps).toBeCloseTo(20_000 * (web.ceilingRps! / web.ceilingAgents!) * 0.1, 6);
    // Two agent web nodes shared the measured ceiling: ⌈demand ÷ (ceiling/2 × 0.8)⌉ + 1 (n+1).
    expect(plannedWeb.nodes).toBe(Math.ceil(plannedWeb.demandRps / ((web.ceilingRps! / 2) * 0.8)) + 1);
  });
});
