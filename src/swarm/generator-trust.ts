/**
 * GeneratorTrust: the one place that decides whether a measurement can be trusted.
 *
 * The rig (the swarm and the host it shares with the stack) has an error, and the question is never
 * "did the rig have any trouble" but "could that trouble have changed the answer". Latency is
 * measured from each send's *intended* time, so a late send, a stalled event loop or a stolen CPU
 * can only make latency look worse, never better, and by at most the rig's error bound:
 *
 *   latency error bound  b = scheduling lag max          (a send left at most this late)
 *                          + worker event-loop delay max  (a response was read at most this late)
 *                          + steal bound                  (the hypervisor froze the host this long)
 *                          + the stack's event-loop delays, when the host was saturated
 *                            (the co-located generator's CPU may be why they were late)
 *
 *   true p99 ∈ [measured p99 − b, measured p99]
 *   true error rate ∈ [measured − timeouts the rig could have caused, measured]
 *   true achieved/offered ∈ [measured, measured + late share + b ÷ window]
 *
 * The SLO is judged at both ends of those intervals (the measured end, and the end the rig could
 * have hidden). Agreement means the rig could not have flipped the verdict:
 *
 *   measured end   optimistic end   load delivered   →  judged as
 *   pass           pass             yes              →  pass-holds     trustworthy
 *   pass           pass             no               →  not-delivered  untrustworthy (too little load was sent)
 *   breach         breach           (any)            →  breach-holds   trustworthy (less load only makes it worse)
 *   breach         pass             (any)            →  could-flip     untrustworthy: measure again
 *
 * A breach while the host itself was saturated (CPU over 95%, nodes host-limited) could be partly
 * the co-located generator's doing: each tier's worst event-loop delay joins the bound, and a
 * breach with those delays unknown is could-flip. A worker that died leaves an incomplete window:
 * untrustworthy whatever the SLO says. With no SLO to protect (a bare `rmmscale swarm`), the numbers
 * themselves are the answer, so any generator or host trouble makes them untrustworthy
 * (`rig-bound`); a closed loop (`--rate max`) is saturated by design and is trusted as a lower bound
 * on what the target served (`closed-loop`).
 *
 * Worked example (automate-split3, bisect at 45,000 agents; docs/result.md): p99 2,712 ms against a
 * 1,000 ms SLO, 77% achieved, 1.3% of sends late, lag max 14 ms, event-loop max 6 ms, no steal:
 * b = 20 ms, and 2,712 − 20 = 2,692 ms is still over 1,000 ms. The breach holds; trustworthy.
 */

/** What the rig recorded in one window: the raw facts the bound is made of. */
export interface RigFacts {
  /** Sends the schedule intended in the window, sent or not. */
  intended: number;
  /** Sends that actually left. */
  attempted: number;
  /** Of those, how many left later than the late threshold. */
  late: number;
  /** Failures that were the client's own timeout (the rig can cause these by reading late). */
  timeouts: number;
  completed: number;
  failed: number;
  lagP99Us: number;
  lagMaxUs: number;
  /** The worst event-loop delay of any worker in the window: the longest a response waited to be read. */
  eventLoopDelayMaxUs: number;
  /** The request timeout; a timeout is the rig's only if its bound is a real share of this. */
  timeoutMs: number;
  measuredSec: number;
  hostCpus: number;
  hostCpuMean: number | null;
  hostStealMean: number | null;
  hostStealMax: number | null;
  workersDied: number;
  closedLoop: boolean;
}

/** The rig's trouble as the swarm assessed it (src/swarm/result.ts `assessRig`). */
export interface RigHealth {
  generatorBound: boolean;
  hostBound: boolean;
  reasons: string[];
}

/** The SLO and what the window measured against it. */
export interface SloMeasurement {
  sloP99Us: number;
  sloErrorRate: number;
  sloMinAchievedRatio: number;
  /** The p99 the SLO judges (the check-in's), from the intended send time. */
  p99Us: number;
  errorRate: number;
  /** Achieved ÷ attempted rate. */
  achievedRatio: number;
}

export interface TrustInput {
  rig: RigHealth;
  facts: RigFacts;
  /** null: no SLO (a bare swarm). */
  slo: SloMeasurement | null;
  /** Stack nodes the host, not their profile, limited for most of the window. */
  hostLimitedNodes?: string[];
  /**
   * The most a request could have waited on the stack's own event loops: per tier, the worst
   * node's event-loop delay p99 in the window, summed over the tiers (a request passes each tier
   * once). Counted into the bound only when the host was saturated or nodes were host-limited:
   * then the co-located generator's share of the CPU may be why those loops were late.
   */
  stackDelayUs?: number;
}

