import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runExitCode } from '../../src/cli/run-cli.js';
import type { RunResult } from '../../src/run/result-types.js';
import { alive } from '../helpers/fork-node.js';
import { runCli } from '../helpers/spawn-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'rmmscale-run-e2e-'));
const scenario = (name: string, stageSec: number): string => {
  const p = join(dir, `${name}.yaml`);
  writeFileSync(
    p,
    [
      `name: ${name}`,
      'stack: { topology: single, profile: automate }',
      'fleet: { checkin: 30%/min, seed: run-cli }',
      'stages:',
      `  - { duration: ${stageSec}s, agents: 2000 }`,
      `  - { duration: ${stageSec}s, agents: 4000 }`,
      'background: { dashboard: { rate: 2/s } }',
      'thresholds: ["checkin.p99 < 2s"]',
      'timeLimit: 3m',
    ].join('\n'),
  );
  return p;
};

describe('rmmscale run (the real binary)', () => {
  it('a staged run writes result.json, one .hlog per window, report.html and summary.md, prints the table, and stops every node', async () => {
    const out = join(dir, 'staged');
    const r = await runCli(['run', scenario('staged', 4), '--out', out], { timeoutMs: 120_000 });
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as RunResult;
    expect(r.code, r.stderr).toBe(runExitCode(result));
    expect([0, 4]).toContain(r.code); // 4 only when this host was too busy to trust the numbers
    expect(result.complete).toBe(true);
    expect(result.windows.map((w) => [w.kind, w.agents])).toEqual([
      ['stage', 2000],
      ['stage', 4000],
    ]);
    // Stages ramp from where the one before ended: 0 → 2,000 agents at 30%/min is 0 → 10 check-ins/s
    // (5/s on average), then 2,000 → 4,000 is 10 → 20/s (15/s on average), after a 3 s warm-up at
    // 2,000 agents that is measured nowhere.
    expect(result.windows[0].client.offeredRatePerSec).toBeCloseTo(5, 0);
    expect(result.windows[0].warmupSec).toBe(0);
    expect(result.windows[1].client.offeredRatePerSec).toBeCloseTo(15, 0);
    expect(result.windows[1].warmupSec).toBe(3);
    const single = result.windows[1].nodes[0];
    expect(single.node).toBe('single');
    // Server side and client side count the same check-ins (to within the window edges).
    expect(Math.abs(single.routes.checkin.count - result.windows[1].client.ops.checkin.completed)).toBeLessThanOrEqual(25);
    expect(result.windows[1].background!.ops['user-dashboard'].completed).toBeGreaterThan(2);
    expect(result.headline!.windowIndex).toBe(1);
    for (const f of ['window-00.hlog', 'window-01.hlog', 'report.html', 'summary.md']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(r.stdout).toContain(join(out, 'result.json'));
    for (const n of result.stack.nodes) expect(alive(n.pid)).toBe(false);
  }, 150_000);

  it('drives a relays topology over WebSocket tunnels: every relay holds tunnels, telemetry is acked, a hold stage follows the ramp', async () => {
    const p = join(dir, 'relays.yaml');
    writeFileSync(
      p,
      [
        'name: relays-e2e',
        'stack: { topology: relays2, profile: automate }',
        'fleet: { transport: ws, checkin: 120%/min, seed: relays-e2e }',
        'stages:',
        '  - { duration: 4s, agents: 400 }',
        '  - { duration: 4s, agents: 400 }',
        'timeLimit: 2m',
      ].join('\n'),
    );
    const out = join(dir, 'relays');
    const r = await runCli(['run', p, '--out', out, '--no-report'], { timeoutMs: 120_000 });
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as RunResult;
    expect(result.error, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(runExitCode(result));
    expect(result.complete).toBe(true);
    // 400 agents at 120%/min: 8 telemetry frames/s once the ramp is done.
    expect(result.windows[1].client.offeredRatePerSec).toBeCloseTo(8, 0);
    const rtt = result.windows[1].client.ops['ws-rtt'];
    expect(rtt.completed).toBeGreaterThan(20);
    expect(rtt.failed).toBe(0);
    const relays = result.windows[1].nodes.filter((n) => n.tier === 'relay');
    expect(relays.map((n) => n.node).sort()).toEqual(['relay-1', 'relay-2']);
    for (const n of result.stack.nodes) expect(alive(n.pid)).toBe(false);
  }, 150_000);

  it('Ctrl-C mid-window stops the stack, writes the partial result and exits 130', async () => {
    const out = join(dir, 'interrupted');
    const r = await runCli(['run', scenario('interrupted', 60), '--out', out, '--no-report'], {
      timeoutMs: 120_000,
      onStart: (child) => {
        let sent = false;
        child.stderr!.on('data', (d: Buffer) => {
          if (!sent && d.toString().includes('stage 1/2:')) {
            sent = true;
            setTimeout(() => child.kill('SIGINT'), 3000);
          }
        });
      },
    });
    expect(r.code, r.stderr).toBe(130);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as RunResult;
    expect(result.interrupted).toBe(true);
    expect(result.complete).toBe(false);
    expect(result.error).toBe('interrupted (Ctrl-C)');
    expect(result.summary.warnings).toContain('incomplete: interrupted (Ctrl-C)');
    expect(result.stack.nodes.length).toBe(1);
    for (const n of result.stack.nodes) expect(alive(n.pid)).toBe(false);
  }, 150_000);
});
