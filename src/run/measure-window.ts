import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-write.js';
import type { NodeHdrSnapshot } from '../core/protocol.js';
import type { SwarmConfig } from '../swarm/config.js';
import { runSwarm, SwarmControl } from '../swarm/coordinator.js';
import type { StartGate } from '../swarm/worker-pool.js';
import type { SwarmResult } from '../swarm/result.js';
import type { CounterSnapshot } from './collector.js';
import { judgeWindow, type WindowJudgement } from './judge-window.js';
import { mergeSwarmShards } from '../swarm/merge-shards.js';
import { describeShard } from '../swarm/shard.js';
import type { ShardCoordinator } from './shard-coordinator.js';
import type { NodeWindow } from './result-types.js';
import { nodeWindows, type WindowSnapshots } from './node-window.js';
import { planWindow, type WindowSpec } from './plan-window.js';
import type { ClientStats, WindowResult } from './result-types.js';
import { RunAborted } from './run-aborted.js';
import type { RunContext } from './run-context.js';
import { settleMappedNodes, settleStack, StackNotRecoveredError } from './settle.js';

/**
 * One window, start to end: plan its swarm, drive it while the nodes are snapshotted at the
 * instant its warm-up ends and again when it stops, judge it, record it, and let the stack settle
 * before the next. Throws RunAborted when the run was aborted during it (after recording it).
 */
export async function measureWindow(ctx: RunContext, spec: WindowSpec): Promise<WindowResult> {
  if (ctx.signal.aborted) throw new RunAborted();
  ctx.currentAgents = spec.agents;
  const index = ctx.windows.length;
  // With a coordinator, the followers hear the window now; every shard's t = 0 comes from its
  // barrier once its swarm is ready (startGate below), not from --start-at.
  const coord = ctx.coordination;
  if (coord) ctx.startAtEpochMs = null;
  if (coord?.role === 'coordinator') coord.coordinator.announce(index, spec);
  const cfg = planWindow(ctx.sc, ctx, spec);
  // --start-at is the first window's t = 0; later windows start when this shard is ready.
  ctx.startAtEpochMs = null;
  const windowStartSec = (Date.now() - ctx.runStartMs) / 1000;
  ctx.emit({ type: 'window-start', label: spec.label, agents: spec.agents, rampFromAgents: spec.rampFromAgents, checkin: spec.checkin.text, warmupMs: spec.warmupMs, measureMs: spec.measureMs });
  const d = await driveWindow(ctx, spec, cfg);
  const hlogName = `window-${String(index).padStart(2, '0')}.hlog`;
  if (d.hlog) {
    writeFileAtomic(join(ctx.outDir, hlogName), d.hlog);
    ctx.hlogFiles.push(hlogName);
  }
  const windowSec = Math.max(1, (d.measuredToMs - d.measuredFromMs) / 1000);
  const span = { fromSec: (d.measuredFromMs - ctx.runStartMs) / 1000, toSec: (d.measuredToMs - ctx.runStartMs) / 1000, windowSec };
  const nodes = nodeWindows(ctx.stack?.nodes ?? ctx.sc.stack.nodes, ctx.collector, ctx.profileOf, d.snapshots, span);
  const own = judgeWindow(d.swarm, nodes, windowSec, ctx.sc, ctx.windows);
  if (coord?.role === 'follower') {
    const swarm: SwarmResult = d.swarm.shard ? { ...d.swarm, shard: { ...d.swarm.shard, clockOffsetMs: coord.client.clockOffsetMs, clockReference: coord.client.url } } : d.swarm;
    await coord.client.postWindow({ window: index, swarm, trustworthy: own.trust.trustworthy, judgedAs: own.trust.judgedAs, why: own.trust.why }, ctx.signal);
  }
  // The coordinator judges the window on every shard's figures, merged exactly.
  const { client, generator, verdict, diagnosis, trust } = coord?.role === 'coordinator' ? await judgeMerged(ctx, coord.coordinator, index, d.swarm, own, nodes, windowSec) : own;
  const w: WindowResult = {
    index,
    kind: spec.kind,
    label: spec.label,
    agents: spec.agents,
    checkin: spec.checkin.text,
    startSec: Math.round(windowStartSec * 10) / 10,
    warmupSec: spec.warmupMs / 1000,
    measuredSec: Math.round(windowSec * 10) / 10,
    client,
    background: d.background,
    generator,
    nodes,
    verdict,
    diagnosis,
  };
  ctx.windows.push(w);
  ctx.live?.judged(trust.judgedAs, trust.trustworthy);
  ctx.emit({ type: 'window-end', window: w, trust });
  if (d.swarm.interrupted || ctx.signal.aborted) throw new RunAborted();
  const drained = ctx.stack ? await settleStack(ctx.stack, ctx.signal, ctx.warnings) : await settleMappedNodes(ctx.collector?.nodes ?? [], ctx.signal, ctx.warnings);
  // Stages run back to back by design; a search's next window must start on a drained stack.
  if (!drained && ctx.sc.ceiling && !ctx.signal.aborted) throw new StackNotRecoveredError(w.label);
  return w;
}

interface DrivenWindow {
  swarm: SwarmResult;
  hlog: string;
  /** Epoch ms: the end of the swarm's warm-up, and the end of its run. */
  measuredFromMs: number;
  measuredToMs: number;
  snapshots: WindowSnapshots;
  background: ClientStats | null;
}

