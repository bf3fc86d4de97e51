import type { NodeMetricsApi, Store } from '../types.js';

/**
 * Which relay holds each agent's tunnel, written to the database behind the tunnels' backs.
 * Changes are coalesced per agent for `windowMs` (an agent that drops and comes back within the
 * window costs one write, the last), then written with at most `concurrency` calls at once. One
 * flush runs at a time, so this relay's writes for one agent land in the order they happened.
 *
 * Clearing is conditional: a relay clears an agent's presence only while the database still names
 * this relay, so a late clear cannot erase a sibling's newer claim after the agent failed over.
 * (Read-then-delete narrows that race to one round trip; the Store has no conditional delete.)
 *
 * A failed write is put back unless a newer change for the agent is already waiting, and the next
 * flush backs off (doubling from windowMs to 5 s), so a database outage costs one entry per agent
 * and a few calls a second, not a growing queue.
 */

export interface PresenceWriterOptions {
  relay: string;
  windowMs: number;
  concurrency: number;
}

const MAX_BACKOFF_MS = 5000;

export class PresenceWriter {
  private pending = new Map<string, { relay: string | null; atMs: number }>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private delayMs: number;
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly opts: PresenceWriterOptions,
    private readonly metrics: Pick<NodeMetricsApi, 'count' | 'observeUs'>,
    private readonly onError: (err: unknown) => void,
  ) {
    this.delayMs = opts.windowMs;
  }

  get waiting(): number {
    return this.pending.size;
  }

  set(agentId: string, relay: string | null, atMs: number): void {
    if (this.closed) return;
    this.pending.set(agentId, { relay, atMs });
    this.arm();
  }

  private arm(): void {
    if (this.timer || this.flushing || this.pending.size === 0 || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flushing = this.flush().finally(() => {
        this.flushing = null;
        this.arm();
      });
    }, this.delayMs);
  }

  private async flush(): Promise<void> {
    const batch = [...this.pending];
    this.pending.clear();
    const startMs = performance.now();
    let failures = 0;
    let next = 0;
    // `concurrency` lanes walk the batch; each lane ends when the batch does.
    const lane = async (): Promise<void> => {
      while (next < batch.length) {
        const [agentId, change] = batch[next++];
        try {
          if (change.relay !== null) await this.store.setPresence(agentId, change.relay, change.atMs);
          else if ((await this.store.getPresence(agentId)) === this.opts.relay) await this.store.setPresence(agentId, null, change.atMs);
          this.metrics.count('presence-writes');
        } catch (err) {
          failures++;
          if (!this.pending.has(agentId)) this.pending.set(agentId, change);
          if (failures === 1 && !this.closed) this.onError(err); // after close: the store is going away
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency, batch.length) }, lane));
    this.metrics.observeUs('presence-flush', (performance.now() - startMs) * 1000);
    if (failures > 0) {
      this.metrics.count('presence-failed', failures);
      this.delayMs = Math.min(MAX_BACKOFF_MS, this.delayMs * 2);
    } else this.delayMs = this.opts.windowMs;
  }

  /** Write what is waiting now (shutdown); resolves when done or at the deadline, whichever is first. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    let deadline: NodeJS.Timeout | undefined;
    const work = (async () => {
      if (this.flushing) await this.flushing;
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      if (this.pending.size > 0) await this.flush();
    })();
    await Promise.race([work, new Promise<void>((r) => (deadline = setTimeout(r, timeoutMs)))]);
    clearTimeout(deadline);
    this.close();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
