/**
 * What happened to the tunnels, agent by agent: each drop, each reconnect, each return home, with
 * the relay (the swarm's target index) and the instant (epoch ms). First connects are not logged:
 * the log is about failures, and a fleet's opening costs it nothing.
 *
 *   drop  an open tunnel closed without the swarm asking (a relay died, a network path failed)
 *   cut   an open tunnel the swarm itself cut (a `disconnect` fault)
 *   back  a dropped (or cut) agent's tunnel is open again, on `relay`
 *   home  an agent that had failed over opened a tunnel to its home relay and left the sibling
 *
 * Workers ship their events with each interval; the coordinator keeps them here, so a run can say,
 * per fault, which agents it dropped and when each came back (reconnectAfter).
 */

export type TunnelEventKind = 'drop' | 'cut' | 'back' | 'home';

export interface TunnelEvent {
  kind: TunnelEventKind;
  agentId: string;
  /** The swarm's target index: the relay dropped from, or reconnected to. */
  relay: number;
  atMs: number;
}

/** Beyond this many events a log keeps counting but stops storing (a bound, never reached by a sane run). */
export const TUNNEL_LOG_MAX_EVENTS = 2_000_000;

export class TunnelLog {
  readonly events: TunnelEvent[] = [];
  /** Events not stored because the log was full. */
  overflow = 0;

  add(e: TunnelEvent): void {
    if (this.events.length >= TUNNEL_LOG_MAX_EVENTS) this.overflow++;
    else this.events.push(e);
  }

  addAll(es: readonly TunnelEvent[]): void {
    for (const e of es) this.add(e);
  }
}

/** One tunnel fault's reconnect, as result.json's `faults[i].reconnect` holds it. */
export interface FaultReconnect {
  /** Agents whose tunnel the fault dropped. */
  agents: number;
  /** Time from the fault until 50/90/99% of those agents were connected again, ms; null when fewer came back (or none dropped). */
  t50Ms: number | null;
  t90Ms: number | null;
  t99Ms: number | null;
  /** The most tunnel connects (reconnects and returns home, every agent) in one second from the fault, as the swarm saw them. */
  peakConnectsPerSec: number;
  /** Agents whose home is the fault's relay that came back to it from a sibling. */
  returnedHome: number;
}

export interface ReconnectQuery {
  /** The fault's instant and the end of its episode (the next fault on the same target, or the run's end), epoch ms. */
  fromMs: number;
  untilMs: number;
  /** The relay the fault hit (its target index); null for a `disconnect`, whose drops are the `cut` events. */
  relay: number | null;
}

/** Who the fault dropped, and where and when each came back: what the figures are computed from. */
export interface ReconnectDetail extends FaultReconnect {
  dropped: string[];
  /** agent → [ms after the fault, relay] of its first reconnect (or return home) after its drop. */
  back: Map<string, [number, number]>;
  returnedHomeIds: string[];
}

/** Nearest rank of `q` (0..1] among `n` sorted values, 0-based. */
function rank(q: number, n: number): number {
  return Math.max(0, Math.ceil(q * n) - 1);
}

/**
 * A fault's reconnect from the log. An agent counts as dropped by the fault when its tunnel on the
 * fault's relay dropped (a disconnect: was cut) in [fromMs, untilMs); its time is from the fault to
 * its next `back` or `home`. The percentiles rank every dropped agent, those that never came back
 * ranking last: t99Ms is null unless at least 99% came back.
 */
export function reconnectAfter(events: readonly TunnelEvent[], q: ReconnectQuery, homeOf: (agentId: string) => number): ReconnectDetail {
  const droppedAt = new Map<string, number>();
  const back = new Map<string, [number, number]>();
  const returned = new Set<string>();
  const perSecond = new Map<number, number>();
  for (const e of events) {
    if (e.atMs < q.fromMs || e.atMs >= q.untilMs) continue;
    if (e.kind === 'back' || e.kind === 'home') {
      const sec = Math.floor((e.atMs - q.fromMs) / 1000);
      perSecond.set(sec, (perSecond.get(sec) ?? 0) + 1);
      if (droppedAt.has(e.agentId) && !back.has(e.agentId)) back.set(e.agentId, [e.atMs - q.fromMs, e.relay]);
      if (e.kind === 'home' && q.relay !== null && e.relay === q.relay && homeOf(e.agentId) === q.relay) returned.add(e.agentId);
    } else if (q.relay === null ? e.kind === 'cut' : e.kind === 'drop' && e.relay === q.relay) {
      if (!droppedAt.has(e.agentId)) droppedAt.set(e.agentId, e.atMs);
    }
  }
  const times = [...back.values()].map(([ms]) => ms).sort((a, b) => a - b);
  const n = droppedAt.size;
  const at = (p: number): number | null => {
    if (n === 0) return null;
    const r = rank(p, n);
    return r < times.length ? Math.round(times[r]!) : null;
  };
  return {
    agents: n,
    t50Ms: at(0.5),
    t90Ms: at(0.9),
    t99Ms: at(0.99),
    peakConnectsPerSec: perSecond.size === 0 ? 0 : Math.max(...perSecond.values()),
    returnedHome: returned.size,
    dropped: [...droppedAt.keys()],
    back,
    returnedHomeIds: [...returned],
  };
}

/** The six figures result.json keeps, without the identities. */
export function reconnectFigures(d: ReconnectDetail): FaultReconnect {
  return { agents: d.agents, t50Ms: d.t50Ms, t90Ms: d.t90Ms, t99Ms: d.t99Ms, peakConnectsPerSec: d.peakConnectsPerSec, returnedHome: d.returnedHome };
}

/** A fault's reconnect curve, in steps of `stepMs` from the fault: its agents back by each step's end, and connects in each step. */
export interface ReconnectCurve {
  stepMs: number;
  /** Cumulative: the fault's agents connected again by the end of step i. */
  back: number[];
  /** Tunnel connects (every agent: reconnects and returns home) during step i. */
  connects: number[];
}

const CURVE_STEP_MS = 250;
const CURVE_MAX_STEPS = 480;

/**
 * The curve the report draws: from the fault until the last of its agents came back (or its last
 * connect) plus a second, at most CURVE_MAX_STEPS steps (2 min); past that the step widens.
 */
export function reconnectCurve(events: readonly TunnelEvent[], q: ReconnectQuery, d: ReconnectDetail): ReconnectCurve {
  let lastMs = 0;
  for (const [ms] of d.back.values()) lastMs = Math.max(lastMs, ms);
  const connectTimes: number[] = [];
  for (const e of events) {
    if ((e.kind === 'back' || e.kind === 'home') && e.atMs >= q.fromMs && e.atMs < q.untilMs) connectTimes.push(e.atMs - q.fromMs);
  }
  for (const ms of connectTimes) lastMs = Math.max(lastMs, ms);
  const spanMs = Math.min(lastMs + 1000, q.untilMs - q.fromMs);
  const stepMs = Math.max(CURVE_STEP_MS, Math.ceil(spanMs / CURVE_MAX_STEPS / CURVE_STEP_MS) * CURVE_STEP_MS);
  const steps = Math.max(1, Math.ceil(spanMs / stepMs));
  const back = new Array<number>(steps).fill(0);
  const connects = new Array<number>(steps).fill(0);
  for (const [ms] of d.back.values()) back[Math.min(steps - 1, Math.floor(ms / stepMs))]!++;
  for (const ms of connectTimes) if (ms < steps * stepMs) connects[Math.floor(ms / stepMs)]!++;
  for (let i = 1; i < steps; i++) back[i]! += back[i - 1]!;
  return { stepMs, back, connects };
}
