import { round } from '../core/units.js';
import { promSamples } from '../metrics/prometheus.js';
import { nodeMetricsText } from './node-metrics-text.js';
import type { FaultAction } from '../scenario/types.js';

/**
 * The DBAgent takeover after a fault on an `app` node (issue 13): which app node leads after it,
 * under which lease term, and how long after the fault it took the lease.
 *
 * The time is not the run's scrape (a second apart at best) but what the new leader recorded: each
 * app node publishes, among its role gauges, `dbagent:led-since-ms` (epoch ms when its acquire of
 * the lease answered), `dbagent:term` and `dbagent:lease-ttl-ms` (roles/app.ts). The nodes are
 * processes the run started on its own host, so their clock is the run's clock: the takeover is
 * that timestamp minus the fault's own (taken just before the signal or the restart).
 *
 * Before an app fault acts, the run reads every app node once: which one leads (and so whether the
 * fault hits the leader), and which stand by. After it, it polls them until one leads under a newer
 * term, or until the lease can no longer be expected to move; what it saw is then judged here
 * (takeoverOf), a pure function of those readings.
 */

/** One app node's DBAgent as its /metrics role gauges show it; `reachable` false when it did not answer. */
export interface LeaseReading {
  node: string;
  reachable: boolean;
  leader: boolean;
  standby: boolean;
  /** Its lease term (0: it leads in none). */
  term: number;
  /** When it took the lease (epoch ms, its host clock); null when it does not lead. */
  ledSinceMs: number | null;
  /** When its lease lapses unless it renews it (epoch ms), as of its last renewal; null when it does not lead. */
  leaseUntilMs: number | null;
  /** The lease TTL it uses; null when the node does not say. */
  leaseTtlMs: number | null;
}

/** A fault's takeover in result.json (fault entries on an `app` node; null for every other fault). */
export interface FaultTakeover {
  /** The app node leading after the fault (under a newer term than before it); null when none took the lease. */
  node: string | null;
  /** From the fault to the moment that node took the lease (its own timestamp); null when none did. */
  takeoverMs: number | null;
  /** The lease's TTL (the old leader's, else the new one's); null when no app node said. */
  leaseTtlMs: number | null;
  /**
   * From the old leader's lease lapsing (its last renewal + TTL, read just before the fault) to the
   * takeover: the standby's own delay (it tries 1 ms after the lapse) plus the acquire; never below 0
   * unless two leases overlapped. Null without a takeover or an old lease time.
   */
  afterLapseMs: number | null;
  /** takeoverMs ≤ leaseTtlMs; false when a takeover was due and none came within the TTL; null when none was due. */
  withinTtl: boolean | null;
  /** The new leader's lease term (its fencing token); null when none took the lease. */
  term: number | null;
  /** The old leader's term, when one led. */
  previousTerm: number | null;
  /** Why there is no takeover time (no standby, the fault hit a standby…); null when there is one. */
  reason: string | null;
}

/** Read one app node's lease gauges from its /metrics text. */
export function leaseReadingOf(node: string, metricsText: string): LeaseReading {
  const g = new Map<string, number>();
  for (const s of promSamples(metricsText)) if (s.name === 'rmmscale_role_gauge' && s.labels.gauge?.startsWith('dbagent:')) g.set(s.labels.gauge, s.value);
  const leader = g.get('dbagent:leader') === 1;
  const since = g.get('dbagent:led-since-ms');
  const until = g.get('dbagent:lease-until-ms');
  return {
    node,
    reachable: true,
    leader,
    standby: g.get('dbagent:standby') === 1,
    term: leader ? (g.get('dbagent:term') ?? 0) : 0,
    ledSinceMs: leader && since !== undefined && since > 0 ? since : null,
    leaseUntilMs: leader && until !== undefined && until > 0 ? until : null,
    leaseTtlMs: g.get('dbagent:lease-ttl-ms') ?? null,
  };
}

export function unreachable(node: string): LeaseReading {
  return { node, reachable: false, leader: false, standby: false, term: 0, ledSinceMs: null, leaseUntilMs: null, leaseTtlMs: null };
}

/** The app nodes' lease, read now. */
export interface LeaseProbe {
  /** The app nodes, by name. */
  readonly nodes: readonly string[];
  read(): Promise<LeaseReading[]>;
}

/** What a fault on an app node is judged from. */
export interface TakeoverInput {
  action: FaultAction;
  node: string;
  /** stop: how long the node was paused. */
  forMs: number | null;
  /** The fault's own time (epoch ms). */
  firedAtMs: number;
  /** Every app node, read just before the fault acted. */
  before: readonly LeaseReading[];
  /** The first reading after it that shows a newer term leading, else the last one taken. */
  after: readonly LeaseReading[] | null;
  /** When `after` was read (epoch ms): how long the run watched. */
  afterAtMs: number | null;
}

const fmtSec = (ms: number): string => `${round(ms / 1000, 1)} s`;

/** The newer leader in a reading: a leading node whose term is above `term`, the lowest such term first. */
export function newLeader(readings: readonly LeaseReading[], term: number): LeaseReading | null {
  const newer = readings.filter((r) => r.leader && r.term > term).sort((a, b) => a.term - b.term);
  return newer[0] ?? null;
}

