import { createHistogram, monitorEventLoopDelay, performance, type IntervalHistogram, type RecordableHistogram } from 'node:perf_hooks';
import type { CommandResult, MessageKind, PendingCommand } from '../core/protocol.js';
import { Rng } from '../core/random.js';
import type { SwarmConfig, ScheduledKind } from './config.js';
import { SCHEDULED_KINDS } from './config.js';
import { PayloadFactory } from './payloads.js';
import { SwarmRecorder } from './recorder.js';
import type { WorkerHealth, WorkerMessage, WorkerPlan } from './ipc.js';
import { FleetSchedule } from './fleet-schedule.js';
import { CONNECT_LEAD_MS, ConnectPlan } from './connect-plan.js';
import type { FirstConnects } from './transports/ws-tunnels.js';
import type { HttpTransport } from './transports/http.js';
import { compactHeap, mayCompactAt } from './compact.js';
import { ClosedLoop } from './closed-loop.js';
import { localAgents, type LocalAgents } from './local-agents.js';
import { parseReconnectPolicy, parseReturnHome } from './reconnect.js';
import type { TunnelEvent } from './tunnel-log.js';
import { TunnelFleet, type TunnelCodec } from './transports/ws-tunnels.js';
import { AckLedger, seqBaseFor } from './ack-ledger.js';
import type { WriteSend } from './transports/http.js';
import type { ProtocolDriver, RestoredEnrolment } from './protocol/protocol-driver.js';
import type { ProtocolHttp } from './protocol/protocol-http.js';

/**
 * One worker's share of the fleet, and its run loop. Agents with global index g = first + s·stride
 * live here (plan.share: the worker's stripe of its shard's stripe); every agent's schedule is a
 * pure function of the seed and g, the same whatever the worker and shard counts.
 *
 * The workload kind (config.ts `Workload`) is chosen once, in start(): an open workload runs the
 * send loop below over fleet-schedule.ts (periodic or Poisson arrivals); a closed one hands
 * the sends to closed-loop.ts. Both share the transports, the recorder, the intervals and finish().
 *
 * Between check-ins an agent of an open workload costs about 32 bytes in typed arrays (the
 * schedule's phase, cycle and next fire, a heap slot, its sequence number): no socket, no timer, no
 * closure. One timer per worker wakes at the earliest due fire.
 */

/**
 * Event-loop delay. HTTP workers sample it every 10 ms (monitorEventLoopDelay). Tunnel workers
 * sit idle between pings, and on this kind of host every wake-up of an idle process costs about
 * 0.1 ms of CPU: a 50 ms monitor alone was ~0.17% of a core per worker, and 100k tunnels take
 * 6 workers. So a tunnel worker measures the delay on the timers it arms anyway (the scheduler's
 * and the once-a-second report's): how late each fired. That is the same quantity the monitor
 * samples (a timer's lateness), at the moments the worker has work, with no extra wake-up.
 */
const ELD_RESOLUTION_MS = 10;
/**
 * Node timers fire on a 1 ms grid and never early, so a sender that waits for the due time is
 * always 0–1 ms late. Sends due within this look-ahead go out on the current wake-up instead,
 * centring the error on zero (|lag| ≤ 0.5 ms from the grid). Early sends are measured from when
 * they left (SwarmRecorder.done), so the look-ahead can never make a target look faster.
 */
export const LOOKAHEAD_MS = 0.5;
/** How long in-flight requests may finish after the profile ends before the worker stops waiting. */
const DRAIN_MAX_MS = 10_000;
/** A failed write with no retry-after is sent again after this (times 1–1.5, jittered). */
const RETRY_DEFAULT_MS = 1000;

/**
 * Which failed agent writes are sent again, with the same idempotency key: a 503 (the server says
 * when, in retry-after), a 502 or 504 (a proxy lost its backend), and no answer at all (a refused
 * or reset connection, a timeout: status 0). Never a 4xx: that write is wrong, not early.
 */
