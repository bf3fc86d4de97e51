/**
 * The closed workload (`--rate max`, config.ts `Workload`): each of a worker's `connections` loops
 * sends the next check-in the moment its previous one ends, agents taking turns. There is no
 * schedule: a request is intended when it leaves, so its latency is service time. Sending starts
 * at t = 0 of the profile and stops at its end; the end comes even if every connection hangs.
 */

export interface ClosedLoopPorts {
  /** Requests this worker keeps in flight: its share of the closed workload's connections. */
  connections: number;
  /** Agents this worker holds; they take turns. */
  agentCount: number;
  /** The profile's end, ms from its t = 0. */
  endMs: number;
  /** Milliseconds since the profile's t = 0 (negative before the start). */
  now(): number;
  /** Send agent `slot`'s next check-in, intended at `atMs`; call `next` once it has ended, however. */
  send(slot: number, atMs: number, next: () => void): void;
  /** The profile is over (called once). */
  end(): void;
  setTimer(fn: () => void, ms: number): NodeJS.Timeout;
  clearTimer(t: NodeJS.Timeout): void;
}

export class ClosedLoop {
  private turn = 0;
  private stopped = false;
  private startTimer: NodeJS.Timeout | null = null;
  private endTimer: NodeJS.Timeout | null = null;

  constructor(private readonly p: ClosedLoopPorts) {}

  start(): void {
    const wait = -this.p.now();
    if (wait > 0) this.startTimer = this.p.setTimer(this.begin, wait);
    else this.begin();
    this.endTimer = this.p.setTimer(this.ended, this.p.endMs - this.p.now());
  }

  /** No more sends (the end, or Ctrl-C); requests in flight finish without a successor. */
  stop(): void {
    this.stopped = true;
    if (this.startTimer) this.p.clearTimer(this.startTimer);
    if (this.endTimer) this.p.clearTimer(this.endTimer);
  }

  private begin = (): void => {
    for (let i = 0; i < this.p.connections; i++) this.next();
  };

  private ended = (): void => {
    if (this.stopped) return;
    this.stop();
    this.p.end();
  };

  private next = (): void => {
    if (this.stopped) return;
    const now = this.p.now();
    if (now >= this.p.endMs) {
      this.ended();
      return;
    }
    this.p.send(this.turn++ % this.p.agentCount, now, this.next);
  };
}
