import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readResultFile } from '../../src/run/result-file.js';
import { runCli } from '../helpers/spawn-cli.js';

/**
 * A ceiling search against a stack rmmscale did not start and knows only through its Prometheus
 * series (test/fixtures/fake-tiers.mjs, its own process): a proxy speaking HAProxy's exporter names,
 * two web nodes of 2 workers × 50 ms (80 requests/s together) and a database 50× faster. The search
 * must name the web tier from the scraped series alone; without stack.nodes it must still find the
 * ceiling and say that no tier could be named.
 */
const FIXTURE = fileURLToPath(new URL('../fixtures/fake-tiers.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'rmmscale-external-'));
const KEEP = process.env.RMMSCALE_KEEP_E2E === '1';
let stack: ChildProcess | null = null;
let urls: { proxy: string; web1: string; web2: string; db: string };

beforeAll(async () => {
  stack = spawn(process.execPath, [FIXTURE], { stdio: ['ignore', 'pipe', 'inherit'] });
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: stack!.stdout! }).once('line', resolve);
    stack!.once('exit', (code) => reject(new Error(`the fake stack exited (${code})`)));
  });
  urls = JSON.parse(first) as typeof urls;
  writeFileSync(
    join(dir, 'fake.yaml'),
    [
      'tiers:',
      '  web:',
      '    requests: fakeweb_http_requests_total',
      '    errors: fakeweb_http_requests_total{code=~"5.."}',
      '    busyWorkers: fakeweb_busy_workers',
      '    workers: fakeweb_workers',
      '    queueDepth: fakeweb_queue_length',
      '    latency: { histogram: fakeweb_request_duration_seconds }',
      '  db:',
      '    requests: fakedb_queries_total',
      '    busyWorkers: fakedb_active_connections',
      '    workers: 8',
      '    queueDepth: fakedb_waiting',
      '',
    ].join('\n'),
  );
});

afterAll(() => {
  if (stack?.pid !== undefined && stack.exitCode === null) process.kill(stack.pid, 'SIGTERM');
  if (!KEEP) rmSync(dir, { recursive: true, force: true });
});

function scenario(name: string, nodes: string[]): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `name: ${name}`,
      'stack:',
      `  target: ${urls.proxy}`,
      ...(nodes.length ? ['  nodes:', ...nodes.map((n) => `    - ${n}`)] : []),
      'fleet: { agents: 2000, secret: external-e2e, seed: external, timeout: 5s, connection: pool }',
      // 40, 80, 160 (twice the web tier's 80/s: its queue grows 80/s, past 1 s in a second),
      // then bisected to ±50%: three to five windows of 1 + 3 s (npm test's time budget). p99 1 s:
      // a 50 ms service time stays far under it until the web tier saturates, even on a busy host.
      'ceiling: { start: 40/s, max: 320/s, stepFactor: 2, precision: 0.5, warmup: 1s, measure: 3s, maxSteps: 8 }',
      'slo: { p99: 1s, errors: 1% }',
      'timeLimit: 3m',
      '',
    ].join('\n'),
  );
  return file;
}

