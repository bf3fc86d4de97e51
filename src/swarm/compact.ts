import { setFlagsFromString } from 'node:v8';

/**
 * One compacting full collection, for a tunnel worker when a wave of connects has settled (the
 * opening phase, or a mass reconnect).
 *
 * Opening a tunnel leaves a few KB of handshake garbage (request, response, parser state). At
 * thousands of opens a second much of it outlives the small young generation tunnel workers run
 * with, so it is promoted, and the old generation ends up as pages that each hold a little of the
 * fleet's live state among a lot of dead handshakes. A plain full GC frees the dead objects but
 * keeps the pages, because each still holds something live: at 11,000 tunnels a worker kept
 * 70–100 MB of heap pages for ~35 MB of live objects. V8's memory reducer would compact them, but
 * only after the process has been quiet for a while, and every GC in between postpones it.
 *
 * So this runs one full GC with V8's `--compact-on-every-full-gc` switched on for that GC only:
 * every page is evacuated, live objects are packed together and the emptied pages go back to the
 * OS. Only that one GC pays for the compaction; the flag is off again before any other runs.
 * Tunnel workers run with V8's memory reducer off, since this does its work at the moment the
 * garbage is known to be there.
 *
 * Returns false, doing nothing, when the process was not started with --expose-gc.
 */
export function compactHeap(): boolean {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return false;
  setFlagsFromString('--compact-on-every-full-gc');
  try {
    gc();
  } finally {
    setFlagsFromString('--no-compact-on-every-full-gc');
  }
  return true;
}

/**
 * Whether a wave that settled at `nowMs` (from t = 0) may be compacted now: only before the
 * measured window starts. A compaction stalls a worker for 100–200 ms at 10,000 tunnels, and inside
 * the window that stall would be measured as the stack's latency; a wave that settles there (the
 * end of a ramp, a mass reconnect) is left as it is, the swarm carrying the extra heap instead.
 */
export function mayCompactAt(nowMs: number, warmupMs: number): boolean {
  return nowMs < warmupMs;
}
