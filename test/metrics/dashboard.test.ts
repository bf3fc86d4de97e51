import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createLatencyHistogram, recordUs } from '../../src/metrics/histogram.js';
import { CapacityLimiter } from '../../src/stack/capacity.js';
import { NodeMetrics } from '../../src/stack/runtime/node-metrics.js';
import type { NodeSpec } from '../../src/stack/types.js';
import { LiveMetrics } from '../../src/swarm/live-metrics.js';
import type { SeriesPoint } from '../../src/swarm/result.js';
import { parsePromStrict, type PromFamily } from '../helpers/prom-strict.js';

/**
 * dashboards/rmmscale.json asks Prometheus only for what the generator (LiveMetrics) and the stack
 * nodes (NodeMetrics) actually export: every metric name in every panel query is read off their
 * rendered /metrics text, not off a list kept by hand; and every label a query groups or filters by
 * is on that metric.
 */

interface Target {
  expr: string;
  refId: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: Target[];
  datasource?: { type: string; uid: string };
}
const dashboard = JSON.parse(readFileSync(new URL('../../dashboards/rmmscale.json', import.meta.url), 'utf8')) as { uid: string; panels: Panel[]; templating: { list: Array<{ name: string }> } };

/** Every family a node and a generator expose, with every label its samples carry. */
function exported(): Map<string, Set<string>> {
  const spec: NodeSpec = { name: 'web-agent-1', role: 'web', tier: 'web-agent', host: '127.0.0.1', port: 0, secret: 'dashboard-test' };
  const node = new NodeMetrics(spec);
  node.limiter = new CapacityLimiter({ workers: 2, queue: 4, service: { dist: 'constant', meanMs: 1 } });
  node.dbLimiter = new CapacityLimiter({ workers: 2, queue: 4, service: { dist: 'constant', meanMs: 1 } });
  node.request('checkin', 200, 1500);
  node.count('batches');
  node.gauge('tunnels', 3);
  const nodeText = node.prometheus();
  node.close();
  const live = new LiveMetrics();
  const h = createLatencyHistogram();
  recordUs(h, 1200);
  const p = { tSec: 1, warmup: false, targetRatePerSec: 1, achievedRatePerSec: 1, target: 1, attempted: 1, completed: 1, failed: 0, late: 0, dropped: 0, connected: 0, connects: 0, activeAgents: 1, p50Us: 0, p99Us: 0, workersReported: 1, generatorCpuMax: 0, generatorCpuSum: 0, generatorCpuUs: 0, coordinatorCpuUs: 0, generatorRssBytes: 0, eldP99MsMax: 0, lagP99Us: 0, hostCpu: 0, hostSteal: 0 } satisfies SeriesPoint;
  live.interval(p, new Map([['checkin', h]]), true);
  live.judged('clean', true);
  const out = new Map<string, Set<string>>();
  // A scrape adds `job` (and `instance`) to every series.
  const add = (fams: Map<string, PromFamily>): void => {
    for (const f of fams.values())
      for (const s of f.samples) {
        const labels = out.get(s.name) ?? new Set(['job', 'instance']);
        for (const l of Object.keys(s.labels)) labels.add(l);
        out.set(s.name, labels);
      }
  };
  add(parsePromStrict(nodeText));
  add(parsePromStrict(live.render()));
  return out;
}

describe('dashboards/rmmscale.json', () => {
  const panels = dashboard.panels.filter((p) => p.type !== 'row');
  const targets = panels.flatMap((p) => p.targets ?? []);
  const metrics = exported();

  it('is a Grafana dashboard: unique panel ids, a datasource variable, every query on it', () => {
    expect(dashboard.uid).toBe('rmmscale-live');
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'generator_job', 'stack_job']);
    for (const p of panels) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
    expect(targets.length).toBeGreaterThanOrEqual(30);
  });

  it('queries only metric names the generator and the nodes export', () => {
    const used = new Set(targets.flatMap((t) => [...t.expr.matchAll(/\b(rmmscale_[a-z0-9_]+|process_[a-z0-9_]+)\b/g)].map((m) => m[1])));
    expect(used.size).toBeGreaterThanOrEqual(25);
    const missing = [...used].filter((n) => !metrics.has(n));
    expect(missing).toEqual([]);
    // Both halves are on the dashboard.
    expect([...used].some((n) => n.startsWith('rmmscale_generator_'))).toBe(true);
    expect([...used].some((n) => n === 'rmmscale_requests_total')).toBe(true);
  });

  it('groups and filters only by labels those metrics carry', () => {
    for (const t of targets) {
      const names = [...t.expr.matchAll(/\b(rmmscale_[a-z0-9_]+|process_[a-z0-9_]+)\b/g)].map((m) => m[1]);
      const labels = new Set(names.flatMap((n) => [...(metrics.get(n) ?? [])]));
      const byLabels = [...t.expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1].split(',').map((s) => s.trim()));
      const matchers = [...t.expr.matchAll(/([a-z_]+)\s*(?:=~|!=|!~|=)\s*"/g)].map((m) => m[1]);
      for (const l of [...byLabels, ...matchers]) expect(labels.has(l), `${t.expr}: label ${l}`).toBe(true);
    }
  });
});