export type TrustBasis = 'clean' | 'pass-holds' | 'breach-holds' | 'could-flip' | 'not-delivered' | 'incomplete' | 'rig-bound' | 'closed-loop';

export interface RigErrorBound {
  lagP99Us: number;
  lagMaxUs: number;
  eventLoopDelayMaxUs: number;
  /** Most CPU time the hypervisor could have frozen a p99 request for. */
  stealBoundUs: number;
  /** The stack's event-loop delays along a request's path, when the host was saturated (else 0). */
  hostContentionBoundUs: number;
  /** b: the most the rig could have added to any one latency. */
  latencyBoundUs: number;
  lateFraction: number;
  /** Intended sends that never left (dropped, or still due when the window ended). */
  undeliveredFraction: number;
  /** Attempted ÷ intended. */
  deliveredRatio: number;
  hostCpuMean: number | null;
  hostStealMean: number | null;
  hostStealMax: number | null;
}

export interface SloBounds {
  /** [lowest the truth could be, measured]. */
  p99Us: [number, number];
  errorRate: [number, number];
  achievedRatio: [number, number];
}

export interface Trust {
  trustworthy: boolean;
  judgedAs: TrustBasis;
  /** One sentence with the numbers. */
  why: string;
  error: RigErrorBound;
  /** The SLO's inputs at both ends of the rig's error; null without an SLO. */
  bounds: SloBounds | null;
}

/** A pass needs at least this share of the intended sends to have left. */
export const MIN_DELIVERED_RATIO = 0.99;
/** Host CPU above this during a breach: the co-located generator may have starved the stack. */
export const HOST_CPU_SATURATED = 0.95;
/** Timeouts count as the rig's only when its latency bound is at least this share of the timeout. */
export const TIMEOUT_SHARE = 0.1;

const ms = (us: number): string => `${Math.round(us / 1000).toLocaleString('en-US')} ms`;
const pct = (x: number): string => `${(x * 100).toFixed(x < 0.1 ? 2 : 1)}%`;

export function rigErrorBound(f: RigFacts, p99Us: number, hostContentionBoundUs = 0): RigErrorBound {
  // Steal freezes whole vCPUs: in the worst second at most stealMax × CPUs seconds of one vCPU,
  // once for every second a p99 request was alive.
  const spanSec = Math.max(1, Math.ceil(p99Us / 1e6));
  const stealBoundUs = Math.min(p99Us, Math.round((f.hostStealMax ?? 0) * f.hostCpus * spanSec * 1e6));
  const latencyBoundUs = f.lagMaxUs + f.eventLoopDelayMaxUs + stealBoundUs + hostContentionBoundUs;
  const deliveredRatio = f.intended > 0 ? f.attempted / f.intended : 1;
  return {
    lagP99Us: f.lagP99Us,
    lagMaxUs: f.lagMaxUs,
    eventLoopDelayMaxUs: f.eventLoopDelayMaxUs,
    stealBoundUs,
    hostContentionBoundUs,
    latencyBoundUs,
    lateFraction: f.attempted > 0 ? f.late / f.attempted : 0,
    undeliveredFraction: Math.max(0, 1 - deliveredRatio),
    deliveredRatio,
    hostCpuMean: f.hostCpuMean,
    hostStealMean: f.hostStealMean,
    hostStealMax: f.hostStealMax,
  };
}

function sloBounds(s: SloMeasurement, f: RigFacts, e: RigErrorBound): SloBounds {
  const finished = f.completed + f.failed;
  const rigTimeouts = e.latencyBoundUs >= TIMEOUT_SHARE * f.timeoutMs * 1000 ? f.timeouts : 0;
  const errorLow = finished > 0 ? Math.max(0, f.failed - rigTimeouts) / finished : 0;
  // A send that left late may have finished after the window closed: its completion is missing
  // from the achieved rate through the rig's fault. Late sends, plus those the lag pushed over the edge.
  const pushedOut = e.lateFraction + Math.min(1, e.lagMaxUs / 1e6 / Math.max(1, f.measuredSec));
  return {
    p99Us: [Math.max(0, s.p99Us - e.latencyBoundUs), s.p99Us],
    errorRate: [Math.min(errorLow, s.errorRate), s.errorRate],
    achievedRatio: [s.achievedRatio, s.achievedRatio + pushedOut],
  };
}