describe('a ceiling search against an external stack', () => {
  it('names the web tier from the scraped series alone', async () => {
    const out = join(dir, 'with-nodes');
    const file = scenario('with-nodes', [
      `{ name: lb, tier: proxy, metrics: "${urls.proxy}/metrics", mapping: haproxy-exporter }`,
      `{ name: web-1, tier: web, metrics: "${urls.web1}/metrics", mapping: fake.yaml }`,
      `{ name: web-2, tier: web, metrics: "${urls.web2}/metrics", mapping: fake.yaml }`,
      `{ name: db, tier: db, metrics: "${urls.db}/metrics", mapping: fake.yaml }`,
    ]);
    const r = await runCli(['run', file, '--out', out, '--no-report'], { timeoutMs: 150_000 });
    const result = readResultFile(join(out, 'result.json'));
    expect(r.code, r.stderr).toBe(0);
    expect(result.search?.outcome).toBe('found');
    expect(result.summary.limitingTier).toBe('web');
    expect(result.summary.noTierNamed).toBeNull();
    // 80 requests/s is the most the web tier can serve: the ceiling is below it (and not far below on a quiet host).
    expect(result.summary.ceilingRps).toBeGreaterThanOrEqual(25);
    expect(result.summary.ceilingRps).toBeLessThanOrEqual(82);
    // The window the summary judged by (one measured again for the rig's sake is kept, and not judged).
    const firstBad = result.windows.find((w) => !w.verdict.ok && w.supersededBy === undefined)!;
    expect(firstBad.diagnosis.evidence[0]).toMatch(/^web: utilization (0\.9\d|1\.00) \(web-1 /);
    expect(result.stack.nodes.map((n) => [n.name, n.tier, n.pid])).toEqual([
      ['lb', 'proxy', 0],
      ['web-1', 'web', 0],
      ['web-2', 'web', 0],
      ['db', 'db', 0],
    ]);
    // Every node was scraped each second; the web nodes' window counts match what the proxy passed on and the client saw.
    const ceiling = result.windows[result.headline!.windowIndex!];
    const byNode = new Map(ceiling.nodes.map((n) => [n.node, n]));
    const served = byNode.get('web-1')!.scraped!.requests! + byNode.get('web-2')!.scraped!.requests!;
    // Each node is scraped at its own phase of the second, so a window's edges fall up to a second
    // apart from node to node: the counts agree to within about a second of traffic.
    expect(Math.abs(served - byNode.get('lb')!.scraped!.requests!)).toBeLessThanOrEqual(Math.ceil(ceiling.client.achievedRatePerSec * 1.5));
    expect(Math.abs(served - ceiling.client.completed)).toBeLessThanOrEqual(Math.ceil(ceiling.client.achievedRatePerSec * 1.5));
    expect(byNode.get('db')!.scraped!.requests).toBeGreaterThan(0);
    // Each request holds a worker 50 ms and more: its p50 lies in the (50 ms, 100 ms] bucket or above.
    expect(byNode.get('web-1')!.scraped!.latency!.p50Us).toBeGreaterThan(50_000);
    expect(byNode.get('db')!.utilization!.mean).toBeLessThan(0.5);
    expect(result.summary.warnings.filter((w) => w.startsWith('node '))).toEqual([]);
    expect(result.timeline['web-1'].length).toBeGreaterThan(10);
    expect(result.summary.tiers.map((t) => t.tier)).toEqual(['db', 'web', 'proxy']);
  }, 160_000);

  it('without stack.nodes: finds the ceiling and says that no tier could be named', async () => {
    const out = join(dir, 'no-nodes');
    const r = await runCli(['run', scenario('no-nodes', []), '--out', out], { timeoutMs: 150_000 });
    const result = readResultFile(join(out, 'result.json'));
    expect(r.code, r.stderr).toBe(0);
    expect(result.search?.outcome).toBe('found');
    expect(result.summary.ceilingRps).toBeGreaterThanOrEqual(25);
    expect(result.summary.ceilingRps).toBeLessThanOrEqual(82);
    expect(result.summary.limitingTier).toBeNull();
    expect(result.summary.noTierNamed).toMatch(/^the stack's nodes were not measured: an external target without stack.nodes/);
    // …and the summary printed at the end says it too.
    expect(r.stdout).toMatch(/^PASS: Ceiling found: .*, no limiting tier could be named; the first load over the SLO was /);
    expect(r.stdout).toContain("\nlimiting tier: none could be named: the stack's nodes were not measured: an external target without stack.nodes");
    expect(result.windows.find((w) => !w.verdict.ok)!.diagnosis.evidence).toEqual(['no node of the stack was measured (an external target without stack.nodes): no tier can be named']);
  }, 160_000);

  it('refuses a remote metrics URL without --allow-remote, in one line, before anything runs', async () => {
    const file = scenario('remote', [`{ name: web-1, tier: web, metrics: "http://10.1.2.3:9100/metrics", mapping: node-exporter }`]);
    const r = await runCli(['run', file, '--out', join(dir, 'remote')]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('rmmscale: stack.nodes[0].metrics: http://10.1.2.3:9100/metrics is not a loopback address (127.0.0.0/8, ::1, localhost); pass --allow-remote to load a remote stack on purpose');
  });
});
