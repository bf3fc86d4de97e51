import { drawAt, drawKey } from '../core/random.js';
import { MinHeap } from './min-heap.js';
import { agentsAt, cyclesAt, firstCycleAtOrAfter, phaseFrom, phaseOffset, shareCount, timeAtCycles, WHOLE_FLEET, type FleetShare, type LoadProfile } from './schedule.js';

/**
 * The send schedule of one process's share of the fleet, advanced fire by fire: the planner the
 * engine's send loop runs, and the one planFleet (and so the tests) drain.
 *
 * Every agent g lives on the cycle axis F(t) (schedule.ts) and fires when F crosses its next mark:
 *
 *   periodic  mark k = k + u_g                       (u_g: the agent's low-discrepancy phase)
 *   poisson   mark k = mark k−1 + E(g, k)            (E exponential, mean 1, drawn by (g, k))
 *
 *   F(t) ──────/────────/────────/──   marks of one agent; its k-th fire is F⁻¹(mark k)
 *
 * Each fire is computed from the marks, never from the previous send, and every draw (Poisson gaps,
 * ± jitter, the message kind the engine picks) is `drawAt(key, g, k)`: a pure function of the seed,
 * the agent's global index and its fire number. So the schedule of one agent is the same in
 * whichever worker or shard holds it, and n shards of W workers fire exactly one process's sends.
 *
 * Per agent it keeps the mark, k and the next fire time in typed arrays, with a min-heap of slots by
 * next fire time: 8 + 8 + 8 + 4 bytes an agent, no objects, nothing allocated per fire. An agent
 * beyond the active count at its fire time (a ramp) skips that fire but keeps its marks.
 */

export interface FleetScheduleOptions {
  arrival: 'periodic' | 'poisson';
  /** Fires before this time are skipped. */
  fromMs: number;
  /** Fires at or after this time never happen (the profile's end, for the engine). */
  untilMs: number;
  /** Periodic: ± uniform jitter per fire (0: none). */
  jitterMs: number;
}

/** The draw keys of a seed: one per use, so the uses are independent. */
export function scheduleKeys(seed: string): { gap: number; jitter: number; kind: number } {
  return { gap: drawKey(`${seed}\0poisson`), jitter: drawKey(`${seed}\0jitter`), kind: drawKey(`${seed}\0kind`) };
}

export class FleetSchedule {
  private readonly nextAt: Float64Array;
  private readonly cycle: Float64Array;
  /** Periodic: the phase u. Poisson: the current mark on the cycle axis. */
  private readonly mark: Float64Array;
  private readonly heap: MinHeap;
  private readonly poisson: boolean;
  private readonly keys: ReturnType<typeof scheduleKeys>;

  constructor(
    private readonly profile: LoadProfile,
    seed: string,
    count: number,
    private readonly share: FleetShare,
    private readonly o: FleetScheduleOptions,
  ) {
    this.poisson = o.arrival === 'poisson';
    this.keys = scheduleKeys(seed);
    this.nextAt = new Float64Array(count);
    this.cycle = new Float64Array(count);
    this.mark = new Float64Array(count);
    this.heap = new MinHeap(count, this.nextAt);
    const offset = phaseOffset(seed);
    for (let s = 0; s < count; s++) {
      const g = this.global(s);
      if (this.poisson) {
        // Walk the agent's marks from t = 0 up to fromMs: the same marks whatever fromMs is.
        const fromCycles = cyclesAt(profile, o.fromMs);
        let k = 0;
        let m = this.gap(g, 0);
        while (m < fromCycles) m += this.gap(g, ++k);
        this.mark[s] = m;
        this.cycle[s] = k;
        this.schedule(s, timeAtCycles(profile, m));
      } else {
        const u = phaseFrom(offset, g);
        const k = firstCycleAtOrAfter(profile, u, o.fromMs);
        this.mark[s] = u;
        this.cycle[s] = k;
        this.schedule(s, timeAtCycles(profile, k + u));
      }
    }
  }