export function retryable(status: number): boolean {
  return status === 0 || status === 502 || status === 503 || status === 504;
}

export class SwarmEngine {
  private readonly plan: WorkerPlan;
  private readonly emit: (m: WorkerMessage) => void;
  private perfT0 = 0;
  private startAtEpochMs = 0;
  readonly agents: LocalAgents;
  private rec: SwarmRecorder;
  private readonly rng: Rng;
  private readonly seq: Uint32Array;
  /** The keys of this swarm's writes: seqBase + n (ack-ledger.ts); set at the start. */
  private seqBase = 0;
  private ledger = new AckLedger(0);
  /** Retries waiting for their time. */
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  /** Open workload: built in start(). */
  private schedule: FleetSchedule | null = null;
  /** Closed workload: built in start(). */
  private closed: ClosedLoop | null = null;
  private readonly payloads: PayloadFactory;
  private readonly mixWeights: number[];
  private http: HttpTransport | null = null;
  private tunnels: TunnelFleet | null = null;
  /** A template protocol (config.protocol): its driver replaces the fixed HTTP path. */
  private protocol: ProtocolDriver | null = null;
  private protocolHttp: ProtocolHttp | null = null;
  /** The run's earlier enrolment of this worker's agents (loaded in prepare), and how to save it for the next swarm. */
  private restored: RestoredEnrolment | null = null;
  private saveEnrolled: ((savedAtMs: number) => string | null) | null = null;
  private loopTimer: NodeJS.Timeout | null = null;
  private intervalTimer: NodeJS.Timeout | null = null;
  private intervalIndex = 0;
  private stopped = false;
  /** HTTP: the sampling monitor. Tunnels: null (timerLateness is used). */
  private readonly eld: IntervalHistogram | null;
  /** Lateness of the worker's own timers, ns (tunnel workers). */
  private readonly timerLateness: RecordableHistogram = createHistogram();
  private loopWakeAt = 0;
  private cpuPrev = process.cpuUsage();
  private cpuPrevAt = performance.now();
  private finished: Promise<void>;
  private resolveFinished!: () => void;

