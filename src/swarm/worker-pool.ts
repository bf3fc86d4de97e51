import { fork, type ChildProcess } from 'node:child_process';
import { runnableModulePath } from '../core/module-path.js';
import type { AckLedgerWire } from './ack-ledger.js';
import type { SwarmConfig } from './config.js';
import type { CoordinatorMessage, IntervalPart, WorkerMessage, WorkerPlan } from './ipc.js';
import type { Sizing } from './sizing.js';
import type { TunnelEvent } from './tunnel-log.js';
import { workerShare } from './shard.js';
import { CONNECT_LEAD_MS } from './connect-plan.js';

/**
 * The swarm's worker processes: forks them, starts them on one shared instant, hands on each
 * interval once every worker has reported it (or finished for good), stops them on abort, and
 * kills them at a hard bound, so nothing runs forever.
 */

export interface WorkerState {
  proc: ChildProcess;
  pid: number;
  agents: number;
  done: boolean;
  exitedEarly: boolean;
  cpu: number[];
  eldMax: number;
  /** The worst single event-loop delay in the measured window (not a percentile). */
  eldMaxAbs: number;
  rssMax: number;
}

export interface WorkerPoolOptions {
  config: SwarmConfig;
  sizing: Sizing;
  caPem: string | null;
  intervalMs: number;
  signal?: AbortSignal;
  /** Every worker is ready and was told to start at this shared t = 0 (epoch ms). */
  onGo: (startAtEpochMs: number) => void;
  /** One interval, complete (or, at the end, all that arrived of it), in index order. */
  onInterval: (index: number, parts: IntervalPart[]) => void;
  onWorkerError: (m: Extract<WorkerMessage, { type: 'error' }>) => void;
  /** A worker's tunnel events, as they arrive (before the interval is complete). */
  onTunnelEvents?: (events: TunnelEvent[]) => void;
  /** A barrier before t = 0 (a sharded run's coordinator): once every worker is ready, t = 0 is what it gives. */
  startGate?: StartGate;
}

/**
 * Where t = 0 comes from when it is not known in advance: `wait` resolves with it (epoch ms, this
 * machine's clock) once every shard is ready, or rejects (the swarm then stops, and runSwarm throws
 * that error). `maxMs` bounds the wait, on top of the swarm's own hard bound.
 */
export interface StartGate {
  wait: () => Promise<number>;
  maxMs: number;
}

/** Time between `go` and t = 0: pools connect and code warms up before the first intended send. */
const START_DELAY_MS = CONNECT_LEAD_MS;

const WORKER_PATH = runnableModulePath(import.meta.url, './worker.js');

export class WorkerPool {
  readonly workers: WorkerState[] = [];
  /** Ctrl-C: the workers were told to stop; the result is partial. */
  interrupted = false;
  /** The start gate failed (a shard or the coordinator went away): the workers were stopped before t = 0. */
  gateError: Error | null = null;
  /** Each HTTP worker's acknowledged writes, as it reported them at its end. */
  readonly ledgers: Array<{ worker: number; wire: AckLedgerWire }> = [];
  private readonly pending = new Map<number, Map<number, IntervalPart>>();
  private readyCount = 0;
  private allDone: () => void = () => undefined;
  private nextDisconnectId = 0;
  private readonly disconnects = new Map<number, { waiting: number; dropped: number; resolve: (dropped: number) => void }>();

  constructor(private readonly o: WorkerPoolOptions) {}

