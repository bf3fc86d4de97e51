import type { SwarmResult } from '../swarm/result.js';
import { round } from '../core/units.js';
import type { ClientStats, GeneratorHealth } from './result-types.js';

/** A window's client-side figures and generator health, as result.json keeps them, from its swarm's result. */

export function clientFromSwarm(r: SwarmResult): ClientStats {
  return {
    agents: r.config.agents,
    offeredRatePerSec: r.summary.targetRatePerSec,
    attemptedRatePerSec: round(r.summary.attempted / Math.max(0.001, r.config.durationMs / 1000), 1),
    achievedRatePerSec: r.summary.achievedRatePerSec,
    count: r.summary.attempted,
    completed: r.summary.completed,
    failed: r.summary.failed,
    late: r.summary.late,
    dropped: r.summary.dropped,
    errorRate: r.summary.errorRate,
    latency: r.summary.latency,
    // The swarm's per-operation statistics are already the shape result.json keeps (OpStats).
    ops: { ...r.ops },
    errors: r.errors,
  };
}

export function generatorFromSwarm(r: SwarmResult): GeneratorHealth {
  return {
    trustworthy: r.verdict.trustworthy,
    generatorBound: r.verdict.generatorBound,
    hostBound: r.verdict.hostBound,
    reasons: r.verdict.reasons,
    warnings: r.verdict.warnings,
    workers: r.generator.workers.length,
    cpuMax: Math.max(0, ...r.generator.workers.map((w) => w.cpuMax)),
    schedulingLagP99Us: r.generator.schedulingLag.p99Us,
    hostCpuMean: r.generator.hostCpuMean,
    hostStealMean: r.generator.hostStealMean,
    hostStealMax: r.generator.hostStealMax,
  };
}
