import { round } from '../core/units.js';
import type { RunningStack } from '../stack/launcher.js';
import type { FaultAction, ScenarioFault } from '../scenario/types.js';
import type { FaultReconnect, ReconnectCurve } from '../swarm/tunnel-log.js';
import type { LatencyHistogram } from '../metrics/histogram.js';
import type { AlertTiming } from '../stack/analytics/analytics-store.js';
import { takeoverOf, takeoverSettled, watchLimitMs, type FaultTakeover, type LeaseProbe, type LeaseReading } from './takeover.js';
import { addOp, alertDelay, compareLatency, recordOp, SecondBlocks, type AlertDelaySummary, type LatencyVsClean, type Span } from './alert-delay.js';

/**
 * A scenario's `faults:`, run at their times. Each fault's time counts from the start of its
 * stage's measured part (drive.ts tells the runner when each stage starts), so warm-ups and
 * settling between stages do not shift it. The runner knows which node exits it caused, so that
 * start-stack.ts can tell a fault from a node that died by itself; and it keeps the clients' errors
 * per second, to say how long clients saw errors after each fault.
 */

/** What the runner acts on: the running stack (RunningStack), and the swarm for a disconnect. */
export interface FaultTarget {
  kill(node: string, signal: NodeJS.Signals): void;
  restart(node: string): Promise<void>;
  /** `byMs` added to each query, or (factor > 1) each request and query `factor` times as long. */
  slow(node: string, byMs: number, forMs: number, factor: number): Promise<void>;
  /** Drop that share of the agents' tunnels at once; resolves with how many were dropped. */
  disconnect(fraction: number): Promise<number>;
}

export interface FaultClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: FaultClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** One fault in result.json. */
export interface FaultRecord {
  /** As the scenario wrote it: seconds into the staged load, and the stage (1-based). */
  at: number;
  stage: number;
  action: FaultAction;
  node: string | null;
  forSec: number | null;
  bySec: number | null;
  /** A slow's `by: 10x`: the factor (null with the duration form, and for other actions). Absent in older results. */
  byFactor?: number | null;
  fraction: number | null;
  /** Seconds from the run's start when it was done; null when it never ran (the run ended first). */
  firedAtSec: number | null;
  /** done, failed (the action itself failed: `error` says why), or skipped (the run ended first). */
  outcome: 'done' | 'failed' | 'skipped';
  error: string | null;
  /**
   * How long clients saw errors: from the first second with failed sends after the fault to the last
   * one of that episode (gaps under 5 s joined), in seconds; 0 when none failed.
   */
  errorsSec: number | null;
  /** Failed sends in that episode. */
  errors: number | null;
  /** disconnect: tunnels dropped. */
  dropped: number | null;
  /** A tunnel fault (kill, stop or restart of a relay; disconnect): its agents' reconnect, else null. */
  reconnect: FaultReconnect | null;
  /** A tunnel fault: the most tunnel connects the relays accepted in one second of its episode, as scraped from them; null otherwise or unscraped. */
  relayPeakConnectsPerSec: number | null;
  /** A tunnel fault: its agents back and all connects over time, for the report's reconnect curve. */
  reconnectCurve: ReconnectCurve | null;
  /**
   * Alert delay (a stack with an analytics node): the alerts raised from frames the agents sent
   * during the fault (from its firing to the end of its `for`, or 10 s for an instant fault); null
   * when none was raised then, or the stack has no analytics node.
   */
  alertDelayMs?: AlertDelaySummary | null;
  /** The same for the alerts from frames sent in the clean part of the fault's stage (outside every fault's span and settling). */
  alertDelayCleanMs?: AlertDelaySummary | null;
  /**
   * Each client operation's latency while the fault lasted against the clean part of its stage (the
   * swarm's seconds and the operators' sessions; warm-ups excluded), with the p50 ratio's 95%
   * interval and whether it is within 10% (alert-delay.ts). Empty when nothing was measured.
   * The three fields above are absent in results written before them.
   */
  latencyVsClean?: LatencyVsClean[];
  /**
   * A kill, stop or restart of an `app` node (the DBAgent): which app node led after it, how long
   * after the fault it took the lease (its own timestamp), against the lease TTL (takeover.ts);
   * null for other faults. Absent in results written before it.
   */
  takeover?: FaultTakeover | null;
}