  /** Until every worker has finished (or was killed at the hard bound); every interval handed on. */
  async run(): Promise<void> {
    const { config: cfg, signal } = this.o;
    const done = new Promise<void>((resolve) => {
      this.allDone = resolve;
      for (let i = 0; i < this.o.sizing.workers; i++) this.fork(i);
    });
    const onAbort = (): void => {
      this.interrupted = true;
      for (const w of this.workers) if (!w.done && w.proc.connected) send(w, { type: 'stop' });
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    // Hard bound: the profile, the drain and a margin. Nothing runs forever.
    const waitMs = cfg.startAtEpochMs === null ? 0 : Math.max(0, cfg.startAtEpochMs - Date.now());
    const hardMs = waitMs + (this.o.startGate?.maxMs ?? 0) + cfg.profile.durationMs + Math.min(cfg.timeoutMs, 10_000) + 30_000 + cfg.agents * 0.05;
    const hard = setTimeout(() => {
      for (const w of this.workers) if (!w.done) w.proc.kill('SIGKILL');
    }, hardMs);
    try {
      await done;
    } finally {
      clearTimeout(hard);
      signal?.removeEventListener('abort', onAbort);
      for (const w of this.workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGTERM');
    }
    this.flushReady(true);
  }

  /**
   * A `disconnect` fault: every running worker drops that share of its open tunnels. Resolves with
   * the total dropped once each has answered (a worker that has finished counts 0).
   */
  disconnect(fraction: number, timeoutMs = 5000): Promise<number> {
    const live = this.workers.filter((w) => !w.done && w.proc.connected);
    if (live.length === 0) return Promise.resolve(0);
    const id = this.nextDisconnectId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(), timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        const d = this.disconnects.get(id);
        this.disconnects.delete(id);
        resolve(d?.dropped ?? 0);
      };
      this.disconnects.set(id, { waiting: live.length, dropped: 0, resolve: finish });
      for (const w of live) send(w, { type: 'disconnect', id, fraction });
    });
  }

  private fork(i: number): void {
    const { config: cfg, sizing } = this.o;
    const plan: WorkerPlan = {
      workerIndex: i,
      workerCount: sizing.workers,
      share: workerShare(cfg.shard, i, sizing.workers),
      config: cfg,
      localAddresses: sizing.sourceAddresses,
      maxInflight: sizing.maxInflight,
      intervalMs: this.o.intervalMs,
      caPem: this.o.caPem,
    };
    // HTTP: a larger young generation means fewer scavenges interrupting the send loop. Tunnels:
    // an idle fleet allocates little, so a small young generation. V8's --optimize-for-size
    // cuts marginal RSS per tunnel to ~5.5 KB but its extra GCs cost far more idle CPU
    // (docs/benchmarks.md): CPU matters more on a host shared with the system under test.
    // --expose-gc: tunnel workers compact their heap when a wave of connects settles
    // (compact.ts). That is the memory reducer's job done at the right moment, so the reducer is
    // off: its rounds of full GCs after a compaction found nothing to return and cost an idle
    // fleet of 100,000 about 2.5% of a core while they ran (docs/benchmarks.md).
    const execArgv = cfg.mode === 'http' ? ['--max-semi-space-size=32'] : ['--max-semi-space-size=1', '--expose-gc', '--no-memory-reducer'];
    const proc = fork(WORKER_PATH, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
    const st: WorkerState = { proc, pid: proc.pid ?? -1, agents: 0, done: false, exitedEarly: false, cpu: [], eldMax: 0, eldMaxAbs: 0, rssMax: 0 };
    this.workers.push(st);
    proc.on('message', (m: WorkerMessage) => this.onMessage(st, m));
    proc.on('exit', () => {
      if (!st.done) {
        st.done = true;
        st.exitedEarly = !this.interrupted;
        this.flushReady(false);
        this.checkAllDone();
      }
    });
    send(st, { type: 'prepare', plan });
  }

  private onMessage(st: WorkerState, m: WorkerMessage): void {
    const { config: cfg, intervalMs } = this.o;
    if (m.type === 'ready') {
      st.agents = m.agents;
      if (++this.readyCount === this.o.sizing.workers) {
        // Workers connect pools and warm up before the shared t = 0; with --start-at, t = 0 is that
        // instant (every shard the same). Ready after it, they start late, and the sends they
        // missed go out late and count as late (the verdict says so): never silently shifted.
        const go = (startAtEpochMs: number): void => {
          for (const w of this.workers) send(w, { type: 'go', startAtEpochMs });
          this.o.onGo(startAtEpochMs);
        };
        if (!this.o.startGate) go(cfg.startAtEpochMs ?? Date.now() + START_DELAY_MS);
        else {
          this.o.startGate.wait().then(go, (err: unknown) => {
            // No t = 0: the workers never started; stop them (ours, by their process).
            this.gateError = err instanceof Error ? err : new Error(String(err));
            this.interrupted = true;
            for (const w of this.workers) if (!w.done && w.proc.exitCode === null) w.proc.kill('SIGTERM');
          });
        }
      }
    } else if (m.type === 'interval') {
      const measured = m.index * intervalMs >= cfg.warmupMs && m.index * intervalMs < cfg.profile.durationMs;
      if (measured) {
        st.cpu.push(m.health.cpu);
        st.eldMax = Math.max(st.eldMax, m.health.eldP99Ms);
        st.eldMaxAbs = Math.max(st.eldMaxAbs, m.health.eldMaxMs);
      }
      st.rssMax = Math.max(st.rssMax, m.health.rssBytes);
      if (m.tunnelEvents) this.o.onTunnelEvents?.(m.tunnelEvents);
      let parts = this.pending.get(m.index);
      if (!parts) this.pending.set(m.index, (parts = new Map()));
      parts.set(m.worker, { interval: m.interval, health: m.health });
      this.flushReady(false);
    } else if (m.type === 'ledger') {
      this.ledgers.push({ worker: m.worker, wire: m.ledger });
    } else if (m.type === 'done') {
      st.done = true;
      this.flushReady(false);
      this.checkAllDone();
    } else if (m.type === 'error') {
      this.o.onWorkerError(m);
    } else if (m.type === 'disconnected') {
      const d = this.disconnects.get(m.id);
      if (d) {
        d.dropped += m.dropped;
        if (--d.waiting === 0) d.resolve(d.dropped);
      }
    }
  }

  private flushReady(force: boolean): void {
    const keys = [...this.pending.keys()].sort((a, b) => a - b);
    for (const index of keys) {
      const parts = this.pending.get(index)!;
      // An interval is complete when every worker has reported it or has finished for good.
      if (!force && !this.workers.every((w, i) => parts.has(i) || w.done)) break;
      this.pending.delete(index);
      this.o.onInterval(index, [...parts.values()]);
    }
  }

  private checkAllDone(): void {
    if (this.workers.every((w) => w.done)) this.allDone();
  }
}

function send(w: WorkerState, m: CoordinatorMessage): void {
  w.proc.send(m);
}
