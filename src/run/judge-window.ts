import { judgeStep, type SloVerdict, type StepMeasurement } from '../analysis/ceiling-search.js';
import type { LatencySummary } from '../metrics/histogram.js';
import type { Scenario } from '../scenario/types.js';
import { judgeTrust, type Trust } from '../swarm/generator-trust.js';
import type { SwarmResult } from '../swarm/result.js';
import { diagnose } from './diagnose.js';
import { clientFromSwarm, generatorFromSwarm } from './from-swarm.js';
import type { ClientStats, Diagnosis, GeneratorHealth, NodeWindow, WindowResult } from './result-types.js';

/**
 * Judging one measured window: its SLO verdict, which tier limited it, and whether the rig can be
 * trusted on it. Trust is decided in one place, GeneratorTrust (src/swarm/generator-trust.ts):
 * judgeWindowTrust only feeds it this window's facts. Pure over the swarm's result and the nodes.
 */

export interface WindowJudgement {
  client: ClientStats;
  generator: GeneratorHealth;
  verdict: SloVerdict;
  diagnosis: Diagnosis;
  trust: Trust;
}

/** `earlier`: the run's windows so far (the last good, trusted one is the diagnosis's baseline). */
export function judgeWindow(swarm: SwarmResult, nodes: NodeWindow[], windowSec: number, sc: Scenario, earlier: WindowResult[]): WindowJudgement {
  const client = clientFromSwarm(swarm);
  const generator = generatorFromSwarm(swarm);
  const p99 = sloLatency(client).p99Us;
  // "Achieved below offered" is judged against the sends actually made: a Poisson window's
  // arrivals differ from the target by chance (±7% over 5 s at 45/s), a saturated stack's
  // completions fall behind its arrivals for good.
  const m: StepMeasurement = { offeredRatePerSec: client.attemptedRatePerSec, achievedRatePerSec: client.achievedRatePerSec, p99Us: p99, errorRate: client.errorRate, trustworthy: true };
  const verdict = judgeStep(m, { p99Us: sc.slo.p99Ms * 1000, errorRate: sc.slo.errorRate, minAchievedRatio: sc.slo.minAchievedRatio });
  const prevGood = [...earlier].reverse().find((w) => w.verdict.ok && w.generator.trustworthy);
  const diagnosis = diagnose(nodes, prevGood?.nodes ?? null);
  const hostLimited = nodes.filter((n) => n.hostLimitedSec > windowSec / 2).map((n) => n.node);
  if (hostLimited.length > 0) {
    generator.hostBound = true;
    generator.reasons.push(`host-limited nodes (event-loop delay or host CPU, not their profile, limited them for most of the window): ${hostLimited.join(', ')}`);
  }
  const trust = judgeWindowTrust(swarm, generator, client, m, sc, windowSec, hostLimited, stackDelayUs(nodes));
  generator.trustworthy = trust.trustworthy;
  generator.trust = trust;
  return { client, generator, verdict, diagnosis, trust };
}

/** Per tier, its worst node's event-loop delay p99 in the window, summed along a request's path (µs). */
export function stackDelayUs(nodes: Array<Pick<NodeWindow, 'tier' | 'eventLoopDelayP99MsMax'>>): number {
  const worst = new Map<string, number>();
  for (const n of nodes) worst.set(n.tier, Math.max(worst.get(n.tier) ?? 0, n.eventLoopDelayP99MsMax));
  return Math.round([...worst.values()].reduce((a, b) => a + b, 0) * 1000);
}

/** Timeouts the client gave up on: the only errors a slow rig can cause (by reading late). */
function timeoutCount(errors: Record<string, number>): number {
  return Object.entries(errors).reduce((a, [code, n]) => (/timeout/i.test(code) && !code.startsWith('dropped:') ? a + n : a), 0);
}

/** GeneratorTrust for one window of a run: the swarm's facts against the scenario's SLO. */
function judgeWindowTrust(r: SwarmResult, g: GeneratorHealth, c: ClientStats, m: StepMeasurement, sc: Scenario, windowSec: number, hostLimited: string[], stackDelay: number): Trust {
  return judgeTrust({
    rig: { generatorBound: g.generatorBound, hostBound: g.hostBound, reasons: g.reasons },
    hostLimitedNodes: hostLimited,
    stackDelayUs: stackDelay,
    facts: {
      intended: r.summary.intended,
      attempted: r.summary.attempted,
      late: r.summary.late,
      timeouts: timeoutCount(c.errors),
      completed: r.summary.completed,
      failed: r.summary.failed,
      lagP99Us: r.generator.schedulingLag.p99Us,
      lagMaxUs: r.generator.schedulingLag.maxUs,
      eventLoopDelayMaxUs: Math.round(Math.max(0, ...r.generator.workers.map((w) => w.eldMaxMsMax ?? w.eldP99MsMax)) * 1000),
      timeoutMs: sc.fleet.timeoutMs,
      measuredSec: windowSec,
      hostCpus: r.host.cpus,
      hostCpuMean: r.generator.hostCpuMean,
      hostStealMean: r.generator.hostStealMean,
      hostStealMax: r.generator.hostStealMax,
      workersDied: r.generator.workers.filter((w) => w.exitedEarly).length,
      closedLoop: r.config.closedLoop,
    },
    slo: {
      sloP99Us: sc.slo.p99Ms * 1000,
      sloErrorRate: sc.slo.errorRate,
      sloMinAchievedRatio: sc.slo.minAchievedRatio,
      p99Us: m.p99Us,
      errorRate: m.errorRate,
      achievedRatio: m.offeredRatePerSec > 0 ? m.achievedRatePerSec / m.offeredRatePerSec : 1,
    },
  });
}

/** The p99 the SLO judges: the check-in's when there are check-ins, else every operation's. */
export function sloLatency(c: ClientStats): LatencySummary {
  return c.ops.checkin?.latency ?? c.ops['ws-rtt']?.latency ?? c.latency;
}
