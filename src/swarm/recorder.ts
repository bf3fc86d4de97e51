import { createLatencyHistogram, encodeHistogramWire, recordUs, type LatencyHistogram } from '../metrics/histogram.js';
import { newOpAccumulator, type OpAccumulator, type OpInterval } from '../metrics/op-stats.js';

/**
 * The swarm's measurement sink inside one worker process. The send path only touches counters and
 * histograms here; a timer elsewhere calls `takeInterval()` once a second and ships the result to
 * the coordinator, which merges intervals from every worker exactly.
 *
 * Two latencies per operation:
 * - `corrected`: done − intended send time. This is the number users see. A request that went out
 *   late because the generator or a cap held it still counts its whole wait (coordinated omission
 *   corrected by construction, not by back-filling).
 * - `service`: done − actual send time, the uncorrected figure most tools print, kept beside it.
 */

/** What became of sends, in an interval, a window or a run: the same four counts everywhere. */
export interface SendOutcomes {
  completed: number;
  failed: number;
  /** Sent, but later than the late threshold after the intended time. */
  late: number;
  /** Not sent at all: a concurrency cap or a closed tunnel. Never silently queued. */
  dropped: number;
}

export interface RecorderInterval extends SendOutcomes {
  fromMs: number;
  toMs: number;
  ops: Record<string, OpInterval>;
  /** Scheduled sends whose intended time fell in this interval. */
  target: number;
  attempted: number;
  errors: Record<string, number>;
  /** Scheduling lag (actual − intended dispatch), µs. */
  lag: string;
  gauges: Record<string, number>;
}

export class SwarmRecorder {
  private ops = new Map<string, OpAccumulator>();
  private lag: LatencyHistogram = createLatencyHistogram();
  private errors = new Map<string, number>();
  private gauges = new Map<string, number>();
  private fromMs: number;
  target = 0;
  attempted = 0;
  completed = 0;
  failed = 0;
  late = 0;
  dropped = 0;
  readonly lateThresholdMs: number;

  constructor(nowMs: number, lateThresholdMs: number) {
    this.fromMs = nowMs;
    this.lateThresholdMs = lateThresholdMs;
  }

  private op(name: string): OpAccumulator {
    let h = this.ops.get(name);
    if (!h) {
      h = newOpAccumulator();
      this.ops.set(name, h);
    }
    return h;
  }

  /** A send is due (counted in `target` whether or not it can go out). */
  scheduled(): void {
    this.target++;
  }

  /** A send actually leaves now; `lagMs` = now − intended (negative: left early, by the look-ahead). */
  sent(lagMs: number): void {
    this.attempted++;
    recordUs(this.lag, (lagMs < 0 ? -lagMs : lagMs) * 1000);
    if (lagMs > this.lateThresholdMs) this.late++;
  }

  /** A due send that could not go out. */
  drop(reason: string): void {
    this.dropped++;
    this.error(`dropped:${reason}`);
  }

  /**
   * A request finished. Times in ms from the same clock (performance.now() based). A send that
   * left before its intended time (the scheduler's look-ahead) is measured from when it left:
   * the corrected latency is never shorter than the service time.
   */
  done(op: string, intendedMs: number, sentMs: number, doneMs: number, ok: boolean, errorCode?: string): void {
    const h = this.op(op);
    recordUs(h.corrected, (doneMs - (intendedMs < sentMs ? intendedMs : sentMs)) * 1000);
    recordUs(h.service, (doneMs - sentMs) * 1000);
    if (ok) {
      h.completed++;
      this.completed++;
    } else {
      h.failed++;
      this.failed++;
      this.error(errorCode ?? 'error');
    }
  }

  /** Record a latency that is not a request/response pair (ws-connect, reconnect). */
  observe(op: string, latencyMs: number, ok = true): void {
    const h = this.op(op);
    recordUs(h.corrected, latencyMs * 1000);
    recordUs(h.service, latencyMs * 1000);
    if (ok) h.completed++;
    else h.failed++;
  }

  error(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  gauge(name: string, value: number): void {
    this.gauges.set(name, value);
  }

  /** Close the current interval and start the next. Histograms travel in the uncompressed V2 form (encodeHistogramWire). */
  takeInterval(nowMs: number): RecorderInterval {
    const ops: Record<string, OpInterval> = {};
    for (const [name, h] of this.ops) {
      if (h.completed + h.failed === 0 && h.corrected.totalCount === 0) continue;
      ops[name] = { histograms: { corrected: encodeHistogramWire(h.corrected), service: encodeHistogramWire(h.service) }, completed: h.completed, failed: h.failed };
      h.corrected.reset();
      h.service.reset();
      h.completed = 0;
      h.failed = 0;
    }
    const out: RecorderInterval = {
      fromMs: this.fromMs,
      toMs: nowMs,
      ops,
      target: this.target,
      attempted: this.attempted,
      completed: this.completed,
      failed: this.failed,
      late: this.late,
      dropped: this.dropped,
      errors: Object.fromEntries(this.errors),
      // An idle interval ships no histogram at all ('' decodes as empty).
      lag: this.lag.totalCount > 0 ? encodeHistogramWire(this.lag) : '',
      gauges: Object.fromEntries(this.gauges),
    };
    this.lag.reset();
    this.errors.clear();
    this.target = this.attempted = this.completed = this.failed = this.late = this.dropped = 0;
    this.fromMs = nowMs;
    return out;
  }
}
