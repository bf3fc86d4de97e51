import type { HostCpuSample } from '../core/host.js';
import { HOST_STEAL_LIMIT, HOST_STEAL_WARN } from '../swarm/result.js';

/**
 * What a ceiling search does with a window it could not trust. A generator that fell behind on
 * its own (a hot worker, a full pool) will fall behind again, so it gets one more measurement. A
 * window the hypervisor stole from is the neighbours' doing and passes when they go quiet: it gets
 * up to two more, each after waiting for the host to settle.
 */
export const REMEASURE_MAX = 1;
export const REMEASURE_MAX_STOLEN = 2;

/** Wait at most this long for the host to settle before measuring again (then measure anyway). */
export const QUIET_WAIT_MAX_MS = 30_000;
/** The host is quiet after this many consecutive one-second samples with steal at or under… */
export const QUIET_SAMPLES = 3;
/** …this share of the machine's time: the verdict's warning level, well under its limit. */
export const QUIET_STEAL = HOST_STEAL_WARN;

export interface RemeasureDecision {
  again: boolean;
  /** Wait for the host to settle first: the window lost time to steal. */
  waitForQuiet: boolean;
}

/**
 * After `attempts` re-measurements at this load, with the last window untrustworthy: measure again?
 * `hostStealMean` and `hostStealMax` are the last window's mean and worst second (null where the
 * host does not report steal). A burst (a second over the verdict's 5%) is waited out like a mean
 * over 1%: late sends in a window that averaged 0.7% can all be one stolen second's.
 */
export function remeasureDecision(attempts: number, hostStealMean: number | null, hostStealMax: number | null = null): RemeasureDecision {
  const stolen = hostStealMean !== null && hostStealMean > HOST_STEAL_LIMIT;
  const max = stolen ? REMEASURE_MAX_STOLEN : REMEASURE_MAX;
  const noisy = (hostStealMean !== null && hostStealMean > QUIET_STEAL) || (hostStealMax !== null && hostStealMax > HOST_STEAL_LIMIT);
  return { again: attempts < max, waitForQuiet: noisy };
}

export interface QuietWaitResult {
  settled: boolean;
  waitedMs: number;
  /** Steal in the last one-second sample (null: the host does not report it). */
  lastSteal: number | null;
}

/**
 * Sample the host once a second until QUIET_SAMPLES consecutive samples show steal at or under
 * QUIET_STEAL, for at most `maxMs`. A host that cannot be sampled counts as settled: there is
 * nothing to wait for. Bounded in time; an aborted signal ends it at once (not settled).
 */
export async function waitForQuietHost(o: {
  sample: () => HostCpuSample | null;
  sleep: (ms: number) => Promise<void>;
  maxMs?: number;
  signal?: AbortSignal;
}): Promise<QuietWaitResult> {
  const maxMs = o.maxMs ?? QUIET_WAIT_MAX_MS;
  let waitedMs = 0;
  let quiet = 0;
  let lastSteal: number | null = null;
  o.sample(); // start the interval now
  while (waitedMs < maxMs) {
    if (o.signal?.aborted) return { settled: false, waitedMs, lastSteal };
    await o.sleep(1000);
    waitedMs += 1000;
    const s = o.sample();
    if (s === null) return { settled: lastSteal === null, waitedMs, lastSteal };
    lastSteal = s.steal;
    quiet = s.steal <= QUIET_STEAL ? quiet + 1 : 0;
    if (quiet >= QUIET_SAMPLES) return { settled: true, waitedMs, lastSteal };
  }
  return { settled: false, waitedMs, lastSteal };
}