/** What a tunnel fault's reconnect is measured from, once the run is over (fault-reconnect.ts). */
export interface TunnelFaultMeasure {
  /** The fault's record, when (epoch ms) it fired and when its episode ended. */
  (record: FaultRecord, firedAtMs: number, untilMs: number): Pick<FaultRecord, 'reconnect' | 'relayPeakConnectsPerSec' | 'reconnectCurve'>;
}

/** Gaps shorter than this join two error seconds into one episode. */
const EPISODE_GAP_MS = 5000;
/** An instant fault's span, for its latency and alert delay: this long from its firing. */
export const INSTANT_FAULT_SPAN_MS = 10_000;
/** After a fault's span, this long still does not count as clean (the stack settling). */
export const SETTLE_MS = 5000;
/** After a fault on the DBAgent's leader, its app nodes are read this often until the lease has moved. */
export const TAKEOVER_POLL_MS = 100;

interface Pending {
  fault: ScenarioFault;
  record: FaultRecord;
  firedAtMs: number | null;
  /** Client latency per operation while the fault lasted. */
  during: Map<string, LatencyHistogram>;
  /** A fault on an app node: its app nodes read before it acted, and the latest reading after (takeover.ts). */
  lease: { before: LeaseReading[]; after: LeaseReading[] | null; afterAtMs: number | null; settled: boolean } | null;
  /** The same second by second, for the p50 ratio's interval. */
  duringSeconds: SecondBlocks;
}

export class FaultRunner {
  private readonly pending: Pending[];
  private readonly timers = new Set<unknown>();
  /** Nodes whose next exit a fault caused (killed, or being restarted). */
  private readonly expectedExits = new Set<string>();
  /** Nodes a stop fault paused and has not yet resumed. */
  private readonly paused = new Set<string>();
  /** Per second: [end of the second, epoch ms; failed sends in it]. */
  private readonly errorSeconds: Array<[number, number]> = [];
  /**
   * Client latency per operation in the clean part of each stage (no fault's span or settling), by
   * stage index: a fault is compared with its own stage (the same fleet and rate), not with a ramp.
   */
  private readonly clean = new Map<number, Map<string, LatencyHistogram>>();
  /** The same second by second, by stage index. */
  private readonly cleanSeconds = new Map<number, SecondBlocks>();
  /** When each stage's measured part started (epoch ms), in the order they started. */
  private readonly stageStarts: Array<{ index: number; atMs: number }> = [];
  private closed = false;

  constructor(
    faults: ScenarioFault[],
    private readonly target: FaultTarget,
    private readonly runStartMs: number,
    private readonly clientTimeoutMs: number,
    private readonly clock: FaultClock = realClock,
    /** The stack's app nodes (the DBAgent): a kill, stop or restart of one is watched for a takeover. */
    private readonly lease: LeaseProbe | null = null,
  ) {
    this.pending = faults.map((fault) => ({
      fault,
      firedAtMs: null,
      during: new Map(),
      lease: null,
      duringSeconds: new SecondBlocks(),
      record: {
        at: round(fault.atMs / 1000, 3),
        stage: fault.stageIndex + 1,
        action: fault.action,
        node: fault.node,
        forSec: fault.forMs === null ? null : round(fault.forMs / 1000, 3),
        bySec: fault.byMs === null ? null : round(fault.byMs / 1000, 3),
        byFactor: fault.byFactor ?? null,
        fraction: fault.fraction,
        firedAtSec: null,
        outcome: 'skipped',
        error: null,
        errorsSec: null,
        errors: null,
        dropped: null,
        reconnect: null,
        relayPeakConnectsPerSec: null,
        reconnectCurve: null,
        alertDelayMs: null,
        alertDelayCleanMs: null,
        latencyVsClean: [],
        takeover: null,
      },
    }));
  }

  get size(): number {
    return this.pending.length;
  }

