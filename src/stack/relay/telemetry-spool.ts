import { mkdir, open, readdir, readFile, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { NodeMetricsApi, TelemetrySample } from '../types.js';

/**
 * The relay's telemetry write-behind to the analytics node (issue 13). The article: "Analytics
 * plane degraded. Alerts may delay; agent and access paths unaffected." So a relay does not make
 * an agent wait for the analytics node: it acks a telemetry frame once the frame is on its own
 * disk, and forwards it to the analytics node behind the ack.
 *
 *   batch ─► append (one line, fdatasync) ─► ack the batch's frames
 *                         │
 *                         └─► queue ─► analytics node (up to maxInFlight batches at once, oldest first)
 *
 * Durable: a batch is acked only once its line is fsynced into the current segment file. A
 * segment holds at most `segmentSamples` samples; it is deleted once sealed and every batch in it
 * reached the analytics node. A relay started on the same folder (the launcher keeps it in the
 * stack's data folder) replays every segment left behind, from the oldest. The analytics node
 * stores a frame once per (agent, seq) (analytics-store.ts), so a replay of a batch that had in
 * fact landed, or a retry of one whose answer was lost, stores nothing twice.
 *
 * Bounded: at most `maxSamples` waiting (in memory, and on disk); past that `append` rejects, the
 * batch is not acked, and the agents' frames go unacknowledged, as when the database is down.
 * A forward that fails is retried, oldest first, after `retryMs`.
 */

export interface TelemetrySpoolOptions {
  /** The folder of segment files (created if missing). */
  dir: string;
  /** Where forwarded batches go: the analytics node. */
  sink(samples: TelemetrySample[]): Promise<unknown>;
  metrics: Pick<NodeMetricsApi, 'count' | 'observeUs'>;
  logError(message: string): void;
  /** Batches forwarded at once (default 4). */
  maxInFlight?: number;
  /** Samples waiting at most (default 200,000: a relay's 20,000 agents, ten frames each). */
  maxSamples?: number;
  /** Samples per segment file before the next one starts (default 20,000). */
  segmentSamples?: number;
  /** Wait after a failed forward before the next try (default 1 s). */
  retryMs?: number;
  nowMs?: () => number;
}

export const DEFAULT_TELEMETRY_SPOOL_MAX = 200_000;
const DEFAULT_SEGMENT_SAMPLES = 20_000;
const SEGMENT_RE = /^telemetry-(\d{8})\.spool$/;

/** The spool is full: the batch is not acked. */
export class TelemetrySpoolFull extends Error {}

interface Segment {
  seq: number;
  path: string;
  /** Batches of this segment not yet forwarded. */
  waiting: number;
  /** No more appends go to it. */
  sealed: boolean;
}

interface Queued {
  samples: TelemetrySample[];
  segment: Segment;
  spooledMs: number;
  inFlight: boolean;
  done: boolean;
}

export class TelemetrySpool {
  private readonly queue: Queued[] = [];
  private waitingSamples = 0;
  private inFlight = 0;
  private current: Segment | null = null;
  private currentFh: FileHandle | null = null;
  private currentSamples = 0;
  private nextSeq = 1;
  /** Appends, rotations and deletions, one at a time, in order. */
  private fileChain: Promise<void> = Promise.resolve();
  /** Samples being appended now (counted against the bound before their line lands). */
  private appending = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly idleWaiters: Array<() => void> = [];
  private readonly maxInFlight: number;
  private readonly maxSamples: number;
  private readonly segmentSamples: number;
  private readonly retryMs: number;
  private readonly now: () => number;
  /** Samples replayed from a predecessor's segments at load (its counters are the metrics'). */
  replayedTotal = 0;

  constructor(private readonly o: TelemetrySpoolOptions) {
    this.maxInFlight = o.maxInFlight ?? 4;
    this.maxSamples = o.maxSamples ?? DEFAULT_TELEMETRY_SPOOL_MAX;
    this.segmentSamples = o.segmentSamples ?? DEFAULT_SEGMENT_SAMPLES;
    this.retryMs = o.retryMs ?? 1000;
    this.now = o.nowMs ?? (() => performance.now());
  }

  /** Samples spooled and not yet stored by the analytics node. */
  get waiting(): number {
    return this.waitingSamples;
  }

  /** How long the oldest waiting batch has waited (ms; 0 when none waits). */
  get oldestAgeMs(): number {
    const head = this.queue.find((q) => !q.done);
    return head ? Math.max(0, this.now() - head.spooledMs) : 0;
  }

  /** Replay what a predecessor on the same folder left, then take appends. */
  async load(): Promise<void> {
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 });
    const names = (await readdir(this.o.dir)).filter((n) => SEGMENT_RE.test(n)).sort();
    for (const name of names) {
      const seq = Number(SEGMENT_RE.exec(name)![1]);
      this.nextSeq = Math.max(this.nextSeq, seq + 1);
      const segment: Segment = { seq, path: join(this.o.dir, name), waiting: 0, sealed: true };
      const text = await readFile(segment.path, 'utf8');
      for (const line of text.split('\n')) {
        if (line === '') continue;
        let samples: TelemetrySample[];
        try {
          samples = JSON.parse(line) as TelemetrySample[];
        } catch {
          // A line cut short by a crash mid-append: never fsynced, so never acked.
          continue;
        }
        if (!Array.isArray(samples) || samples.length === 0) continue;
        segment.waiting++;
        this.queue.push({ samples, segment, spooledMs: this.now(), inFlight: false, done: false });
        this.waitingSamples += samples.length;
        this.replayedTotal += samples.length;
        this.o.metrics.count('telemetry-spool-replayed', samples.length);
      }
      if (segment.waiting === 0) await unlink(segment.path).catch(() => undefined);
    }
    this.pump();
  }

  /**
   * Make `samples` durable here; resolves once their line is fsynced (then the frames may be
   * acked). Rejects with TelemetrySpoolFull past the bound, or with the file system's error.
   */
  append(samples: TelemetrySample[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the telemetry spool is closed'));
    if (this.waitingSamples + this.appending + samples.length > this.maxSamples) {
      this.o.metrics.count('telemetry-spool-full');
      return Promise.reject(new TelemetrySpoolFull(`the telemetry spool holds its limit of ${this.maxSamples} samples`));
    }
    this.appending += samples.length;
    const line = JSON.stringify(samples) + '\n';
    const appended = this.fileChain.then(async () => {
      if (this.currentFh === null || this.currentSamples >= this.segmentSamples) await this.rotate();
      await this.currentFh!.write(line);
      await this.currentFh!.datasync();
      this.currentSamples += samples.length;
      const segment = this.current!;
      segment.waiting++;
      this.queue.push({ samples, segment, spooledMs: this.now(), inFlight: false, done: false });
      this.waitingSamples += samples.length;
    });
    this.fileChain = appended.catch(() => undefined);
    return appended.finally(() => {
      this.appending -= samples.length;
      this.pump();
    });
  }

  /** Seal the current segment (deleting it if all of it was forwarded) and open the next. */
  private async rotate(): Promise<void> {
    const old = this.current;
    if (this.currentFh) await this.currentFh.close();
    this.currentFh = null;
    if (old) {
      old.sealed = true;
      if (old.waiting === 0) await unlink(old.path).catch(() => undefined);
    }
    const seq = this.nextSeq++;
    const path = join(this.o.dir, `telemetry-${String(seq).padStart(8, '0')}.spool`);
    this.currentFh = await open(path, 'a', 0o600);
    this.current = { seq, path, waiting: 0, sealed: false };
    this.currentSamples = 0;
  }

  /** Forward the oldest waiting batches while slots are free. */
  private pump(): void {
    if (this.retryTimer !== null || this.closed) return this.settle();
    for (const q of this.queue) {
      if (this.inFlight >= this.maxInFlight) break;
      if (q.inFlight || q.done) continue;
      this.forward(q);
    }
    this.settle();
  }

  private forward(q: Queued): void {
    q.inFlight = true;
    this.inFlight++;
    const startMs = this.now();
    this.o
      .sink(q.samples)
      .then(
        () => {
          const nowMs = this.now();
          this.o.metrics.observeUs('telemetry-forward', (nowMs - startMs) * 1000);
          this.o.metrics.observeUs('telemetry-spool-wait', (nowMs - q.spooledMs) * 1000);
          this.o.metrics.count('telemetry-forwarded', q.samples.length);
          q.done = true;
          this.waitingSamples -= q.samples.length;
          const s = q.segment;
          s.waiting--;
          if (s.sealed && s.waiting === 0) this.fileChain = this.fileChain.then(() => unlink(s.path).catch(() => undefined));
        },
        (err: unknown) => {
          this.o.metrics.count('telemetry-forward-failed');
          this.o.logError(`telemetry forward of ${q.samples.length} samples failed (retrying): ${(err as Error)?.message ?? String(err)}`);
          if (this.retryTimer === null && !this.closed) {
            this.retryTimer = setTimeout(() => {
              this.retryTimer = null;
              this.pump();
            }, this.retryMs);
          }
        },
      )
      .finally(() => {
        q.inFlight = false;
        this.inFlight--;
        // Forwarded batches leave the head of the queue; a failed one stays, oldest first.
        while (this.queue.length > 0 && this.queue[0].done) this.queue.shift();
        this.pump();
      });
  }

  private settle(): void {
    if (this.inFlight === 0 && this.appending === 0 && (this.waitingSamples === 0 || this.closed)) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolve once everything spooled so far reached the analytics node, or at the deadline. */
  async drain(timeoutMs: number): Promise<void> {
    this.settle();
    if (this.inFlight === 0 && this.appending === 0 && this.waitingSamples === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise<void>((r) => this.idleWaiters.push(r)), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  /**
   * Stop forwarding and close the segment file. What has not reached the analytics node stays on
   * disk for the next relay on this folder.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    await this.fileChain;
    if (this.currentFh) await this.currentFh.close().catch(() => undefined);
    this.currentFh = null;
    const cur = this.current;
    if (cur && cur.waiting === 0) await unlink(cur.path).catch(() => undefined);
    this.settle();
  }
}
