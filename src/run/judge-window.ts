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
  const { measurement: m, verdict } = windowVerdict(client, sc.slo);
  const diagnosis = windowDiagnosis(nodes, earlier);
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

/**
 * A window's client-side figures against the SLO: the verdict the run, the coordinator of a sharded
 * run and `rmmscale merge` all judge by (merge judges the merged figures, never a shard's).
 */
export function windowVerdict(client: ClientStats, slo: Pick<Scenario['slo'], 'p99Ms' | 'errorRate' | 'minAchievedRatio'>): { measurement: StepMeasurement; verdict: SloVerdict } {
  // "Achieved below offered" is judged against the sends actually made: a Poisson window's
  // arrivals differ from the target by chance (±7% over 5 s at 45/s), a saturated stack's
  // completions fall behind its arrivals for good.
  const measurement: StepMeasurement = { offeredRatePerSec: client.attemptedRatePerSec, achievedRatePerSec: client.achievedRatePerSec, p99Us: sloLatency(client).p99Us, errorRate: client.errorRate, trustworthy: true };
  return { measurement, verdict: judgeStep(measurement, { p99Us: slo.p99Ms * 1000, errorRate: slo.errorRate, minAchievedRatio: slo.minAchievedRatio }) };
}

/** Which tier limited the window, against the last earlier window that met the SLO and was trusted. */
export function windowDiagnosis(nodes: NodeWindow[], earlier: readonly WindowResult[]): Diagnosis {
  const prevGood = [...earlier].reverse().find((w) => w.verdict.ok && w.generator.trustworthy);
  return diagnose(nodes, prevGood?.nodes ?? null);
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
