import { readFileSync, existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { SwarmResult } from '../../src/swarm/result.js';
import { runCli } from '../helpers/spawn-cli.js';
import { SWARM_CLI_SECRET, swarmCliFixture } from '../helpers/swarm-cli-fixture.js';

const fx = swarmCliFixture();
const SECRET = SWARM_CLI_SECRET;

describe('rmmscale swarm (the real binary)', () => {
  it('--rate max: a closed loop is saturated by design; it says the target served at least that rate and exits 0', async () => {
    const server = await fx.start();
    const json = fx.path('r.json');
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
    const server = await fx.start({ delayMs: 100 });
    const json = fx.path('gb.json');
    const r = await runCli(['swarm', '--target', server.url, '--secret', SECRET, '--agents', '200', '--rate', '200/s', '--duration', '2s', '--connection', 'pool', '--connections', '2', '--json', json]);
    expect(r.code).toBe(4);
    expect(r.stdout).toContain('NOT TRUSTWORTHY (generator-bound)');
    expect((JSON.parse(readFileSync(json, 'utf8')) as SwarmResult).verdict.generatorBound).toBe(true);
  });

  it('Ctrl-C stops cleanly, writes the partial result atomically and exits 130', async () => {
    const server = await fx.start();
    const json = fx.path('partial.json');
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
