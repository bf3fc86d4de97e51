import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/spawn-cli.js';

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
    [['plan', '--from', file('notjson.json', '{')], /^rmmscale: --from: expected a result.json written by rmmscale run \(this is not JSON\)/],
    [['plan', '--from', file('other.json', '{"schema":"rmmscale.swarm/1"}')], /^rmmscale: --from: expected a result.json with schema rmmscale.run\/1, got "rmmscale.swarm\/1"/],
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
