import type { LoadProfile } from './schedule.js';
import type { FleetShare } from './schedule.js';

/**
 * When each tunnel agent first connects: a pure function of the profile, the connect rate and the
 * agent's global index, so a fleet split over worker processes or shards opens every tunnel at the
 * same intended time one process would.
 *
 * Agent g becomes active at a(g), the earliest t with floor(agents(t)) > g (a ramp activates
 * agents in index order, so a(g) never decreases), and connects at
 *
 *   c(0) = a(0),   c(g) = max(a(g), c(g−1) + 1000 / connectRatePerSec)
 *
 * the start of a token bucket of one: never faster than the rate over any stretch, never before
 * the agent is active, and no storm at t = 0 on a ramp.
 *
 *   agents(t)  ╱‾‾‾‾      a(g): when the ramp reaches g + 1
 *   c(g)       ·· · · ·   spaced ≥ 1/rate; a steep ramp is paced, a slow one followed
 *
 * c(g) depends on every agent before g, so each process walks the whole fleet's sequence once,
 * keeping only its own stripe (first + s·stride): O(fleet) time, O(1) memory.
 */
/**
 * The engine opens tunnels this long before their planned time, the same shift in every process:
 * the workers get `go` this long before t = 0 (worker-pool.ts), so the fleet active at t = 0 is
 * open by then, and its first sends are not dropped for want of a tunnel.
 */
export const CONNECT_LEAD_MS = 400;

export class ConnectPlan {
  private g = -1;
  private cMs = -Infinity;
  private seg = 0;
  private readonly gapMs: number;
  private slot = -1;
  private slotMs = 0;

  constructor(
    private readonly profile: LoadProfile,
    connectRatePerSec: number,
    private readonly share: FleetShare = { first: 0, stride: 1 },
  ) {
    this.gapMs = connectRatePerSec > 0 ? 1000 / connectRatePerSec : 0;
  }

  /** The intended first connect of local slot `slot` (global first + slot·stride). Slots must be asked in non-decreasing order. */
  atMs(slot: number): number {
    if (slot < this.slot) throw new Error(`ConnectPlan: slot ${slot} asked after ${this.slot}`);
    if (slot === this.slot) return this.slotMs;
    const target = this.share.first + slot * this.share.stride;
    while (this.g < target) this.cMs = Math.max(this.activeFromMs(++this.g), this.cMs + this.gapMs);
    this.slot = slot;
    this.slotMs = this.cMs;
    return this.cMs;
  }

  /** a(g): the earliest t with floor(agents(t) + 1e-9) > g; Infinity if never. g only grows, so the segment cursor only moves on. */
  private activeFromMs(g: number): number {
    const pts = this.profile.points;
    const need = g + 1 - 1e-9;
    if (pts[0].agents >= need) return 0;
    for (; this.seg < pts.length - 1; this.seg++) {
      const a = pts[this.seg];
      const b = pts[this.seg + 1];
      if (a.agents >= need) return a.atMs;
      if (b.agents >= need) return a.atMs + ((need - a.agents) / (b.agents - a.agents)) * (b.atMs - a.atMs);
    }
    return Infinity;
  }
}

/** Every agent's first connect, whole fleet (tests and the shards' union). */
export function planConnects(profile: LoadProfile, connectRatePerSec: number, agents: number, share: FleetShare = { first: 0, stride: 1 }): Array<{ agent: number; atMs: number }> {
  const plan = new ConnectPlan(profile, connectRatePerSec, share);
  const out: Array<{ agent: number; atMs: number }> = [];
  for (let s = 0; share.first + s * share.stride < agents; s++) out.push({ agent: share.first + s * share.stride, atMs: plan.atMs(s) });
  return out;
}

/**
 * First connects that keep the connect rate when the fleet starts late. A process ready after its
 * t = 0 (a shard ready after `--start-at`, 2-core hosts forking many workers) finds every tunnel
 * whose planned time has passed due at once; opened in one tick they were one storm (measured: 40,000
 * tunnels in 4 shards started ~2 s late took up to 15 s to open, the handshake timeout; 100,000
 * left 37% down in exponential backoff). Here local slot k opens at
 *
 *   e(k) = max(plan(k), e(k−1) + gapMs),   e(−1) = fromMs − gapMs
 *
 * with fromMs when the fleet started and gapMs this process's share of the fleet's rate (a worker
 * of W in a shard of n: 1000 · W · n / rate). On time it is the plan exactly (the plan already
 * spaces a worker's slots by ≥ gapMs); late, the backlog opens at the process's rate, the plan's
 * shape shifted by the lateness, never faster.
 */
export class PacedFirstConnects {
  /** The slot last asked, and e(slot − 1): a slot's own time is asked of the plan each time, until the next is asked. */
  private slot = 0;
  private prevMs: number;

  constructor(
    private readonly plan: { atMs(slot: number): number },
    fromMs: number,
    private readonly gapMs: number,
  ) {
    this.prevMs = fromMs - gapMs;
  }

  /** Local slot `slot`'s first connect; slots asked in non-decreasing order. */
  atMs(slot: number): number {
    if (slot < this.slot) throw new Error(`PacedFirstConnects: slot ${slot} asked after ${this.slot}`);
    for (; this.slot < slot; this.slot++) this.prevMs = Math.max(this.plan.atMs(this.slot), this.prevMs + this.gapMs);
    return Math.max(this.plan.atMs(slot), this.prevMs + this.gapMs);
  }
}