  /** Stage `stageIndex` (0-based) started its measured part at `epochMs`: schedule its faults. */
  stageStarted(stageIndex: number, epochMs: number): void {
    this.stageStarts.push({ index: stageIndex, atMs: epochMs });
    for (const p of this.pending) {
      if (p.fault.stageIndex !== stageIndex || p.firedAtMs !== null) continue;
      this.after(epochMs + p.fault.atInStageMs - this.clock.now(), () => void this.fire(p));
    }
  }

  /**
   * One second of the swarm ended at `endEpochMs` with `errors` failed sends, and (measured seconds)
   * its operations' latency histograms: into each fault whose span it overlaps, else into the clean part.
   */
  recordSecond(endEpochMs: number, errors: number, ops?: ReadonlyMap<string, LatencyHistogram>, warmup = false): void {
    this.errorSeconds.push([endEpochMs, errors]);
    if (!ops || warmup) return;
    const faults = this.overlapping(endEpochMs - 1000, endEpochMs);
    for (const [op, h] of ops) {
      if (faults.during.length === 0 && !faults.settling) {
        addOp(this.cleanOf(endEpochMs - 1000), op, h);
        this.cleanSecondsOf(endEpochMs - 1000).addSecond(op, h);
      }
      for (const p of faults.during) {
        addOp(p.during, op, h);
        p.duringSeconds.addSecond(op, h);
      }
    }
  }

  /** The stage running at `epochMs` (the last one started by then; -1 before any). */
  private stageAt(epochMs: number): number {
    let index = -1;
    for (const s of this.stageStarts) if (s.atMs <= epochMs) index = s.index;
    return index;
  }

  /** The clean histograms of the stage running at `epochMs`. */
  private cleanOf(epochMs: number): Map<string, LatencyHistogram> {
    const stage = this.stageAt(epochMs);
    let m = this.clean.get(stage);
    if (!m) this.clean.set(stage, (m = new Map()));
    return m;
  }

  /** The clean seconds of the stage running at `epochMs`. */
  private cleanSecondsOf(epochMs: number): SecondBlocks {
    const stage = this.stageAt(epochMs);
    let b = this.cleanSeconds.get(stage);
    if (!b) this.cleanSeconds.set(stage, (b = new SecondBlocks()));
    return b;
  }

  /** The clean part of a stage as spans (epoch ms): from its start to the next stage's start (or forever). */
  private stageSpan(stageIndex: number): Span | null {
    const i = this.stageStarts.findIndex((s) => s.index === stageIndex);
    if (i < 0) return null;
    return { fromMs: this.stageStarts[i]!.atMs, toMs: this.stageStarts[i + 1]?.atMs ?? Infinity };
  }

  /** One client operation outside the swarm (an operator session) ended at `endEpochMs`, taking `latencyUs`. */
  recordOp(op: string, endEpochMs: number, latencyUs: number): void {
    const faults = this.overlapping(endEpochMs, endEpochMs + 1);
    if (faults.during.length === 0 && !faults.settling) {
      recordOp(this.cleanOf(endEpochMs), op, latencyUs);
      this.cleanSecondsOf(endEpochMs).addSample(op, endEpochMs, latencyUs);
    }
    for (const p of faults.during) {
      recordOp(p.during, op, latencyUs);
      p.duringSeconds.addSample(op, endEpochMs, latencyUs);
    }
  }

  /** A fired fault's span: from its firing to the end of its `for` (an instant fault: INSTANT_FAULT_SPAN_MS). */
  private span(p: Pending): Span | null {
    if (p.firedAtMs === null) return null;
    return { fromMs: p.firedAtMs, toMs: p.firedAtMs + (p.fault.forMs ?? INSTANT_FAULT_SPAN_MS) };
  }

  /** The faults whose span overlaps [fromMs, toMs), and whether it falls in any fault's settling. */
  private overlapping(fromMs: number, toMs: number): { during: Pending[]; settling: boolean } {
    const during: Pending[] = [];
    let settling = false;
    for (const p of this.pending) {
      const s = this.span(p);
      if (!s) continue;
      if (fromMs < s.toMs && toMs > s.fromMs) during.push(p);
      else if (fromMs < s.toMs + SETTLE_MS && toMs > s.fromMs) settling = true;
    }
    return { during, settling };
  }