  constructor(plan: WorkerPlan, emit: (m: WorkerMessage) => void) {
    this.plan = plan;
    this.emit = emit;
    this.eld = plan.config.mode === 'http' ? monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS }) : null;
    const cfg = plan.config;
    this.rng = new Rng(`${cfg.seed}\0worker\0${plan.share.first}`);
    this.agents = localAgents(
      { seed: cfg.seed, secret: cfg.secret, agents: cfg.agents, share: plan.share, identitiesFile: cfg.identitiesFile },
      cfg.mode === 'http',
    );
    this.seq = new Uint32Array(this.agents.count);
    this.payloads = new PayloadFactory(cfg.seed);
    this.mixWeights = SCHEDULED_KINDS.map((k) => cfg.mix[k]);
    this.rec = new SwarmRecorder(this.now(), cfg.lateThresholdMs);
    this.finished = new Promise((r) => (this.resolveFinished = r));
  }

  /** Before `ready`: load what must not cost time after the shared start (a protocol's earlier enrolment). */
  async prepare(): Promise<void> {
    const { mode, protocol, enrolledStateDir: dir } = this.plan.config;
    if (mode === 'http' && protocol && dir) this.restored = (await import('./protocol/start-driver.js')).restoreEnrolment(protocol, dir, this.plan.share, this.agents.count);
  }

  /** Milliseconds since the profile's t = 0 (negative before the start). */
  now = (): number => performance.now() - this.perfT0;

  /** Start at `startAtEpochMs` (the same instant for every worker): t = 0 of the load profile. */
  async start(startAtEpochMs: number): Promise<void> {
    const cfg = this.plan.config;
    this.perfT0 = startAtEpochMs - performance.timeOrigin;
    this.startAtEpochMs = startAtEpochMs;
    this.rec = new SwarmRecorder(Math.max(0, this.now()), cfg.lateThresholdMs);
    this.seqBase = seqBaseFor(startAtEpochMs);
    this.ledger = new AckLedger(this.seqBase);
    if (cfg.mode === 'http' && cfg.protocol) {
      await this.startProtocol();
    } else if (cfg.mode === 'http') {
      // Loaded only where used: a tunnel worker never pays for undici's memory.
      const { HttpTransport } = await import('./transports/http.js');
      this.http = new HttpTransport({
        ...this.httpSettings(),
        recorder: this.rec,
        now: this.now,
        onWrite: this.writeSettled,
      });
      this.http.warm();
    } else {
      this.tunnels = await this.startTunnels();
    }
    this.eld?.enable();
    this.armInterval();
    if (cfg.workload.kind === 'closed') {
      this.closed = this.closedLoop();
      this.closed.start();
      return;
    }
    this.seedSchedule();
    this.armLoop();
  }

  /** Where and how this worker's HTTP agents connect: the same for the fixed check-in and a protocol file. */
  private httpSettings() {
    const cfg = this.plan.config;
    return {
      baseUrl: cfg.targets[0],
      connection: cfg.connection,
      // A closed workload's connections are shared among the workers (sizeRun).
      poolConnections: cfg.workload.kind === 'closed' ? this.plan.maxInflight : cfg.poolConnections,
      localAddresses: this.plan.localAddresses,
      timeoutMs: cfg.timeoutMs,
      tls: { ca: this.plan.caPem ? Buffer.from(this.plan.caPem) : undefined, insecure: cfg.insecure },
      maxInflight: this.plan.maxInflight,
    };
  }

  /** A protocol file's agents: compiled here, once per worker (src/swarm/protocol/). */
  private async startProtocol(): Promise<void> {
    const cfg = this.plan.config;
    const { startProtocolDriver } = await import('./protocol/start-driver.js');
    const started = await startProtocolDriver({
      spec: cfg.protocol!,
      seed: cfg.seed,
      agents: this.agents,
      http: this.httpSettings(),
      recorder: this.rec,
      rng: this.rng,
      now: this.now,
      enrolledState: cfg.enrolledStateDir ? { dir: cfg.enrolledStateDir, share: this.plan.share, restored: this.restored } : null,
    });
    this.restored = null;
    this.protocol = started.driver;
    this.protocolHttp = started.http;
    this.saveEnrolled = started.save;
    started.http.warm();
  }

  private async startTunnels(): Promise<TunnelFleet> {
    const cfg = this.plan.config;
    let codec: TunnelCodec | undefined;
    if (cfg.protocol) {
      const { compileProtocol } = await import('./protocol/compile-protocol.js');
      const { tunnelCodec } = await import('./protocol/tunnel-codec.js');
      codec = tunnelCodec(compileProtocol(cfg.protocol).tunnel!, this.agents, new Rng(`${cfg.seed}\0tunnel-frames\0${this.plan.workerIndex}`), Date.now);
    }
    const fleet = new TunnelFleet({
      codec,
      urls: cfg.targets,
      agents: this.agents,
      localAddresses: this.plan.localAddresses,
      reconnect: parseReconnectPolicy('--reconnect', cfg.reconnect),
      returnHome: parseReturnHome('--return-home', cfg.returnHome),
      // Reconnects share the fleet's rate: this worker's part of it (all shards' workers together).
      connectRatePerSec: Math.max(1, cfg.connectRatePerSec / (this.plan.workerCount * cfg.shard.count)),
      // First connects: each agent's intended time, the same whatever the split (connect-plan.ts).
      firstConnects: leadBy(new ConnectPlan(cfg.profile, cfg.connectRatePerSec, this.plan.share), CONNECT_LEAD_MS),
      commandDelayMs: cfg.commandDelayMs,
      tls: { ca: this.plan.caPem ? Buffer.from(this.plan.caPem) : undefined, insecure: cfg.insecure },
      seqBase: this.seqBase,
      startAtEpochMs: this.startAtEpochMs,
      // Each telemetry frame a relay acked (rmmscale's frames; a protocol file's carry no key).
      onAck: codec ? undefined : (slot, n) => this.ledger.ack(slot, n),
      recorder: this.rec,
      rng: new Rng(`${cfg.seed}\0tunnels\0${this.plan.share.first}`),
      now: this.now,
      onWaveSettled: () => this.waveSettled(),
    });
    fleet.start();
    return fleet;
  }

  /**
   * A wave of connects settled: compact the heap, but never inside the measured window (mayCompactAt).
   * The run gives tunnel windows a warm-up long enough for their opening wave (src/run/run.ts).
   */
  private waveSettled(): void {
    // Outside the socket callback that settled the last attempt (compact.ts says why).
    if (mayCompactAt(this.now(), this.plan.config.warmupMs)) setImmediate(compactHeap);
  }

  /** The closed workload over the HTTP pool: one check-in in flight per connection, agents taking turns. */
  private closedLoop(): ClosedLoop {
    const http = this.http;
    return new ClosedLoop({
      connections: this.plan.maxInflight,
      agentCount: this.agents.count,
      endMs: this.plan.config.profile.durationMs,
      now: this.now,
      send: (s, atMs, next) => {
        this.rec.scheduled();
        if (this.protocol) return this.protocol.fire(s, atMs, next);
        const agent = this.agents.at(s);
        const n = ++this.seq[s];
        http!.send(s, agent, 'checkin', this.payloads.body('checkin', agent, this.seqBase + n, this.rng), atMs, undefined, next, n);
      },
      end: () => void this.finish(),
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (t) => clearTimeout(t),
    });
  }

  /** Put every local agent's first fire on the heap. */
  private seedSchedule(): void {
    const cfg = this.plan.config;
    this.schedule = new FleetSchedule(cfg.profile, cfg.seed, this.agents.count, this.plan.share, {
      arrival: cfg.arrival,
      fromMs: 0,
      untilMs: cfg.profile.durationMs,
      jitterMs: cfg.jitterMs,
    });
  }

  private nextDueMs(): number {
    return this.schedule ? this.schedule.nextDueMs() : Infinity;
  }

  private armLoop(): void {
    if (this.stopped) return;
    const due = this.nextDueMs();
    const endMs = this.plan.config.profile.durationMs;
    const wakeAt = Math.min(due - LOOKAHEAD_MS, endMs);
    const wait = wakeAt - this.now();
    this.loopWakeAt = wait > 0 ? wakeAt : this.now();
    this.loopTimer = setTimeout(this.loop, wait > 0 ? wait : 0);
  }

  /** A timer meant for `dueMs` fired now: its lateness is the event-loop delay (tunnel workers). */
  private timerFired(dueMs: number, nowMs: number): void {
    if (this.eld) return;
    const lateNs = Math.round((nowMs - dueMs) * 1e6);
    this.timerLateness.record(lateNs >= 1 ? lateNs : 1);
  }

  private loop = (): void => {
    this.loopTimer = null;
    const cfg = this.plan.config;
    const now = this.now();
    this.timerFired(this.loopWakeAt, now);
    const endMs = cfg.profile.durationMs;
    const horizon = Math.min(now + LOOKAHEAD_MS, endMs);
    this.schedule!.fireDue(horizon, this.fire);
    if (now >= endMs) {
      void this.finish();
      return;
    }
    this.armLoop();
  };

  /** The message kind of fire k of slot s: by the mix's weights, from a draw the same in every process. */
  private pickKind(s: number, k: number): ScheduledKind {
    return SCHEDULED_KINDS[weightedIndex(this.mixWeights, this.schedule!.kindDraw(s, k))];
  }

  /** One scheduled send for local slot s, intended at tMs (bound once: the schedule calls it per fire). */
  private fire = (s: number, tMs: number, k: number): void => {
    this.rec.scheduled();
    if (this.tunnels) {
      this.tunnels.sendTelemetry(s, tMs);
      return;
    }
    if (this.protocol) {
      this.protocol.fire(s, tMs);
      return;
    }
    this.sendHttp(s, this.pickKind(s, k), tMs);
  };

  /**
   * Every write (check-in, inventory, command result) gets the agent's next key; a heartbeat stores
   * nothing and carries the last one.
   */
  private sendHttp(s: number, kind: MessageKind, tMs: number, results?: CommandResult[]): void {
    const agent = this.agents.at(s);
    const n = kind === 'heartbeat' ? 0 : ++this.seq[s];
    const body = this.payloads.body(kind, agent, this.seqBase + (n || this.seq[s]), this.rng, results);
    this.http!.send(s, agent, kind, body, tMs, this.commandsOf(s, kind), undefined, n);
  }

  private commandsOf(s: number, kind: MessageKind): ((cmds: PendingCommand[], doneMs: number) => void) | undefined {
    return kind === 'checkin' ? (cmds, doneMs) => this.runCommands(s, cmds, doneMs) : undefined;
  }

  /**
   * A keyed write ended: acknowledged, it goes into the ledger; failed for a reason worth retrying,
   * it goes out again with the same body (the same key) after the server's retry-after, or 1 s,
   * jittered by up to half again so that a fleet refused together does not return together.
   * Retries stop with the drain after the profile: each waits ≥ 1 s, so they are bounded in count.
   */
  private writeSettled = (w: WriteSend, ok: boolean, status: number, retryAfterMs: number | null): void => {
    if (ok) {
      this.ledger.ack(w.slot, w.n);
      return;
    }
    // A closed loop measures throughput: its next send follows the last, never a retry.
    if (this.stopped || this.closed || !retryable(status)) return;
    const delayMs = Math.max(RETRY_DEFAULT_MS, retryAfterMs ?? RETRY_DEFAULT_MS) * (1 + 0.5 * this.rng.next());
    const cfg = this.plan.config;
    if (this.now() + delayMs > cfg.profile.durationMs + Math.min(DRAIN_MAX_MS, cfg.timeoutMs)) return;
    const t = setTimeout(() => {
      this.retryTimers.delete(t);
      if (!this.http) return;
      this.rec.scheduled();
      this.http.send(w.slot, w.agent, w.kind, w.body, this.now(), this.commandsOf(w.slot, w.kind), undefined, w.n);
    }, delayMs);
    this.retryTimers.add(t);
  };

  /** Commands from a check-in: execute (a simulated delay), then post the results. Open model too. */
  private runCommands(s: number, commands: PendingCommand[], doneMs: number): void {
    if (this.stopped) return;
    const delayMs = this.rng.exponential(this.plan.config.commandDelayMs);
    const intended = doneMs + delayMs;
    const results: CommandResult[] = commands.map((c) => ({
      commandId: c.id,
      exitCode: 0,
      output: `ran ${c.kind} on ${this.agents.at(s).hostname}`,
      durationMs: Math.round(delayMs),
    }));
    setTimeout(() => {
      if (this.stopped) return;
      this.rec.scheduled();
      this.sendHttp(s, 'command-result', intended, results);
    }, Math.max(0, intended - this.now()));
  }

  private armInterval(): void {
    const iv = this.plan.intervalMs;
    const nextBoundary = (this.intervalIndex + 1) * iv;
    this.intervalTimer = setTimeout(() => {
      this.timerFired(nextBoundary, this.now());
      this.takeInterval();
      if (!this.stopped) this.armInterval();
    }, Math.max(0, nextBoundary - this.now()));
  }

  private takeInterval(): void {
    const now = this.now();
    const interval = this.rec.takeInterval(now);
    const cpuNow = process.cpuUsage();
    const at = performance.now();
    const cpuUs = cpuNow.user - this.cpuPrev.user + (cpuNow.system - this.cpuPrev.system);
    const cpu = at > this.cpuPrevAt ? cpuUs / 1000 / (at - this.cpuPrevAt) : 0;
    this.cpuPrev = cpuNow;
    this.cpuPrevAt = at;
    let eldP99Ms = 0;
    let eldMaxMs = 0;
    if (this.eld) {
      eldP99Ms = Math.max(0, this.eld.percentile(99) / 1e6 - ELD_RESOLUTION_MS);
      eldMaxMs = Math.max(0, this.eld.max / 1e6 - ELD_RESOLUTION_MS);
      this.eld.reset();
    } else if (this.timerLateness.count > 0) {
      eldP99Ms = this.timerLateness.percentile(99) / 1e6;
      eldMaxMs = this.timerLateness.max / 1e6;
      this.timerLateness.reset();
    }
    const connected = this.tunnels ? this.tunnels.connected : 0;
    interval.gauges.connected = connected;
    this.emit({
      type: 'interval',
      worker: this.plan.workerIndex,
      index: this.intervalIndex++,
      interval,
      health: { pid: process.pid, cpu, cpuUs, eldP99Ms, eldMaxMs, rssBytes: process.memoryUsage.rss(), inflight: this.http?.inflight ?? this.protocol?.inflight ?? 0, connected },
      tunnelEvents: this.takeTunnelEvents(),
    });
  }

  /** The fleet's tunnel events since the last interval, by agent id and on the epoch clock. */
  private takeTunnelEvents(): TunnelEvent[] | undefined {
    if (!this.tunnels) return undefined;
    const events = this.tunnels.takeEvents();
    if (events.length === 0) return undefined;
    return events.map((e) => ({ kind: e.kind, agentId: this.agents.idAt(e.slot), relay: e.relay, atMs: Math.round((this.startAtEpochMs + e.atMs) * 10) / 10 }));
  }

  /** The profile is over: let in-flight requests land (bounded), ship the last interval, close. */
  private async finish(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.loopTimer) clearTimeout(this.loopTimer);
    this.closed?.stop();
    const deadline = this.now() + Math.min(DRAIN_MAX_MS, this.plan.config.timeoutMs);
    const inflight = (): number => (this.http?.inflight ?? 0) + (this.tunnels?.pending ?? 0) + (this.protocol?.inflight ?? 0) + this.retryTimers.size;
    while (inflight() > 0 && this.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
    if (this.intervalTimer) clearTimeout(this.intervalTimer);
    this.takeInterval();
    await this.http?.close();
    this.protocol?.close();
    await this.protocolHttp?.close();
    await this.tunnels?.close();
    this.eld?.disable();
    // For the run's next swarm; failing to is an error, not silence.
    const unsaved = this.saveEnrolled?.(this.startAtEpochMs);
    if (unsaved) this.emit({ type: 'error', worker: this.plan.workerIndex, message: unsaved, code: 'ERR_ENROLLED_STATE' });
    if (this.http || this.tunnels) this.emit({ type: 'ledger', worker: this.plan.workerIndex, ledger: this.ledger.toWire() });
    this.emit({ type: 'done', worker: this.plan.workerIndex });
    this.resolveFinished();
  }

  /** A `disconnect` fault: drop that share of this worker's open tunnels (0 for HTTP). */
  disconnect(fraction: number): number {
    return this.tunnels?.disconnect(fraction) ?? 0;
  }

  /** Stop early (Ctrl-C): same path as the natural end. */
  async stop(): Promise<void> {
    await this.finish();
    await this.finished;
  }

  done(): Promise<void> {
    return this.finished;
  }
}

/** A connect plan moved earlier by leadMs (the same in every process). */
function leadBy(plan: FirstConnects, leadMs: number): FirstConnects {
  return { atMs: (slot) => plan.atMs(slot) - leadMs };
}

/** The index that a uniform draw x ∈ (0, 1) picks by weights (which need not sum to 1). */
export function weightedIndex(weights: readonly number[], x: number): number {
  let total = 0;
  for (const w of weights) total += w;
  let left = x * total;
  for (let i = 0; i < weights.length; i++) {
    left -= weights[i];
    if (left < 0) return i;
  }
  return weights.length - 1;
}
