import type { NodeMetricsApi, TelemetrySample } from '../types.js';

/**
 * Relay telemetry into the database in batches, acknowledging each frame only after the batch
 * that holds it has committed: an acked frame is in the database (or, with an analytics node, in
 * the relay's fsynced telemetry spool: telemetry-spool.ts), never only in a relay's memory.
 *
 *   tel A ─┐                                    ┌─► ack A
 *   tel B ─┼─ buffer (until maxSamples, or the ─┼─► ack B      one store.telemetry([A, B, C])
 *   tel C ─┘   oldest has waited maxDelayMs)    └─► ack C
 *
 * A batch leaves when `maxSamples` are buffered, or when the oldest buffered sample has waited
 * `maxDelayMs`; at most `maxInFlight` batches commit at once, and what arrives meanwhile waits for
 * a slot (it leaves at once when its time is up). The buffer is bounded: past `maxBuffered`, a
 * frame is refused (`add` returns false, never acked), so a dead database costs bounded memory and
 * agents see their frames go unacknowledged instead of a relay that grows until it dies. It is
 * also bounded per owner (tunnel): past `maxPerOwner` frames buffered or committing, that
 * owner's next frames are refused, so one agent that floods cannot take the shared buffer from
 * the rest (issue 14).
 *
 * Owners (the tunnel a frame came on) and tags (its seq) ride in parallel arrays, so a buffered
 * frame costs one sample object and two array slots, no closure.
 */

export interface TelemetryBatchOptions {
  maxSamples: number;
  maxDelayMs: number;
  maxInFlight: number;
  maxBuffered: number;
  /** Frames one owner may have buffered or committing (default DEFAULT_MAX_PER_OWNER). */
  maxPerOwner?: number;
}

/** An agent acked one frame at a time needs 1; a burst after a reconnect, a few dozen. */
export const DEFAULT_MAX_PER_OWNER = 256;

/** 500 samples or 250 ms, 4 batches committing at once, at most 50,000 samples waiting. */
export const DEFAULT_TELEMETRY_BATCH: TelemetryBatchOptions = { maxSamples: 500, maxDelayMs: 250, maxInFlight: 4, maxBuffered: 50_000 };

export interface TelemetryBatcherDeps<T> {
  write(samples: TelemetrySample[]): Promise<void>;
  /** The batch holding (owner, seq) committed. */
  committed(owner: T, seq: number): void;
  /** A batch failed; its frames are not acknowledged. */
  failed(err: unknown, samples: number): void;
  metrics: Pick<NodeMetricsApi, 'count' | 'observeUs' | 'request'>;
  nowMs(): number;
}

interface Batch<T> {
  samples: TelemetrySample[];
  owners: T[];
  seqs: number[];
  arrivedMs: number[];
}

export class TelemetryBatcher<T> {
  private samples: TelemetrySample[] = [];
  private owners: T[] = [];
  private seqs: number[] = [];
  /** When each buffered frame arrived (nowMs), for its server-side latency. */
  private arrivedMs: number[] = [];
  /** When the oldest buffered sample must leave (Infinity: buffer empty). */
  private dueAtMs = Infinity;
  private timer: NodeJS.Timeout | null = null;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  /** Shutdown: everything buffered leaves as soon as a slot is free, due or not. */
  private draining = false;
  /** Frames per owner, buffered or committing; an owner leaves the map when it reaches 0. */
  private readonly perOwner = new Map<T, number>();
  private readonly maxPerOwner: number;

  constructor(
    private readonly opts: TelemetryBatchOptions,
    private readonly deps: TelemetryBatcherDeps<T>,
  ) {
    this.maxPerOwner = opts.maxPerOwner ?? DEFAULT_MAX_PER_OWNER;
  }

  get buffered(): number {
    return this.samples.length;
  }

  get committing(): number {
    return this.inFlight;
  }

  /** Frames `owner` has buffered or committing now. */
  heldBy(owner: T): number {
    return this.perOwner.get(owner) ?? 0;
  }

