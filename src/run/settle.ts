import type { RunningStack } from '../stack/launcher.js';

/** Settling between windows: until no node has requests in flight or queued, this long at most. */
const SETTLE_MAX_MS = 60_000;

/**
 * Waits between windows until no node has requests queued (its own or its database's), so the next
 * window does not start on a stack still draining the last one. Gives up after SETTLE_MAX_MS (or on
 * abort) and says so in `warnings`. Nodes without our /healthz (an external proxy) are not asked.
 */
export async function settleStack(stack: RunningStack | null, signal: AbortSignal, warnings: string[]): Promise<void> {
  if (!stack) return;
  const deadline = Date.now() + SETTLE_MAX_MS;
  for (;;) {
    const busy = await Promise.all(
      stack.nodes.map(async (n) => {
        if (n.metricsUrl !== `${n.url}/metrics`) return false;
        try {
          const h = (await (await fetch(`${n.url}/healthz`, { signal: AbortSignal.timeout(2000) })).json()) as { queueDepth?: number | null; db?: { queueDepth: number } | null };
          return (h.queueDepth ?? 0) > 0 || (h.db?.queueDepth ?? 0) > 0;
        } catch {
          return false;
        }
      }),
    );
    if (!busy.some(Boolean)) return;
    if (Date.now() > deadline || signal.aborted) {
      warnings.push(`queues had not drained ${SETTLE_MAX_MS / 1000} s after a window: the next window started on a loaded stack`);
      return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
