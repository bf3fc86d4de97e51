import { decodeHistogram, createLatencyHistogram, summarize, type LatencySummary } from '../metrics/histogram.js';
import type { RunResult } from '../run/result-types.js';
import { editDistance } from '../core/edit-distance.js';
import { ThresholdError, type LatencyStat, type Threshold } from './grammar.js';

/**
 * A threshold's metric, read from one result.json, in the unit the gate compares in (ms, fraction,
 * count, per second, cores). Where each comes from:
 *
 *   OP.STAT                    headline.client.ops[OP].latency (CO-corrected)
 *   latency.STAT               headline.client.latency
 *   errors.rate | count        headline.client.errorRate | failed
 *   throughput.achieved        headline.client.achievedRatePerSec (offered: offeredRatePerSec)
 *   ceiling.agents | rps       summary.ceilingAgents | ceilingRps (search runs only)
 *   tier[T].ceiling.*          summary.tiers[tier = T]
 *   node[N].utilization        headline.nodes[node = N].utilization.mean
 *   node[N].queue              … .queueDepth.mean
 *   node[N].p99                … every route's histogram merged, p99 (server side)
 *   node[N].cpu                … .cpuCoresMean
 *   node[N].rate               … .ratePerSec
 *   generator.lagP99           windows[headline.windowIndex].generator.schedulingLagP99Us
 *
 * A threshold that cannot apply to this kind of run (an operation, node or tier it does not have, a
 * ceiling on a staged run, a utilization on a node without a profile, a p95 in a result written
 * before p95 was recorded) throws: that is bad input.
 * A number the run should have produced but did not (no headline window, a search that found no
 * ceiling) resolves to null with the reason: the measurement is incomplete.
 */

export interface Resolved {
  value: number | null;
  /** Why the value is null, or how it was obtained when that is not obvious. */
  note: string | null;
}

const STAT_FIELD: Record<LatencyStat, keyof LatencySummary> = { p50: 'p50Us', p90: 'p90Us', p95: 'p95Us', p99: 'p99Us', 'p99.9': 'p999Us', max: 'maxUs', mean: 'meanUs' };

const ok = (value: number, note: string | null = null): Resolved => ({ value, note });
const none = (note: string): Resolved => ({ value: null, note });

export function resolveMetric(result: RunResult, file: string, t: Threshold): Resolved {
  const fail = (detail: string): never => {
    throw new ThresholdError(t.source, t.text, detail);
  };
  const ref = t.metric.ref;
  switch (ref.kind) {
    case 'ceiling':
    case 'tier-ceiling': {
      const search = result.search;
      if (!search) return fail(`${file} is a staged run with no ceiling search; ceiling metrics need a scenario with a ceiling`);
      if (ref.kind === 'tier-ceiling') {
        const tiers = result.summary.tiers;
        const tier = tiers.find((x) => x.tier === ref.tier);
        if (!tier) return fail(`no tier ${JSON.stringify(ref.tier)} in ${file} (summary.tiers: ${tiers.map((x) => x.tier).join(', ') || 'none'})`);
        const v = ref.field === 'agents' ? tier.ceilingAgents : tier.ceilingRps;
        return v === null ? none(`${file}: tier ${ref.tier} has no ceiling (${tier.limitedBy})`) : ok(v);
      }
      const v = ref.field === 'agents' ? result.summary.ceilingAgents : result.summary.ceilingRps;
      if (v !== null) return ok(v);
      if (search.outcome === 'below-start') return ok(0, `${file}: the first step already broke the SLO (search outcome below-start): counted as 0`);
      const lowerBoundOk = (t.op === '>' || t.op === '>=') && search.lastGood !== null && (ref.field === 'agents') === (search.unit === 'agents');
      if (search.outcome === 'above-max' && lowerBoundOk) return ok(search.lastGood!, `${file}: the search held its maximum, so the ceiling is at least ${search.lastGood}`);
      return none(`${file}: no ceiling (search outcome ${search.outcome})`);
    }
    case 'generator': {
      const ws = result.windows;
      const idx = result.headline?.windowIndex ?? null;
      const w = idx !== null ? ws.find((x) => x.index === idx) : undefined;
      if (w) return ok(w.generator.schedulingLagP99Us / 1000);
      if (ws.length === 0) return none(`${file}: no measured windows`);
      return ok(Math.max(...ws.map((x) => x.generator.schedulingLagP99Us)) / 1000, `${file}: the worst window's lag (no single headline window)`);
    }
    default:
      break;
  }
  const headline = result.headline;
  if (!headline) return none(`${file}: no headline window (the run measured nothing)`);
  const client = headline.client;
  /** A stat in ms. A result written before p95 was recorded has none: the threshold cannot apply. */
  const statMs = (l: LatencySummary, stat: LatencyStat, path: string): number => {
    const v = l[STAT_FIELD[stat]];
    if (typeof v !== 'number') return fail(`${file} has no ${stat} (${path}.${STAT_FIELD[stat]} is missing: an older rmmscale wrote it); rerun to gate on ${stat}, or use p90 or p99`);
    return v / 1000;
  };
  switch (ref.kind) {
    case 'op-latency': {
      const op = client.ops[ref.op];
      if (!op) {
        const names = Object.keys(client.ops);
        const near = names.find((n) => editDistance(n, ref.op) <= 2);
        return fail(`no operation ${JSON.stringify(ref.op)} in ${file} (headline.client.ops: ${names.join(', ') || 'none'})${near ? `; did you mean ${JSON.stringify(near)}?` : ''}`);
      }
      if (op.latency.count === 0) return none(`${file}: no ${ref.op} requests completed in the headline window`);
      return ok(statMs(op.latency, ref.stat, `headline.client.ops.${ref.op}.latency`));
    }
    case 'latency':
      if (client.latency.count === 0) return none(`${file}: no requests completed in the headline window`);
      return ok(statMs(client.latency, ref.stat, 'headline.client.latency'));
    case 'errors':
      return ok(ref.field === 'rate' ? client.errorRate : client.failed);
    case 'throughput':
      return ok(ref.field === 'achieved' ? client.achievedRatePerSec : client.offeredRatePerSec);
    case 'node': {
      const nodes = headline.nodes;
      const n = nodes.find((x) => x.node === ref.node);
      if (!n) {
        const near = nodes.find((x) => editDistance(x.node, ref.node) <= 2);
        const list = nodes.length ? `nodes: ${nodes.map((x) => x.node).join(', ')}` : 'this run scraped no nodes';
        return fail(`no node ${JSON.stringify(ref.node)} in ${file} (${list})${near ? `; did you mean ${JSON.stringify(near.node)}?` : ''}`);
      }
      switch (ref.field) {
        case 'utilization':
          if (!n.utilization) return fail(`node ${ref.node} reports no utilization in ${file} (only nodes with a capacity profile do)`);
          return ok(n.utilization.mean);
        case 'queue':
          if (!n.queueDepth) return fail(`node ${ref.node} reports no queue depth in ${file} (only nodes with a capacity profile do)`);
          return ok(n.queueDepth.mean);
        case 'cpu':
          return ok(n.cpuCoresMean);
        case 'rate':
          return ok(n.ratePerSec);
        case 'p99': {
          const h = createLatencyHistogram();
          for (const r of Object.values(n.routes)) h.add(decodeHistogram(r.histogram));
          const s = summarize(h);
          return s.count === 0 ? none(`${file}: node ${ref.node} served no requests in the headline window`) : ok(s.p99Us / 1000);
        }
      }
    }
  }
  return fail('unsupported metric');
}
