/**
 * The swarm's record of every acknowledged agent write (a check-in, an inventory, a command result
 * answered 2xx), by its idempotency key: the agent and the write's sequence number. After a run,
 * rmmscale compares these keys with the ones the database holds (src/run/ledger.ts).
 *
 * Sequence numbers: a write's `seq` is `seqBase + n`, n counting that agent's writes in this swarm
 * from 1. `seqBase` comes from the swarm's shared start instant (whole seconds since 2023-11-14,
 * times 2^22), so each swarm of a run (one per window) has keys of its own: up to 2^22 writes per
 * agent per swarm, exact in a double for the next 68 years.
 *
 * Compact, for millions of writes: two growable Uint32Arrays (local slot, n), 8 bytes per
 * acknowledged write, no object per write. A retry resends the same key; only its first
 * acknowledgement is kept (the engine stops retrying once one is).
 */

export const SEQ_EPOCH_SEC = 1_700_000_000;
export const SEQ_PER_SWARM = 2 ** 22;

/** The first key of a swarm that starts at this instant (its writes are seqBase + 1, + 2, …). */
export function seqBaseFor(startAtEpochMs: number): number {
  return Math.max(0, Math.floor(startAtEpochMs / 1000) - SEQ_EPOCH_SEC) * SEQ_PER_SWARM;
}

/** One worker's acknowledged writes, as it ships them to the coordinator (base64 of the arrays). */
export interface AckLedgerWire {
  seqBase: number;
  count: number;
  slots: string;
  ns: string;
}

export class AckLedger {
  private slots = new Uint32Array(1024);
  private ns = new Uint32Array(1024);
  count = 0;

  constructor(readonly seqBase: number) {}

  ack(slot: number, n: number): void {
    if (this.count === this.slots.length) {
      const grow = (a: Uint32Array<ArrayBuffer>): Uint32Array<ArrayBuffer> => {
        const b = new Uint32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.slots = grow(this.slots);
      this.ns = grow(this.ns);
    }
    this.slots[this.count] = slot;
    this.ns[this.count] = n;
    this.count++;
  }

  toWire(): AckLedgerWire {
    const b64 = (a: Uint32Array): string => Buffer.from(a.buffer, a.byteOffset, this.count * 4).toString('base64');
    return { seqBase: this.seqBase, count: this.count, slots: b64(this.slots), ns: b64(this.ns) };
  }
}

/**
 * A whole swarm's acknowledged writes: fleet-wide agent index and n, one pair per write, and the
 * swarm's seqBase (every worker shares it). Keys are `agentIndex × 2^22 + n` (below 2^53 for up to
 * 2^31 agents), sorted and unique: a binary search says whether a key was acknowledged.
 */
export interface SwarmLedger {
  seqBase: number;
  keys: Float64Array;
}

export function ledgerKey(agentIndex: number, n: number): number {
  return agentIndex * SEQ_PER_SWARM + n;
}

/** The workers' parts as one ledger; worker w's local slot s is fleet agent w + s × workerCount. */
export function mergeLedgers(parts: Array<{ worker: number; wire: AckLedgerWire }>, workerCount: number): SwarmLedger | null {
  if (parts.length === 0) return null;
  const total = parts.reduce((a, p) => a + p.wire.count, 0);
  const keys = new Float64Array(total);
  let k = 0;
  for (const { worker, wire } of parts) {
    const slots = new Uint32Array(new Uint8Array(Buffer.from(wire.slots, 'base64')).buffer, 0, wire.count);
    const ns = new Uint32Array(new Uint8Array(Buffer.from(wire.ns, 'base64')).buffer, 0, wire.count);
    for (let i = 0; i < wire.count; i++) keys[k++] = ledgerKey(worker + slots[i] * workerCount, ns[i]);
  }
  keys.sort();
  let u = 0;
  for (let i = 0; i < keys.length; i++) if (i === 0 || keys[i] !== keys[u - 1]) keys[u++] = keys[i];
  return { seqBase: parts[0].wire.seqBase, keys: keys.slice(0, u) };
}

/** Whether a sorted key list holds `key`. */
export function hasKey(keys: Float64Array, key: number): boolean {
  let lo = 0;
  let hi = keys.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = keys[mid];
    if (v === key) return true;
    if (v < key) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}