  /** The fleet-wide index of local slot s. */
  global(s: number): number {
    return this.share.first + s * this.share.stride;
  }

  /** The earliest pending fire time, or Infinity when no agent fires again before untilMs. */
  nextDueMs(): number {
    return this.heap.size > 0 ? this.nextAt[this.heap.peek()] : Infinity;
  }

  /** A uniform draw in (0, 1) for fire k of local slot s (the engine's message kind): the same in every process. */
  kindDraw(s: number, k: number): number {
    return drawAt(this.keys.kind, this.global(s), k);
  }

  /**
   * Every fire due at or before `horizonMs`, in time order (ties by slot): `onFire(slot, tMs, k)`
   * for each agent active at tMs (k: the agent's fire number), then its next fire goes on the heap.
   */
  fireDue(horizonMs: number, onFire: (slot: number, tMs: number, k: number) => void): void {
    const heap = this.heap;
    const p = this.profile;
    while (heap.size > 0) {
      const s = heap.peek();
      const t = this.nextAt[s];
      if (t > horizonMs) break;
      heap.pop();
      const k = this.cycle[s];
      if (this.global(s) < Math.floor(agentsAt(p, t) + 1e-9)) onFire(s, t, k);
      const next = ++this.cycle[s];
      if (this.poisson) this.schedule(s, timeAtCycles(p, (this.mark[s] += this.gap(this.global(s), next))));
      else this.schedule(s, timeAtCycles(p, next + this.mark[s]));
    }
  }

  /** E(g, k): exponential, mean 1 cycle. */
  private gap(g: number, k: number): number {
    return -Math.log(drawAt(this.keys.gap, g, k));
  }

  private schedule(s: number, gridMs: number): void {
    let t = gridMs;
    if (t === Infinity) return;
    if (!this.poisson && this.o.jitterMs > 0) {
      t += (drawAt(this.keys.jitter, this.global(s), this.cycle[s]) * 2 - 1) * this.o.jitterMs;
      if (t < 0) t = 0;
    }
    if (t < this.o.untilMs && t >= this.o.fromMs) {
      this.nextAt[s] = t;
      this.heap.push(s);
    } else if (t < this.o.fromMs) {
      // Jitter moved a fire before fromMs: skip it, keep the agent's later fires.
      this.nextAt[s] = t;
      this.fireSkipped(s);
    }
  }

  /** A fire before fromMs (jitter at the window's edge): go on to the agent's next one. */
  private fireSkipped(s: number): void {
    const p = this.profile;
    const next = ++this.cycle[s];
    if (this.poisson) this.schedule(s, timeAtCycles(p, (this.mark[s] += this.gap(this.global(s), next))));
    else this.schedule(s, timeAtCycles(p, next + this.mark[s]));
  }
}

/**
 * All fire times in [fromMs, toMs) of one share (default: the whole fleet) of `agents` agents, by
 * time then agent, with each fire's number k: a FleetSchedule drained to the end, so the schedule
 * the tests check is the one the engine runs.
 */
export function planFleet(
  p: LoadProfile,
  seed: string,
  agents: number,
  fromMs: number,
  toMs: number,
  share: FleetShare = WHOLE_FLEET,
  opts: { arrival?: 'periodic' | 'poisson'; jitterMs?: number } = {},
): Array<{ agent: number; atMs: number; k: number }> {
  const out: Array<{ agent: number; atMs: number; k: number }> = [];
  const schedule = new FleetSchedule(p, seed, shareCount(agents, share), share, { arrival: opts.arrival ?? 'periodic', fromMs, untilMs: toMs, jitterMs: opts.jitterMs ?? 0 });
  schedule.fireDue(Infinity, (s, atMs, k) => out.push({ agent: schedule.global(s), atMs, k }));
  out.sort((a, b) => a.atMs - b.atMs || a.agent - b.agent);
  return out;
}
