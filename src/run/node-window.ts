import { erlangC } from '../analysis/erlang-c.js';
import type { NodeHdrSnapshot } from '../core/protocol.js';
import { round } from '../core/units.js';
import type { LatencySummary } from '../metrics/histogram.js';
import type { RunningStack } from '../stack/launcher.js';
import type { CapacityProfile } from '../stack/types.js';
import { routeStatsForWindow, type CounterSnapshot, type NodeCollector } from './collector.js';
import { slopePerSec } from './diagnose.js';
import type { ErlangCheck, NodeWindow } from './result-types.js';

/**
 * Each node's view of one window: the exact server-side histograms between the two snapshots,
 * and the per-second scrapes that fall inside the window. Pure over what was collected.
 */

/** The collector's snapshots at the window's two ends. */
export interface WindowSnapshots {
  startHdr: Map<string, NodeHdrSnapshot>;
  endHdr: Map<string, NodeHdrSnapshot>;
  startCounters: CounterSnapshot;
  endCounters: CounterSnapshot;
}

/** Seconds since the run started, and the window's measured length. */
export interface WindowSpan {
  fromSec: number;
  toSec: number;
  windowSec: number;
}

export function nodeWindows(
  stackNodes: ReadonlyArray<Pick<RunningStack['nodes'][number], 'name' | 'role' | 'tier'>>,
  collector: NodeCollector | null,
  profileOf: Map<string, CapacityProfile | undefined>,
  snap: WindowSnapshots,
  span: WindowSpan,
): NodeWindow[] {
  const { fromSec, toSec, windowSec } = span;
  return stackNodes.map((n) => {
    const secs = (collector?.timeline.get(n.name) ?? []).filter((s) => s.tSec > fromSec && s.tSec <= toSec + 0.5);
    const end = snap.endHdr.get(n.name);
    const routes = end ? routeStatsForWindow(snap.startHdr.get(n.name), end, snap.startCounters.get(n.name), snap.endCounters.get(n.name), windowSec) : {};
    const count = Object.values(routes).reduce((a, r) => a + r.count, 0);
    const util = nums(secs.map((s) => s.utilization));
    const q = nums(secs.map((s) => s.queueDepth));
    const dbU = nums(secs.map((s) => s.dbUtilization));
    const dbQ = nums(secs.map((s) => s.dbQueueDepth));
    const prof = profileOf.get(n.name);
    const scraped = collector?.mapped.get(n.name)?.window(fromSec, toSec);
    const ratePerSec = end ? round(count / windowSec, 1) : scraped && scraped.requests !== null ? round(scraped.requests / windowSec, 1) : stat(secs.map((s) => s.requestsPerSec)).mean;
    return {
      node: n.name,
      role: n.role,
      tier: n.tier,
      ratePerSec,
      routes,
      utilization: util.length ? stat(util) : null,
      queueDepth: q.length ? { ...stat(q), growthPerSec: round(slopePerSec(q), 2) } : null,
      dbUtilization: dbU.length ? stat(dbU) : null,
      dbQueueDepth: dbQ.length ? { ...stat(dbQ), growthPerSec: round(slopePerSec(dbQ), 2) } : null,
      eventLoopDelayP99MsMax: Math.max(0, ...secs.map((s) => s.eventLoopDelayP99Ms)),
      cpuCoresMean: stat(secs.map((s) => s.cpuCores)).mean,
      hostLimitedSec: secs.filter((s) => s.hostLimited).length,
      erlang: prof ? erlangCheck(prof, routes, windowSec) : null,
      ...(scraped ? { scraped } : {}),
    };
  });
}

const stat = (xs: number[]): { mean: number; max: number } => ({
  mean: xs.length ? round(xs.reduce((a, b) => a + b, 0) / xs.length, 3) : 0,
  max: xs.length ? Math.max(...xs) : 0,
});

function nums(xs: Array<number | null>): number[] {
  return xs.filter((x): x is number => x !== null);
}

/** M/M/c next to what the node measured: servers = workers, the profile's mean service time. */
function erlangCheck(p: CapacityProfile, routes: NodeWindow['routes'], windowSec: number): ErlangCheck | null {
  const count = Object.values(routes).reduce((a, r) => a + r.count, 0);
  if (count === 0) return null;
  const arrival = count / windowSec;
  const q = erlangC(arrival, p.workers, p.service.meanMs);
  const weighted = (f: (l: LatencySummary) => number): number => Object.values(routes).reduce((a, r) => a + f(r.latency) * r.count, 0) / count;
  const finite = (x: number): number => (Number.isFinite(x) ? round(x, 1) : -1);
  return {
    servers: p.workers,
    meanServiceMs: p.service.meanMs,
    arrivalPerSec: round(arrival, 1),
    utilization: round(q.utilization, 3),
    predictedMeanMs: finite(q.meanResponseMs),
    predictedP99Ms: finite(q.responsePercentileMs(0.99)),
    measuredMeanMs: round(weighted((l) => l.meanUs) / 1000, 1),
    measuredP99Ms: round(Math.max(...Object.values(routes).map((r) => r.latency.p99Us)) / 1000, 1),
    note:
      p.service.dist !== 'exponential'
        ? `the model assumes exponential service; this node's is ${p.service.dist}`
        : 'the node also waits on the database inside its service slot, so measured ≥ predicted when the database is busy',
  };
}
