import { RmmscaleError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { readMapped } from '../metrics/mapped-scrape.js';
import type { RunningStack } from '../stack/launcher.js';
import type { CollectedNode } from './collector.js';

/** Settling between windows: until no node has requests in flight or queued, this long at most. */
export const SETTLE_MAX_MS = 60_000;

/**
 * A ceiling search stops when the stack has not drained after a window: every later window would
 * measure the backlog of that one, not its own load. Seen once here (automate-split3 on a host at
 * load 5.5): after a step at 54,000 agents the web tier's queues grew for good, the next windows
 * completed nothing at 40,500, 38,300 and 37,200 agents, and the search "found" 36,000. A stack
 * that does not recover from an overload is the finding; no ceiling is claimed (exit 3).
 */
export class StackNotRecoveredError extends RmmscaleError {
  constructor(label: string) {
    super(
      'ERR_STACK_NOT_RECOVERED',
      `the stack did not recover after ${label}: its queues had not drained ${SETTLE_MAX_MS / 1000} s later, so the next window would measure that backlog, not its own load`,
      EXIT.sutFailed,
    );
  }
}

/**
 * Waits between windows until no node has requests queued (its own or its database's), so the next
 * window does not start on a stack still draining the last one. Gives up after SETTLE_MAX_MS (or on
 * abort) and says so in `warnings`. Nodes without our /healthz (an external proxy) are not asked.
 * Returns whether the stack drained (true when there is no stack to ask). settleMappedNodes does
 * the same for an external stack's listed nodes, from their mapped queue gauges.
 */
export async function settleStack(stack: Pick<RunningStack, 'nodes'> | null, signal: AbortSignal, warnings: string[], maxMs = SETTLE_MAX_MS): Promise<boolean> {
  if (!stack) return true;
  return waitUntilDrained(
    stack.nodes.map((n) => async () => {
      if (n.metricsUrl !== `${n.url}/metrics`) return false;
      const h = (await (await fetch(`${n.url}/healthz`, { signal: AbortSignal.timeout(2000) })).json()) as { queueDepth?: number | null; db?: { queueDepth: number } | null };
      return (h.queueDepth ?? 0) > 0 || (h.db?.queueDepth ?? 0) > 0;
    }),
    signal,
    warnings,
    maxMs,
  );
}

/**
 * The same wait for an external stack (`stack.nodes`): until no node whose mapping has a
 * `queueDepth` reports requests waiting in its /metrics. Nodes without one are not asked.
 */
export async function settleMappedNodes(nodes: readonly CollectedNode[], signal: AbortSignal, warnings: string[], maxMs = SETTLE_MAX_MS): Promise<boolean> {
  const asked = nodes.filter((n) => n.mapped?.signals.queueDepth);
  return waitUntilDrained(
    asked.map((n) => async () => {
      const r = await fetch(n.metricsUrl, { signal: AbortSignal.timeout(2000) });
      if (r.status !== 200) return false;
      return (readMapped(await r.text(), n.mapped!.signals, Date.now()).queueDepth ?? 0) > 0;
    }),
    signal,
    warnings,
    maxMs,
  );
}

/** Poll every 250 ms until no probe says "queued" (a probe that fails counts as drained). */
async function waitUntilDrained(probes: Array<() => Promise<boolean>>, signal: AbortSignal, warnings: string[], maxMs: number): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  for (;;) {
    const busy = await Promise.all(probes.map((p) => p().catch(() => false)));
    if (!busy.some(Boolean)) return true;
    if (Date.now() > deadline || signal.aborted) {
      warnings.push(`queues had not drained ${maxMs / 1000} s after a window: the next window started on a loaded stack`);
      return false;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