/** The SLO's breaches at one end of the bounds. */
function breaches(s: SloMeasurement, p99Us: number, errorRate: number, achievedRatio: number): string[] {
  const out: string[] = [];
  if (p99Us > s.sloP99Us) out.push(`p99 ${ms(p99Us)} > ${ms(s.sloP99Us)}`);
  if (errorRate > s.sloErrorRate) out.push(`errors ${pct(errorRate)} > ${pct(s.sloErrorRate)}`);
  if (achievedRatio < s.sloMinAchievedRatio) out.push(`achieved ${pct(achievedRatio)} < ${pct(s.sloMinAchievedRatio)} of offered`);
  return out;
}

/** Decide trust for one window (or one bare swarm run). Pure; the table above is the whole policy. */
export function judgeTrust(i: TrustInput): Trust {
  const { facts: f, slo: s } = i;
  const hostLimited = i.hostLimitedNodes ?? [];
  const hostSaturated = hostLimited.length > 0 || (f.hostCpuMean !== null && f.hostCpuMean > HOST_CPU_SATURATED);
  const error = rigErrorBound(f, s?.p99Us ?? 0, hostSaturated ? (i.stackDelayUs ?? 0) : 0);
  const bounds = s ? sloBounds(s, f, error) : null;
  const troubled = i.rig.generatorBound || i.rig.hostBound || (i.hostLimitedNodes?.length ?? 0) > 0;
  const out = (trustworthy: boolean, judgedAs: TrustBasis, why: string): Trust => ({ trustworthy, judgedAs, why, error, bounds });

  if (f.workersDied > 0) return out(false, 'incomplete', `${f.workersDied} generator worker(s) died: the window is incomplete`);
  if (f.closedLoop) {
    return out(true, 'closed-loop', 'closed loop (--rate max): saturated by design; the achieved rate is a lower bound on what the target served, and the generator may have been the limit');
  }
  if (!s || !bounds) {
    return troubled ? out(false, 'rig-bound', `no SLO to hold against, and the rig had trouble: ${i.rig.reasons.join('; ')}`) : out(true, 'clean', 'the generator kept its schedule and the host kept up');
  }
  const measured = breaches(s, s.p99Us, s.errorRate, s.achievedRatio);
  const optimistic = breaches(s, bounds.p99Us[0], bounds.errorRate[0], bounds.achievedRatio[1]);
  const contention = error.hostContentionBoundUs > 0 ? `, the stack's event loops on a saturated host ${ms(error.hostContentionBoundUs)}` : '';
  const bound = `rig error: lag max ${ms(error.lagMaxUs)}, event loop max ${ms(error.eventLoopDelayMaxUs)}, steal ${ms(error.stealBoundUs)}${contention}`;
  if (measured.length === 0) {
    if (error.deliveredRatio < MIN_DELIVERED_RATIO) {
      return out(false, 'not-delivered', `the SLO held, but only ${pct(error.deliveredRatio)} of the intended sends left (at least ${pct(MIN_DELIVERED_RATIO)} needed): the stack was not offered the load`);
    }
    const how = troubled ? `, and the rig can only have made it look worse (${bound})` : '';
    return out(true, troubled ? 'pass-holds' : 'clean', `the SLO held with latency measured from the intended send time${how}; ${pct(error.deliveredRatio)} of intended sends left`);
  }
  if (hostSaturated && i.stackDelayUs === undefined) {
    const who = hostLimited.length > 0 ? `nodes ${hostLimited.join(', ')} were host-limited` : `host CPU averaged ${pct(f.hostCpuMean ?? 0)}`;
    return out(false, 'could-flip', `the SLO broke (${measured.join('; ')}) while ${who}, and the stack's event-loop delays are unknown: the generator shares that host, so the breach could be the rig's`);
  }
  if (optimistic.length > 0) {
    return out(true, troubled ? 'breach-holds' : 'clean', `the breach holds with the rig's error removed: ${optimistic.join('; ')} (${bound})`);
  }
  return out(false, 'could-flip', `the SLO broke (${measured.join('; ')}) but within the rig's error it could have held: p99 could be ${ms(bounds.p99Us[0])}, achieved ${pct(bounds.achievedRatio[1])} (${bound})`);
}
