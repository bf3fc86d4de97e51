import { searchCeiling, type SearchResult, type StepMeasurement } from '../analysis/ceiling-search.js';
import { HostCpuSampler } from '../core/host.js';
import { fmtPct } from '../core/format.js';
import { sloLatency } from './judge-window.js';
import { measureWindow } from './measure-window.js';
import { STAGE_WARMUP_MS, windowWarmupMs } from './plan-window.js';
import { remeasureDecision, waitForQuietHost } from './remeasure.js';
import type { WindowResult } from './result-types.js';
import { RunAborted } from './run-aborted.js';
import type { RunContext } from './run-context.js';
import { CoordinationError, type CoordinatorClient } from './shard-coordinator.js';

/**
 * Which windows a run measures: each stage in turn, or the steps and bisections of a ceiling
 * search (null when the scenario has neither). Every window is measured by measure-window.ts.
 */
export async function drive(ctx: RunContext): Promise<SearchResult | null> {
  if (ctx.coordination?.role === 'follower') return follow(ctx, ctx.coordination.client);
  if (ctx.sc.stages) await driveStages(ctx);
  else if (ctx.sc.ceiling) return driveCeiling(ctx);
  return null;
}

async function driveStages(ctx: RunContext): Promise<void> {
  const sc = ctx.sc;
  const stages = sc.stages ?? [];
  // Each stage is its own window and its own swarm. A stage ramps linearly from the count the
  // one before ended at (from 0 for the first); a stage that starts from a running fleet first
  // sends STAGE_WARMUP_MS (or its own `warmup:`) at its starting count (tunnels: longer, windowWarmupMs), measured
  // nowhere, so that the new workers' start-up (JIT, first GCs, connection set-up) is not
  // measured as the stack's latency.
  let prev = 0;
  for (const [i, st] of stages.entries()) {
    // A stage's own `warmup:` replaces the default; a tunnel fleet adds its reconnect time to either.
    const warmupMs = prev > 0 ? windowWarmupMs(sc.fleet.transport, prev, st.warmupMs ?? STAGE_WARMUP_MS) : 0;
    const checkin = st.checkin ?? sc.fleet.checkin;
    await measureWindow(ctx, { kind: 'stage', label: `stage ${i + 1}/${stages.length}`, agents: st.agents, checkin, warmupMs, measureMs: st.durationMs, rampFromAgents: prev, stageIndex: i });
    prev = st.agents;
  }
}

async function driveCeiling(ctx: RunContext): Promise<SearchResult> {
  const sc = ctx.sc;
  const c = sc.ceiling!;
  let n = 0;
  return searchCeiling(
    async (load): Promise<StepMeasurement> => {
      n++;
      // Bisecting once any window (the search's own, so far) has broken the SLO.
      const kind = ctx.windows.some((w) => !w.verdict.ok) ? 'bisect' : 'step';
      const measure = (label: string, supersedes?: number): Promise<WindowResult> => {
        const again = supersedes === undefined ? {} : { supersedes };
        return c.unit === 'agents'
          ? measureWindow(ctx, { kind, label, agents: load, checkin: sc.fleet.checkin, warmupMs: windowWarmupMs(sc.fleet.transport, load, c.warmupMs), measureMs: c.measureMs, ...again })
          : measureWindow(ctx, { kind, label, agents: sc.fleet.agents, checkin: { kind: 'rate', ratePerSec: load, text: `${load}/s` }, warmupMs: windowWarmupMs(sc.fleet.transport, sc.fleet.agents, c.warmupMs), measureMs: c.measureMs, ...again });
      };
      const w = await measureUntilTrusted(ctx, await measure(`${kind} ${n}`), (attempts, supersedes) => measure(`${kind} ${n} (again${attempts > 0 ? ` ${attempts + 1}` : ''})`, supersedes));
      return { offeredRatePerSec: w.client.attemptedRatePerSec, achievedRatePerSec: w.client.achievedRatePerSec, p99Us: sloLatency(w.client).p99Us, errorRate: w.client.errorRate, trustworthy: w.generator.trustworthy };
    },
    {
      startLoad: c.start,
      maxLoad: c.max,
      stepFactor: c.stepFactor,
      precision: c.precision,
      slo: { p99Us: sc.slo.p99Ms * 1000, errorRate: sc.slo.errorRate, minAchievedRatio: sc.slo.minAchievedRatio },
      maxMeasurements: c.maxSteps,
      grain: c.grain,
    },
  );
}

/**
 * A window the generator or host could not be trusted on is measured again: a transient
 * stall on a shared host should not throw away a long search. One more time for the
 * generator's own trouble; up to two for host steal, each after the host has settled
 * (src/run/remeasure.ts). An untrustworthy window after that stops the search: it
 * refuses to call that a ceiling.
 */
async function measureUntilTrusted(ctx: RunContext, first: WindowResult, again: (attempts: number, supersedes: number) => Promise<WindowResult>): Promise<WindowResult> {
  let w = first;
  for (let attempts = 0; !w.generator.trustworthy; attempts++) {
    const next = remeasureDecision(attempts, w.generator.hostStealMean ?? null, w.generator.hostStealMax ?? null);
    if (!next.again) break;
    if (next.waitForQuiet) {
      ctx.emit({ type: 'waiting-for-quiet-host', label: w.label, stealMean: w.generator.hostStealMean, stealMax: w.generator.hostStealMax });
      const sampler = new HostCpuSampler();
      const q = await waitForQuietHost({ sample: () => sampler.sample(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)), signal: ctx.signal });
      if (ctx.signal.aborted) throw new RunAborted();
      ctx.emit({ type: 'host-quiet', settled: q.settled, waitedMs: q.waitedMs, lastSteal: q.lastSteal });
      if (!q.settled) {
        const lastText = q.lastSteal === null ? '' : `, steal ${fmtPct(q.lastSteal, 1)} in the last second`;
        ctx.warnings.push(`${w.label}: the host did not settle within ${q.waitedMs / 1000} s of waiting${lastText}`);
      }
    } else {
      ctx.emit({ type: 'remeasure', label: w.label });
    }
    const retry = await again(attempts, w.index);
    w.supersededBy = retry.index;
    w = retry;
  }
  return w;
}

/**
 * A follower shard (`--coordinator-url`): join the coordinator, then measure each window it decides,
 * starting when it says (at its barrier, on this machine's clock: measure-window.ts), until it says
 * the run is done. Its windows are
 * this shard's own; the coordinator merges and judges the whole.
 */
async function follow(ctx: RunContext, client: CoordinatorClient): Promise<SearchResult | null> {
  await client.join(ctx.signal);
  ctx.emit({ type: 'coordinator-joined', url: client.url, clockOffsetMs: client.clockOffsetMs });
  for (;;) {
    const k = ctx.windows.length;
    const plan = await client.next(k, ctx.signal);
    if (plan.action === 'done') return plan.search ? { ...plan.search, steps: [] } : null;
    if (plan.action === 'abort') throw new CoordinationError(`the coordinator ended the run: ${plan.reason}`);
    if (plan.action !== 'measure') continue;
    const old = plan.spec.supersedes === undefined ? undefined : ctx.windows[plan.spec.supersedes];
    if (old) old.supersededBy = k;
    await measureWindow(ctx, plan.spec);
  }
}