  /** Whether a fault caused this node's exit (a kill, or a restart's stop). */
  expectsExit(node: string): boolean {
    return this.expectedExits.has(node);
  }

  /** Cancel what has not run; resume a paused node, so the stack can stop. */
  close(): void {
    this.closed = true;
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
    for (const node of this.paused) this.resume(node);
  }

  /**
   * The faults with how long clients saw errors after each and, given `tunnels`, each tunnel fault's
   * reconnect. A fault's episode runs until the next fault that fired on the same node (a
   * disconnect: the next disconnect), or `endMs`.
   */
  records(tunnels?: TunnelFaultMeasure, endMs = this.clock.now(), alerts?: readonly AlertTiming[]): FaultRecord[] {
    // The clean part: outside every fired fault's span and its settling.
    const busy = this.pending.flatMap((p) => {
      const s = this.span(p);
      return s ? [{ fromMs: s.fromMs, toMs: s.toMs + SETTLE_MS }] : [];
    });
    return this.pending.map((p) => {
      if (p.firedAtMs === null || p.record.outcome !== 'done') return { ...p.record };
      const horizonMs = p.firedAtMs + (p.fault.forMs ?? 0) + this.clientTimeoutMs + EPISODE_GAP_MS;
      const episode = errorEpisode(this.errorSeconds, p.firedAtMs, horizonMs);
      const r: FaultRecord = {
        ...p.record,
        errorsSec: episode.seconds,
        errors: episode.errors,
        alertDelayMs: alerts ? alertDelay(alerts, this.span(p)!) : null,
        // The fault's own stage, outside every fault's span and settling.
        alertDelayCleanMs: alerts ? alertDelay(alerts, this.stageSpan(p.fault.stageIndex) ?? undefined, busy) : null,
        latencyVsClean: compareLatency(this.clean.get(p.fault.stageIndex) ?? new Map(), p.during, this.cleanSeconds.get(p.fault.stageIndex) ?? new SecondBlocks(), p.duringSeconds),
        takeover: p.lease ? takeoverOf(this.takeoverInput(p, p.lease)) : null,
      };
      if (!tunnels) return r;
      const next = this.pending.find((q) => q !== p && q.firedAtMs !== null && q.firedAtMs > p.firedAtMs! && q.fault.node === p.fault.node);
      return { ...r, ...tunnels(r, p.firedAtMs, next?.firedAtMs ?? Math.max(endMs, p.firedAtMs)) };
    });
  }

