import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readHlog } from '../../src/metrics/histogram.js';
import type { SwarmResult } from '../../src/swarm/result.js';
import { startAgentServer, type TestAgentServer } from '../helpers/agent-server.js';
import { expectTrustedUnlessStolen } from '../helpers/host-trust.js';
import { runCli } from '../helpers/spawn-cli.js';

/** The agent server's secret: the swarm gets it with --secret (there is no default secret). */
const SECRET = 'swarm-cli-test-secret';

let server: TestAgentServer | null = null;
let dir = '';

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rmmscale-cli-'));
});
afterEach(async () => {
  await server?.close();
  server = null;
  rmSync(dir, { recursive: true, force: true });
});

describe('rmmscale swarm (the real binary)', () => {
  it('runs, prints achieved beside target, writes a versioned result and an .hlog, exits 0', async () => {
    server = await startAgentServer(SECRET);
    const json = join(dir, 'r.json');
    const hlog = join(dir, 'r.hlog');
    const r = await runCli(['swarm', '--target', server.url, '--secret', SECRET, '--agents', '6000', '--duration', '3s', '--json', json, '--hlog', hlog]);
    expect(r.stderr).not.toContain('internal error');
    expect(r.stdout).toMatch(/rate\s+achieved [\d.]+\/s\s+target 30\/s/);
    const result = JSON.parse(readFileSync(json, 'utf8')) as SwarmResult;
    expectTrustedUnlessStolen(r.code, result, r.stderr);
    // Steal on the summary line: the mean, and the worst second beside it once it passes 1%.
    const g = result.generator;
    if (g.hostStealMean === null) expect(r.stdout).toContain(', steal n/a');
    else {
      expect(g.hostStealMax).toBeGreaterThanOrEqual(g.hostStealMean);
      const worst = g.hostStealMax! > 0.01 ? ` (worst second ${(g.hostStealMax! * 100).toFixed(0)}%)` : '';
      expect(r.stdout).toContain(`, steal ${(g.hostStealMean * 100).toFixed(1)}%${worst}\n`);
      // The lag over the seconds free of steal: every measured second sampled; named on the line
      // only when steal took some out.
      const q = g.schedulingLagStealFree!;
      expect(q.ofSeconds).toBe(3);
      expect(q.seconds).toBe(result.series.filter((p) => !p.warmup && p.hostSteal !== null && p.hostSteal <= 0.01 && p.tSec <= 3).length);
      if (q.seconds === 0) expect(r.stdout).toContain('(no second was free of steal)');
      else if (q.seconds < q.ofSeconds) expect(r.stdout).toContain(`over the ${q.seconds} of ${q.ofSeconds} s free of steal`);
      else expect(r.stdout).not.toContain('free of steal');
    }
    expect(result.schema).toBe('rmmscale.swarm/1');
    expect(result.ops.checkin.count).toBe(server.counts.get('/agent/v1/checkin'));
    expect(Math.abs(result.ops.checkin.count - 90)).toBeLessThanOrEqual(2);
    expect(readHlog(readFileSync(hlog, 'utf8')).length).toBeGreaterThanOrEqual(3);
  });

  it('--rate max: a closed loop is saturated by design; it says the target served at least that rate and exits 0', async () => {
    server = await startAgentServer(SECRET);
    const json = join(dir, 'r.json');
    const r = await runCli(['swarm', '--target', server.url, '--secret', SECRET, '--rate', 'max', '--connections', '8', '--duration', '2s', '--json', json]);
    const result = JSON.parse(readFileSync(json, 'utf8')) as SwarmResult;
    expect(r.code).toBe(0);
    expect(result.verdict.trust?.judgedAs).toBe('closed-loop');
    expect(result.verdict.trustworthy).toBe(true);
    expect(r.stdout).toContain(`verdict   the target served at least ${result.summary.achievedRatePerSec}/s; the generator may have been the limit`);
    expect(result.summary.completed).toBeGreaterThan(0);
  });

  it.each([
    [['swarm', '--target', 'http://127.0.0.1:1', '--agents', 'lots'], 'rmmscale: --agents: expected a whole number from 1 to 2000000, got "lots"'],
    [['swarm', '--target', 'http://127.0.0.1:1', '--arrival', 'bursty'], 'rmmscale: --arrival: expected one of periodic, poisson, got "bursty"'],
    [['swarm', '--target', 'http://192.168.1.10:80'], 'rmmscale: --target: http://192.168.1.10:80 is not a loopback address (127.0.0.0/8, ::1, localhost); pass --allow-remote to load a remote stack on purpose'],
    [['swarm', '--target', 'http://127.0.0.1:1', '--frobnicate'], 'rmmscale: Unknown argument: frobnicate (allowed flags: rmmscale <command> --help)'],
  ])('bad input %j: one line, no stack trace, exit 2', async (args, line) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(line);
  });

  it('an unreachable target exits 3 with a clear line', async () => {
    const r = await runCli(['swarm', '--target', 'http://127.0.0.1:9', '--duration', '1s']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('rmmscale: target http://127.0.0.1:9 is unreachable: connection refused (is the stack running?)');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a generator-bound run says so and exits 4, not 0 and not 3', async () => {
    server = await startAgentServer(SECRET, { delayMs: 100 });
    const json = join(dir, 'gb.json');
    const r = await runCli(['swarm', '--target', server.url, '--secret', SECRET, '--agents', '200', '--rate', '200/s', '--duration', '2s', '--connection', 'pool', '--connections', '2', '--json', json]);
    expect(r.code).toBe(4);
    expect(r.stdout).toContain('NOT TRUSTWORTHY (generator-bound)');
    expect((JSON.parse(readFileSync(json, 'utf8')) as SwarmResult).verdict.generatorBound).toBe(true);
  });

  it('Ctrl-C stops cleanly, writes the partial result atomically and exits 130', async () => {
    server = await startAgentServer(SECRET);
    const json = join(dir, 'partial.json');
    const r = await runCli(['swarm', '--target', server.url, '--secret', SECRET, '--agents', '3000', '--rate', '100/s', '--duration', '60s', '--json', json], {
      onStart: (child) => setTimeout(() => child.kill('SIGINT'), 2500),
    });
    expect(r.code).toBe(130);
    expect(existsSync(json)).toBe(true);
    const result = JSON.parse(readFileSync(json, 'utf8')) as SwarmResult;
    expect(result.interrupted).toBe(true);
    expect(result.complete).toBe(false);
    expect(result.ops.checkin.count).toBeGreaterThan(50);
    expect(result.ops.checkin.count).toBe(server.counts.get('/agent/v1/checkin'));
  });
});
