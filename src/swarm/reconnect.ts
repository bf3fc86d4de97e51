import { InvalidArgumentError } from '../core/errors.js';
import type { Rng } from '../core/random.js';
import { parseDurationMs } from '../core/units.js';

/**
 * How a disconnected agent comes back. Storms after relay restarts are what operators fear most
 * (MeshAgent fleets returning together 15–20 minutes after a reboot; a Salt master unusable for an
 * hour without a random delay), so the default spreads reconnects with full jitter.
 *
 *   exponential:BASE:MAX  delay = U(0, min(MAX, BASE·2^attempt))   (full jitter, the default)
 *   fixed:DELAY           delay = DELAY
 *   linear:STEP:MAX       delay = min(MAX, STEP·(attempt + 1))
 */
export type ReconnectPolicy =
  | { kind: 'exponential'; baseMs: number; maxMs: number }
  | { kind: 'fixed'; delayMs: number }
  | { kind: 'linear'; stepMs: number; maxMs: number };

const ALLOWED = '"exponential:BASE:MAX" (e.g. exponential:1s:60s), "fixed:DELAY" (fixed:2s) or "linear:STEP:MAX" (linear:500ms:30s)';

export function parseReconnectPolicy(field: string, value: string): ReconnectPolicy {
  const [kind, a, b, ...rest] = value.split(':');
  try {
    if (kind === 'exponential' && a && b && rest.length === 0) return { kind, baseMs: parseDurationMs(field, a), maxMs: parseDurationMs(field, b) };
    if (kind === 'fixed' && a && !b) return { kind, delayMs: parseDurationMs(field, a) };
    if (kind === 'linear' && a && b && rest.length === 0) return { kind, stepMs: parseDurationMs(field, a), maxMs: parseDurationMs(field, b) };
  } catch {
    // fall through to the one message that names the whole form
  }
  throw new InvalidArgumentError(field, value, ALLOWED);
}

/** The wait before reconnect attempt `attempt` (0 = first try after a drop). */
export function reconnectDelayMs(p: ReconnectPolicy, attempt: number, rng: Rng): number {
  switch (p.kind) {
    case 'exponential':
      return rng.next() * Math.min(p.maxMs, p.baseMs * 2 ** Math.min(attempt, 30));
    case 'fixed':
      return p.delayMs;
    case 'linear':
      return Math.min(p.maxMs, p.stepMs * (attempt + 1));
  }
}

/**
 * After tunnels dropped: how fast the fleet came back. The coordinator fills it exactly from the
 * merged `ws-reconnect` histogram (each agent's drop → back) and the per-second connect counts.
 */
export interface ReconnectCurve {
  disconnects: number;
  reconnected: number;
  /** Time from the drop until 50/90/99% of the agents that came back were back, ms. */
  t50Ms: number | null;
  t90Ms: number | null;
  t99Ms: number | null;
  peakConnectsPerSec: number;
}

/**
 * How an agent that failed over to a sibling goes back to its home relay, once that is back. While
 * away, the agent probes home: probe k (0, 1, …) waits d·U(½, 1) with d = min(MAX, BASE·2^k) after
 * the tunnel opened on the sibling (or after the last probe failed). A probe is a second tunnel
 * opened to home; when it opens, the agent moves onto it and closes the sibling's (make before
 * break: the agent is never without a tunnel). The jitter spreads a relay's returning agents over
 * about half the probe interval, and the probes share the fleet's connect rate, so a restarted
 * relay sees a bounded trickle, not a second storm.
 *
 *   BASE:MAX   probe home by that backoff (default 5s:60s)
 *   off        stay on the sibling
 */
export interface ReturnHomePolicy {
  baseMs: number;
  maxMs: number;
}

export function parseReturnHome(field: string, value: string): ReturnHomePolicy | null {
  if (value === 'off') return null;
  const [a, b, ...rest] = value.split(':');
  try {
    if (a && b && rest.length === 0) {
      const p = { baseMs: parseDurationMs(field, a), maxMs: parseDurationMs(field, b) };
      if (p.baseMs > 0 && p.maxMs >= p.baseMs) return p;
    }
  } catch {
    // fall through to the one message that names the whole form
  }
  throw new InvalidArgumentError(field, value, '"BASE:MAX" (e.g. 5s:60s, BASE above 0 and at most MAX) or "off"');
}

/** The wait before home probe `probe` (0 = the first after failing over). */
export function homeProbeDelayMs(p: ReturnHomePolicy, probe: number, rng: Rng): number {
  const d = Math.min(p.maxMs, p.baseMs * 2 ** Math.min(probe, 30));
  return d * (0.5 + 0.5 * rng.next());
}