  /** Buffer one sample; false when the buffer, or this owner's share of it, is full (dropped, not acked). */
  add(sample: TelemetrySample, owner: T, seq: number): boolean {
    if (this.samples.length >= this.opts.maxBuffered) {
      this.deps.metrics.count('telemetry-dropped-backlog');
      return false;
    }
    const held = this.perOwner.get(owner) ?? 0;
    if (held >= this.maxPerOwner) {
      this.deps.metrics.count('telemetry-dropped-agent-limit');
      return false;
    }
    this.perOwner.set(owner, held + 1);
    const now = this.deps.nowMs();
    if (this.samples.length === 0) this.dueAtMs = now + this.opts.maxDelayMs;
    this.samples.push(sample);
    this.arrivedMs.push(now);
    this.owners.push(owner);
    this.seqs.push(seq);
    this.pump(this.draining);
    return true;
  }

  /**
   * Send what is due while commit slots are free; `force` sends everything (shutdown). Each pass
   * takes a batch or stops, so the loop ends within buffered / maxSamples + 1 passes.
   */
  private pump(force: boolean): void {
    while (this.inFlight < this.opts.maxInFlight && this.samples.length > 0) {
      const due = force || this.samples.length >= this.opts.maxSamples || this.deps.nowMs() >= this.dueAtMs;
      if (!due) break;
      this.commit(this.take());
    }
    if (this.samples.length === 0) {
      this.dueAtMs = Infinity;
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
    } else if (!this.timer && this.inFlight < this.opts.maxInFlight) {
      // Not due yet: wake when it is. (With every slot busy, the next commit's end pumps instead.)
      this.timer = setTimeout(
        () => {
          this.timer = null;
          this.pump(this.draining);
        },
        Math.max(0, this.dueAtMs - this.deps.nowMs()),
      );
    }
  }

  private take(): Batch<T> {
    const n = Math.min(this.opts.maxSamples, this.samples.length);
    if (n === this.samples.length) {
      const all = { samples: this.samples, owners: this.owners, seqs: this.seqs, arrivedMs: this.arrivedMs };
      this.samples = [];
      this.owners = [];
      this.seqs = [];
      this.arrivedMs = [];
      return all;
    }
    // What stays behind arrived later than what leaves, but it has waited too: keep dueAtMs.
    return { samples: this.samples.splice(0, n), owners: this.owners.splice(0, n), seqs: this.seqs.splice(0, n), arrivedMs: this.arrivedMs.splice(0, n) };
  }

  /**
   * Each frame is the relay's request: its server-side latency runs from arrival to the commit
   * that acks it (batch wait included), recorded as route `telemetry`, 200 or 503 when its batch
   * failed. So the relay has a per-second rate and an exact histogram like any web node.
   */
  private recordFrames(batch: Batch<T>, status: number): void {
    const now = this.deps.nowMs();
    for (const a of batch.arrivedMs) this.deps.metrics.request('telemetry', status, (now - a) * 1000);
  }

  private commit(batch: Batch<T>): void {
    this.inFlight++;
    const startMs = this.deps.nowMs();
    const { metrics } = this.deps;
    this.deps
      .write(batch.samples)
      .then(
        () => {
          metrics.observeUs('telemetry-commit', (this.deps.nowMs() - startMs) * 1000);
          metrics.count('telemetry-batches');
          metrics.count('telemetry-samples', batch.samples.length);
          this.recordFrames(batch, 200);
          for (let i = 0; i < batch.owners.length; i++) this.deps.committed(batch.owners[i], batch.seqs[i]);
        },
        (err: unknown) => {
          metrics.count('telemetry-batch-failed');
          metrics.count('telemetry-samples-failed', batch.samples.length);
          this.recordFrames(batch, 503);
          this.deps.failed(err, batch.samples.length);
        },
      )
      .finally(() => {
        for (const o of batch.owners) {
          const n = (this.perOwner.get(o) ?? 1) - 1;
          if (n <= 0) this.perOwner.delete(o);
          else this.perOwner.set(o, n);
        }
        this.inFlight--;
        this.pump(this.draining);
        if (this.inFlight === 0 && this.samples.length === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
  }

  /** Send everything now and resolve when every batch has committed (or failed), or at the deadline. */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    this.pump(true);
    if (this.inFlight === 0 && this.samples.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((r) => this.idleWaiters.push(r)),
      new Promise<void>((r) => (timer = setTimeout(r, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  /** Stop the timer; what is still buffered is dropped (never acked). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
