import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { scrapeConfig } from '../../src/metrics/scrape-config.js';
import { parsePromStrict } from '../helpers/prom-strict.js';
import { runCli } from '../helpers/spawn-cli.js';

/** The Prometheus scrape config `stack up` and `run` print (--print-scrape-config). */
describe('scrapeConfig', () => {
  it('one job per kind of target, split where the scheme or path differs', () => {
    const text = scrapeConfig([
      { job: 'rmmscale-stack', url: 'http://127.0.0.1:8081/metrics' },
      { job: 'rmmscale-stack', url: 'http://127.0.0.1:8082/metrics' },
      { job: 'rmmscale-stack', url: 'http://127.0.0.1:8404/metrics/haproxy' },
      { job: 'rmmscale-generator', url: 'http://127.0.0.1:9464/metrics' },
    ]);
    expect(text).toBe(`scrape_configs:
  - job_name: rmmscale-stack
    scrape_interval: 5s
    scheme: http
    metrics_path: /metrics
    honor_labels: true
    static_configs:
      - targets:
          - 127.0.0.1:8081
          - 127.0.0.1:8082
  - job_name: rmmscale-stack-2
    scrape_interval: 5s
    scheme: http
    metrics_path: /metrics/haproxy
    honor_labels: true
    static_configs:
      - targets:
          - 127.0.0.1:8404
  - job_name: rmmscale-generator
    scrape_interval: 5s
    scheme: http
    metrics_path: /metrics
    honor_labels: true
    static_configs:
      - targets:
          - 127.0.0.1:9464
`);
  });
});

describe('rmmscale stack up --print-scrape-config (the real binary)', () => {
  it('names every node, and each target serves Prometheus text', async () => {
    type Ready = { event: string; nodes: Array<{ metricsUrl: string }> };
    let ready: Ready | null = null;
    let yamlText: string | null = null;
    const bodies: string[] = [];
    const r = await runCli(['stack', 'up', 'split2', '--json', '--secret', 'scrape-config-test', '--print-scrape-config'], {
      timeoutMs: 60_000,
      onStart: (child) => {
        let buf = '';
        child.stdout!.on('data', (d: Buffer) => {
          buf += d.toString();
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line === '') continue;
            const e = JSON.parse(line) as { event: string; yaml?: string } & Ready;
            if (e.event === 'ready') ready = e;
            if (e.event === 'scrape-config' && yamlText === null) {
              yamlText = e.yaml!;
              const cfg = parse(yamlText) as { scrape_configs: Array<{ scheme: string; metrics_path: string; static_configs: Array<{ targets: string[] }> }> };
              const urls = cfg.scrape_configs.flatMap((c) => c.static_configs[0].targets.map((t) => `${c.scheme}://${t}${c.metrics_path}`));
              void Promise.all(urls.map(async (u) => bodies.push(await (await fetch(u)).text()))).finally(() => child.kill('SIGINT'));
            }
          }
        });
      },
    });
    expect(r.code).toBe(130);
    expect(ready).not.toBeNull();
    const cfg = parse(yamlText!) as { scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }> };
    expect(cfg.scrape_configs.map((c) => c.job_name)).toEqual(['rmmscale-stack']);
    expect(cfg.scrape_configs[0].static_configs[0].targets).toEqual(ready!.nodes.map((n) => new URL(n.metricsUrl).host));
    expect(bodies).toHaveLength(ready!.nodes.length);
    for (const b of bodies) expect(parsePromStrict(b).has('rmmscale_requests_total')).toBe(true);
  });
});