  private after(ms: number, fn: () => void): void {
    if (this.closed) return;
    const t = this.clock.setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, Math.max(0, ms));
    this.timers.add(t);
  }

  private async fire(p: Pending): Promise<void> {
    const f = p.fault;
    // A fault on the DBAgent: which app node leads, and which stand by, just before it acts.
    const onApp = this.lease !== null && f.node !== null && (f.action === 'kill' || f.action === 'stop' || f.action === 'restart') && this.lease.nodes.includes(f.node);
    if (onApp) {
      const before = await this.lease!.read();
      if (this.closed) return;
      p.lease = { before, after: null, afterAtMs: null, settled: false };
    }
    p.firedAtMs = this.clock.now();
    p.record.firedAtSec = round((p.firedAtMs - this.runStartMs) / 1000, 1);
    try {
      await this.act(f, p);
      p.record.outcome = 'done';
    } catch (err) {
      p.record.outcome = 'failed';
      p.record.error = (err as Error)?.message ?? String(err);
    }
    if (p.lease && p.record.outcome === 'done') this.watchTakeover(p, p.lease);
  }

  private takeoverInput(p: Pending, lease: NonNullable<Pending['lease']>): Parameters<typeof takeoverOf>[0] {
    const f = p.fault;
    return { action: f.action, node: f.node ?? '', forMs: f.forMs, firedAtMs: p.firedAtMs!, before: lease.before, after: lease.after, afterAtMs: lease.afterAtMs };
  }

  /** Read the app nodes every TAKEOVER_POLL_MS until the takeover is settled or no longer expected. */
  private watchTakeover(p: Pending, lease: NonNullable<Pending['lease']>): void {
    const ttlMs = lease.before.find((r) => r.leader)?.leaseTtlMs ?? lease.before.find((r) => r.leaseTtlMs !== null)?.leaseTtlMs ?? null;
    const untilMs = p.firedAtMs! + watchLimitMs(p.fault.forMs, ttlMs);
    const poll = async (): Promise<void> => {
      await this.readAfter(p, lease);
      if (!lease.settled && this.clock.now() < untilMs) this.after(TAKEOVER_POLL_MS, () => void poll());
    };
    lease.settled = takeoverSettled(this.takeoverInput(p, lease));
    if (!lease.settled) this.after(TAKEOVER_POLL_MS, () => void poll());
  }

  private async readAfter(p: Pending, lease: NonNullable<Pending['lease']>): Promise<void> {
    const readings = await this.lease!.read();
    const atMs = this.clock.now();
    if (lease.settled) return;
    lease.after = readings;
    lease.afterAtMs = atMs;
    lease.settled = takeoverSettled(this.takeoverInput(p, lease));
  }

  /**
   * At the run's end, while the stack still runs: read the app nodes once more for every fault whose
   * takeover is not settled yet (the run may end before the lease moves).
   */
  async finishTakeovers(): Promise<void> {
    await Promise.all(this.pending.filter((p) => p.lease && !p.lease.settled && p.firedAtMs !== null).map((p) => this.readAfter(p, p.lease!)));
  }

  private async act(f: ScenarioFault, p: Pending): Promise<void> {
    const node = f.node ?? '';
    switch (f.action) {
      case 'kill':
        this.expectedExits.add(node);
        this.paused.delete(node);
        this.target.kill(node, 'SIGKILL');
        return;
      case 'stop':
        this.target.kill(node, 'SIGSTOP');
        this.paused.add(node);
        this.after(f.forMs ?? 0, () => this.resume(node));
        return;
      case 'restart':
        this.expectedExits.add(node);
        this.paused.delete(node);
        try {
          await this.target.restart(node);
        } finally {
          // The new process is not expected to exit: if it dies, no fault named it.
          this.expectedExits.delete(node);
        }
        return;
      case 'slow':
        await this.target.slow(node, f.byMs ?? 0, f.forMs ?? 0, f.byFactor ?? 1);
        return;
      case 'disconnect':
        p.record.dropped = await this.target.disconnect(f.fraction ?? 0);
        return;
    }
  }

  private resume(node: string): void {
    if (!this.paused.delete(node)) return;
    try {
      this.target.kill(node, 'SIGCONT');
    } catch {
      // already gone: nothing to resume
    }
  }
}

/**
 * The errors after `fromMs`: the first second (ending after `fromMs`, starting before `horizonMs`)
 * with failed sends opens the episode; a later one less than EPISODE_GAP_MS after the last extends
 * it. Seconds: from the start of the first such second to the end of the last.
 */
export function errorEpisode(seconds: ReadonlyArray<readonly [number, number]>, fromMs: number, horizonMs: number): { seconds: number; errors: number } {
  let first: number | null = null;
  let last = 0;
  let errors = 0;
  for (const [endMs, n] of [...seconds].sort((a, b) => a[0] - b[0])) {
    if (endMs <= fromMs || n <= 0) continue;
    if (first === null) {
      if (endMs - 1000 >= horizonMs) break;
      first = endMs - 1000;
    } else if (endMs - 1000 - last >= EPISODE_GAP_MS) break;
    last = endMs;
    errors += n;
  }
  return first === null ? { seconds: 0, errors: 0 } : { seconds: round((last - Math.max(first, fromMs)) / 1000, 1), errors };
}

/** The stack a run started, and the current window's swarm (for a disconnect), as a FaultTarget. */
export function faultTarget(stack: RunningStack, currentSwarm: () => ((fraction: number) => Promise<number>) | null): FaultTarget {
  return {
    kill: (node, signal) => stack.kill(node, signal),
    restart: (node) => stack.restart(node),
    slow: (node, byMs, forMs, factor) => stack.slow(node, byMs, forMs, factor),
    disconnect: (fraction) => {
      const disconnect = currentSwarm();
      return disconnect ? disconnect(fraction) : Promise.reject(new Error('no swarm was running to disconnect'));
    },
  };
}