/** The window's swarm, with the nodes' histograms and counters snapshotted at both ends of its measured part. */
async function driveWindow(ctx: RunContext, spec: WindowSpec, cfg: SwarmConfig): Promise<DrivenWindow> {
  const { collector, background } = ctx;
  let startHdr: Promise<Map<string, NodeHdrSnapshot>> | null = null;
  let startCounters: Promise<CounterSnapshot> | null = null;
  let measuredFromMs = 0;
  const markStart = (): void => {
    if (startHdr) return;
    measuredFromMs = Date.now();
    startHdr = collector ? collector.histograms() : Promise.resolve(new Map());
    startCounters = collector ? collector.counters() : Promise.resolve(new Map());
    background?.takeWindow(spec.agents);
    if (spec.stageIndex !== undefined) ctx.faults?.stageStarted(spec.stageIndex, measuredFromMs);
  };
  // The server-side snapshot is taken at the instant the swarm's warm-up ends (t = 0 plus the
  // warm-up), so the node's window and the client's window cover the same requests.
  let startTimer: NodeJS.Timeout | null = null;
  let t0EpochMs = Date.now();
  const control = new SwarmControl(ctx.tunnelLog);
  const coord = ctx.coordination;
  const k = ctx.windows.length;
  const startGate: StartGate | undefined =
    coord?.role === 'coordinator'
      ? { wait: () => coord.coordinator.startGate(k, ctx.signal), maxMs: coord.coordinator.gateMaxMs(k) }
      : coord?.role === 'follower'
        ? { wait: () => coord.client.start(k, ctx.signal), maxMs: coord.client.gateMaxMs(k) }
        : undefined;
  ctx.swarmDisconnect = (fraction) => control.disconnect(fraction);
  const { result: swarm, hlog, ledger } = await runSwarm({
    config: cfg,
    signal: ctx.signal,
    control,
    startGate,
    live: ctx.live ?? undefined,
    onEvent: ctx.emit,
    onStart: (startAtEpochMs) => {
      t0EpochMs = startAtEpochMs;
      startTimer = setTimeout(markStart, Math.max(0, startAtEpochMs + spec.warmupMs - Date.now()));
    },
    onProgress: ({ opHists, ...p }) => {
      if (!startHdr && !p.warmup) markStart();
      ctx.faults?.recordSecond(t0EpochMs + p.elapsedSec * 1000, p.errorsInInterval, opHists, p.warmup);
      ctx.onProgress?.({ ...p, window: spec.label });
    },
  }).finally(() => {
    ctx.swarmDisconnect = null;
    if (startTimer) clearTimeout(startTimer);
  });
  if (!startHdr) markStart();
  if (ledger) ctx.acked.push(ledger);
  const measuredToMs = Date.now();
  const [endHdr, endCounters] = collector ? await Promise.all([collector.histograms(), collector.counters()]) : [new Map<string, NodeHdrSnapshot>(), new Map() as CounterSnapshot];
  const hdr0 = await (startHdr as unknown as Promise<Map<string, NodeHdrSnapshot>>);
  const cnt0 = await (startCounters as unknown as Promise<CounterSnapshot>);
  const bg = background?.enabled ? background.takeWindow(spec.agents) : null;
  return { swarm, hlog, measuredFromMs, measuredToMs, snapshots: { startHdr: hdr0, endHdr, startCounters: cnt0, endCounters }, background: bg };
}

/**
 * The coordinator's view of window `index`: every follower's swarm result for it, merged with its
 * own exactly (swarm/merge-shards.ts), judged as one window (judgeWindow): the SLO and the rig's
 * error bound on the merged figures (every shard's rig trouble, the worst shard's lag). Any shard
 * whose own rig was untrustworthy makes the window untrustworthy too, and the reason names it.
 */
async function judgeMerged(ctx: RunContext, coordinator: ShardCoordinator, index: number, ownSwarm: SwarmResult, own: WindowJudgement, nodes: NodeWindow[], windowSec: number): Promise<WindowJudgement> {
  const others = await coordinator.collect(index, ctx.signal);
  const self = { index: ctx.shard.index, swarm: { ...ownSwarm, shard: ownSwarm.shard ? { ...ownSwarm.shard, clockOffsetMs: 0, clockReference: coordinator.url } : ownSwarm.shard }, trustworthy: own.trust.trustworthy, judgedAs: own.trust.judgedAs, why: own.trust.why };
  const all = [self, ...others].sort((a, b) => a.index - b.index);
  coordinator.record(all.map((s) => ({ index: s.index, startedAt: s.swarm.startedAt, trustworthy: s.trustworthy, clockOffsetMs: s.swarm.shard?.clockOffsetMs ?? null })));
  const merged = mergeSwarmShards(all.map((s) => ({ file: `shard ${describeShard({ index: s.index, count: ctx.shard.count })}`, doc: s.swarm })));
  const j = judgeWindow(merged, nodes, windowSec, ctx.sc, ctx.windows);
  // A shard's own `could-flip` weighed its share of the SLO figures against its rig's error: the
  // merged window weighs the whole against the worst shard's error (judgeWindow above) instead.
  // Any other untrustworthy shard (its rig failed, its sends did not leave) is untrustworthy whatever the merge.
  const untrusted = all.filter((s) => !s.trustworthy && s.judgedAs !== 'could-flip');
  if (untrusted.length === 0) return j;
  const why = `not trustworthy because ${untrusted.map((s) => `shard ${describeShard({ index: s.index, count: ctx.shard.count })} was not (${s.why})`).join('; ')}`;
  const trust = { ...j.trust, trustworthy: false, why };
  return { ...j, trust, generator: { ...j.generator, trustworthy: false, trust, reasons: [why, ...j.generator.reasons] } };
}