/**
 * Whether the fault should move the lease: it kills, restarts, or pauses past the TTL, the leader.
 * (A restart moves it to a standby or back to the restarted node; a kill needs a standby.)
 */
function takeoverDue(input: TakeoverInput, ttlMs: number | null, standbys: number): boolean {
  if (input.action === 'restart') return true;
  if (standbys === 0) return false;
  if (input.action === 'kill') return true;
  return input.action === 'stop' && ttlMs !== null && (input.forMs ?? 0) > ttlMs;
}

/** The takeover after a fault on an app node, from the readings before and after it. */
export function takeoverOf(input: TakeoverInput): FaultTakeover {
  const old = input.before.find((r) => r.leader) ?? null;
  const ttlMs = old?.leaseTtlMs ?? input.before.find((r) => r.leaseTtlMs !== null)?.leaseTtlMs ?? input.after?.find((r) => r.leaseTtlMs !== null)?.leaseTtlMs ?? null;
  const none = (reason: string, withinTtl: boolean | null = null): FaultTakeover => ({ node: null, takeoverMs: null, leaseTtlMs: ttlMs, afterLapseMs: null, withinTtl, term: null, previousTerm: old?.term ?? null, reason });
  if (input.before.length === 0 || input.before.every((r) => !r.reachable)) return none('no app node answered before the fault');
  if (!old) return none('no app node led when the fault acted');
  if (old.node !== input.node) return none(`${input.node} was not the leader (${old.node} led, term ${old.term}): the lease had no reason to move`);
  const standbys = input.before.filter((r) => r.node !== input.node && r.reachable && r.standby).length;
  const due = takeoverDue(input, ttlMs, standbys);
  const next = input.after ? newLeader(input.after, old.term) : null;
  if (next && next.ledSinceMs !== null) {
    const takeoverMs = Math.max(0, next.ledSinceMs - input.firedAtMs);
    const afterLapseMs = old.leaseUntilMs === null ? null : next.ledSinceMs - old.leaseUntilMs;
    return { node: next.node, takeoverMs, leaseTtlMs: ttlMs, afterLapseMs, withinTtl: ttlMs === null ? null : takeoverMs <= ttlMs, term: next.term, previousTerm: old.term, reason: null };
  }
  if (input.action === 'kill' && standbys === 0) return none(`no standby app node: nothing could take the lease from ${old.node}`);
  const watchedMs = input.afterAtMs === null ? 0 : input.afterAtMs - input.firedAtMs;
  if (keptLease(input, old.term)) return none(`${old.node} kept the lease (term ${old.term}) through its ${fmtSec(input.forMs ?? 0)} pause${standbys === 0 ? ': no standby waited' : ''}`, due ? false : null);
  return none(`no app node took the lease in the ${fmtSec(watchedMs)} the run watched after the fault`, due && ttlMs !== null && watchedMs >= ttlMs ? false : null);
}

/** After a pause: the paused leader leads again under its old term, read at least KEPT_AFTER_RESUME_MS after it resumed. */
function keptLease(input: Pick<TakeoverInput, 'node' | 'forMs' | 'firedAtMs' | 'after' | 'afterAtMs' | 'action'>, oldTerm: number): boolean {
  if (input.action !== 'stop' || !input.after || input.afterAtMs === null) return false;
  if (input.afterAtMs < input.firedAtMs + (input.forMs ?? 0) + KEPT_AFTER_RESUME_MS) return false;
  const r = input.after.find((x) => x.node === input.node);
  return !!r && r.leader && r.term === oldTerm;
}

/**
 * A paused leader that wakes still shows its term until its first renewal answers, and a standby
 * may take a lease that lapsed just before the wake: a second after the resume, it is settled.
 */
export const KEPT_AFTER_RESUME_MS = 1000;

/**
 * Whether the readings so far settle the takeover, so the run can stop watching: a newer term
 * leads (with its timestamp), or a paused leader kept its lease.
 */
export function takeoverSettled(input: TakeoverInput): boolean {
  const old = input.before.find((r) => r.leader);
  if (!old || old.node !== input.node) return true;
  if (input.action === 'kill' && !input.before.some((r) => r.node !== input.node && r.reachable && r.standby)) return true;
  const next = input.after ? newLeader(input.after, old.term) : null;
  return (next !== null && next.ledSinceMs !== null) || keptLease(input, old.term);
}

/** How long after a fault the run keeps watching for a takeover: the pause, two TTLs and a margin. */
export function watchLimitMs(forMs: number | null, ttlMs: number | null): number {
  return (forMs ?? 0) + 2 * (ttlMs ?? 15_000) + 5000;
}

/** A probe of a running stack's app nodes: each one's /metrics (with the admin key, which loopback does not need but a remote node would). */
export function stackLeaseProbe(nodes: ReadonlyArray<{ name: string; role: string; metricsUrl: string }>, adminKey: string, timeoutMs = 500): LeaseProbe | null {
  const apps = nodes.filter((n) => n.role === 'app');
  if (apps.length === 0) return null;
  return {
    nodes: apps.map((n) => n.name),
    read: () =>
      Promise.all(
        apps.map(async (n) => {
          const text = await nodeMetricsText(n.metricsUrl, adminKey, timeoutMs);
          return text === null ? unreachable(n.name) : leaseReadingOf(n.name, text);
        }),
      ),
  };
}
