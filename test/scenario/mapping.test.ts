import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core/errors.js';
import { loadMapping, parseMapping, shippedMappings, signalsFor } from '../../src/scenario/mapping.js';
import { parseScenario } from '../../src/scenario/load.js';

const dir = mkdtempSync(join(tmpdir(), 'rmmscale-mapping-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function problems(run: () => unknown): string[] {
  try {
    run();
  } catch (err) {
    if (err instanceof ValidationError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ValidationError');
}

describe('mapping files', () => {
  it('ships node-exporter and haproxy-exporter, both valid', () => {
    expect(shippedMappings()).toEqual(['haproxy-exporter', 'node-exporter']);
    const h = loadMapping('haproxy-exporter', dir);
    expect(h.name).toBe('haproxy-exporter');
    expect(signalsFor(h, 'proxy').requests?.text).toBe('haproxy_frontend_http_requests_total{proxy="agents"}');
    // The web tier's own signals replace the file's; the others stay.
    expect(signalsFor(h, 'web').requests?.text).toBe('haproxy_backend_http_requests_total{proxy="agents"}');
    expect(signalsFor(h, 'web').queueDepth?.text).toBe('haproxy_backend_current_queue{proxy="agents"}');
    expect(signalsFor(loadMapping('node-exporter', dir), 'db').utilization).toMatchObject({ busySeconds: { name: 'node_cpu_seconds_total' }, over: 'cpu' });
  });

  it('resolves units and numbers', () => {
    const m = parseMapping(`signals:\n  workers: 16\n  latency: { histogram: 'x_ms{a="b"}', unit: milliseconds }\n`, 'm.yaml');
    expect(m.signals.workers).toBe(16);
    expect(m.signals.latency).toMatchObject({ histogram: { name: 'x_ms' }, unitSec: 0.001 });
  });

  it.each<[string, string, string[]]>([
    ['an unknown signal, with a near miss', 'signals:\n  request: x_total\n', ['m.yaml:2 signals.request: expected a known key (did you mean "requests"?), got "request"']],
    ['a selector that does not parse', 'signals:\n  requests: x_total{proxy="a"\n', ['m.yaml:2 signals.requests: expected a metric selector like name{label="value"}: "," or "}" after proxy="a", got the end, got "x_total{proxy=\\"a\\""']],
    ['a bad regex in a tier', 'tiers:\n  web:\n    busyWorkers: x{a=~"("}\n', ['m.yaml:3 tiers.web.busyWorkers: expected a metric selector like name{label="value"}: a valid regular expression for a=~, got "(", got "x{a=~\\"(\\"}"']],
    ['workers of 0', 'signals:\n  workers: 0\n', ['m.yaml:2 signals.workers: expected a metric selector like name{label="value"} or a worker count above 0, got 0']],
    ['utilization without over', 'signals:\n  utilization: { busySeconds: cpu_total }\n', ['m.yaml:2 signals.utilization: expected a metric selector (a 0..1 gauge) or { busySeconds: SELECTOR, over: LABEL or N }, got {"busySeconds":"cpu_total"}']],
    ['a latency unit that is not one', 'signals:\n  latency: { histogram: h, unit: hours }\n', ['m.yaml:2 signals.latency.unit: expected one of seconds, milliseconds, microseconds, got "hours"']],
    ['a bad tier name', 'tiers:\n  Web: { requests: x }\n', ["m.yaml:2 tiers.Web: expected a tier name of lower-case letters, digits and '-' (proxy, web, db…), got \"Web\""]],
    ['no signal at all', 'description: nothing\n', ['m.yaml:1 signals: expected at least one signal (requests, errors, busyWorkers, workers, utilization, queueDepth, latency), got none']],
    ['not YAML', 'signals: [\n', ['m.yaml:2 (syntax): expected valid YAML, got "Flow sequence in block collection must be sufficiently indented and end with a ]" at column 1']],
  ])('%s', (_, text, expected) => {
    expect(problems(() => parseMapping(text, 'm.yaml'))).toEqual(expected);
  });
});

describe('stack.nodes in a scenario', () => {
  const scenario = (nodes: string): string => `stack:\n  target: http://127.0.0.1:8080\n  nodes:\n${nodes}ceiling: { start: 10/s, max: 100/s }\n`;

  it('resolves each node: its tier, role, URL and the mapping for its tier', () => {
    writeFileSync(join(dir, 'app.yaml'), 'signals:\n  requests: app_requests_total\n  busyWorkers: app_busy\n  workers: 4\n');
    const s = parseScenario(
      scenario('    - { name: lb, tier: proxy, metrics: "http://127.0.0.1:8405/metrics", mapping: haproxy-exporter }\n    - { name: api-1, tier: api, role: web, metrics: "http://localhost:9000/metrics", mapping: app.yaml }\n    - { name: lb-web, tier: web, metrics: "http://127.0.0.1:8405/metrics", mapping: haproxy-exporter }\n'),
      join(dir, 's.yaml'),
    );
    expect(s.stack.nodes.map((n) => [n.name, n.tier, n.role, n.metricsUrl, n.mapping, n.signals.requests?.text])).toEqual([
      ['lb', 'proxy', 'proxy', 'http://127.0.0.1:8405/metrics', 'haproxy-exporter', 'haproxy_frontend_http_requests_total{proxy="agents"}'],
      ['api-1', 'api', 'web', 'http://localhost:9000/metrics', join(dir, 'app.yaml'), 'app_requests_total'],
      ['lb-web', 'web', 'web', 'http://127.0.0.1:8405/metrics', 'haproxy-exporter', 'haproxy_backend_http_requests_total{proxy="agents"}'],
    ]);
  });

  it.each<[string, string, string[]]>([
    ['an unknown shipped mapping', '    - { name: a, tier: web, metrics: "http://127.0.0.1:1/metrics", mapping: nginx }\n', ['s.yaml:4 stack.nodes[0].mapping: expected a shipped mapping (haproxy-exporter, node-exporter) or a .yaml mapping file, got "nginx"']],
    ['a missing mapping file', '    - { name: a, tier: web, metrics: "http://127.0.0.1:1/metrics", mapping: none.yaml }\n', [`s.yaml:4 stack.nodes[0].mapping: expected a readable mapping file (${join(dir, 'none.yaml')}: ENOENT), got "none.yaml"`]],
    ['a mapping file with a problem, under the node', '    - { name: a, tier: web, metrics: "http://127.0.0.1:1/metrics", mapping: bad.yaml }\n', [`s.yaml:4 stack.nodes[0].mapping: ${join(dir, 'bad.yaml')}:2 signals.queue: expected a known key (requests, errors, busyWorkers, workers, utilization, queueDepth, latency), got "queue"`]],
    ['two nodes of one name', '    - { name: a, tier: web, metrics: "http://127.0.0.1:1/metrics", mapping: node-exporter }\n    - { name: a, tier: db, metrics: "http://127.0.0.1:2/metrics", mapping: node-exporter }\n', ['s.yaml:5 stack.nodes[1].name: expected a name no other node has, got "a"']],
    ['a metrics URL that is not http', '    - { name: a, tier: web, metrics: "ftp://127.0.0.1/metrics", mapping: node-exporter }\n', ['s.yaml:4 stack.nodes[0].metrics: expected a URL like http://127.0.0.1:9100/metrics, got "ftp://127.0.0.1/metrics"']],
    ['a tier name with capitals', '    - { name: a, tier: Web, metrics: "http://127.0.0.1:1/metrics", mapping: node-exporter }\n', ["s.yaml:4 stack.nodes[0].tier: expected a tier name of lower-case letters, digits and '-' (proxy, web, db…), got \"Web\""]],
    ['a node without a mapping', '    - { name: a, tier: web, metrics: "http://127.0.0.1:1/metrics" }\n', ['s.yaml:4 stack.nodes[0].mapping: expected a shipped mapping (node-exporter, haproxy-exporter) or a .yaml mapping file, got nothing']],
  ])('%s', (_, nodes, expected) => {
    writeFileSync(join(dir, 'bad.yaml'), 'signals:\n  queue: q\n');
    expect(problems(() => parseScenario(scenario(nodes), join(dir, 's.yaml'))).map((l) => l.replace(join(dir, 's.yaml'), 's.yaml'))).toEqual(expected);
  });

  it('nodes only with a target', () => {
    expect(problems(() => parseScenario('stack:\n  topology: single\n  nodes:\n    - { name: a, tier: web, metrics: "http://127.0.0.1:1/metrics", mapping: node-exporter }\nceiling: { start: 10/s, max: 100/s }\n', 's.yaml'))).toEqual([
      's.yaml:3 stack.nodes: expected nothing without stack.target (the nodes of a stack rmmscale starts are scraped without being listed), got [{"name":"a","tier":"web","metrics":"http://127.0.0.1:1/metrics","mapping":"node-exporter"}]',
    ]);
  });
});

describe('examples/staging-stack.yaml', () => {
  it('loads: three nodes, each with the signals of its tier', () => {
    const s = parseScenario(readFileSync('examples/staging-stack.yaml', 'utf8'), 'examples/staging-stack.yaml');
    expect(s.stack.nodes.map((n) => [n.name, n.tier, n.mapping])).toEqual([
      ['lb', 'proxy', 'haproxy-exporter'],
      ['lb-web', 'web', 'haproxy-exporter'],
      ['db-host', 'db', 'node-exporter'],
    ]);
    expect(s.stack.nodes[1].signals.queueDepth?.text).toBe('haproxy_backend_current_queue{proxy="agents"}');
  });
});
