/**
 * Which tunnels a relay pings now, spread over the ping interval.
 *
 * A relay pings each tunnel once per interval and drops one that has not answered the ping before.
 * Pinging every tunnel in one sweep sends all the pings at once: the pongs come back as one burst,
 * and on the agent side a process holding many tunnels (a real NAT gateway, or the swarm's tunnel
 * worker) must answer them all in one turn. At 10,000 tunnels on four relays whose sweeps fell in
 * the same second, that stalled a swarm worker for 270–380 ms every 30 s (docs/benchmarks.md,
 * "Verdicts that hold").
 *
 * So each tunnel gets a slot, round-robin as tunnels open, and each tick serves one slot: with 30
 * slots and a tick of interval / 30, every tunnel is still pinged once per interval and still has
 * one whole interval to answer, but only a thirtieth of them are pinged at any one time.
 *
 * Pure: no timers and no sockets; the caller ticks it and pings what it returns.
 */
export class PingWheel<T extends object> {
  private readonly slots: Set<T>[];
  private readonly slotOf = new WeakMap<T, number>();
  private readonly unanswered = new Set<T>();
  private nextSlot = 0;
  private current = 0;

  constructor(readonly slotCount: number) {
    if (!Number.isInteger(slotCount) || slotCount < 1) throw new RangeError(`slotCount must be a positive integer, got ${slotCount}`);
    this.slots = Array.from({ length: slotCount }, () => new Set<T>());
  }

  /** A tunnel opened: it is first pinged when the wheel reaches its slot. */
  add(item: T): void {
    if (this.slotOf.has(item)) return;
    const slot = this.nextSlot;
    this.nextSlot = (this.nextSlot + 1) % this.slotCount;
    this.slotOf.set(item, slot);
    this.slots[slot]!.add(item);
  }

  /** A tunnel closed. */
  remove(item: T): void {
    const slot = this.slotOf.get(item);
    if (slot === undefined) return;
    this.slots[slot]!.delete(item);
    this.slotOf.delete(item);
    this.unanswered.delete(item);
  }

  /** A pong arrived. */
  answered(item: T): void {
    this.unanswered.delete(item);
  }

  /**
   * Advance one slot. `timedOut`: that slot's tunnels that never answered their last ping (the
   * caller drops them; they leave the wheel here). `ping`: the rest, now awaiting an answer.
   */
  tick(): { ping: T[]; timedOut: T[] } {
    const slot = this.slots[this.current]!;
    this.current = (this.current + 1) % this.slotCount;
    const ping: T[] = [];
    const timedOut: T[] = [];
    for (const item of slot) {
      if (this.unanswered.has(item)) timedOut.push(item);
      else ping.push(item);
    }
    for (const item of timedOut) this.remove(item);
    for (const item of ping) this.unanswered.add(item);
    return { ping, timedOut };
  }

  get size(): number {
    let n = 0;
    for (const s of this.slots) n += s.size;
    return n;
  }
}
