/**
 * Variables an agent's enrolment yielded (a node_key, a token), for every agent of a worker,
 * without an object per agent: the values' UTF-8 bytes sit back to back in one growing buffer,
 * and two typed arrays say where each (agent, variable) value starts and how long it is. A
 * 40-byte node_key costs 40 bytes plus 8 bytes of offsets; a million agents, ~48 MB.
 *
 * A value written twice (an agent enrolled again) is appended anew; the old bytes stay unused.
 */
export class AgentVarStore {
  readonly count: number;
  readonly names: readonly string[];
  private readonly start: Uint32Array;
  private readonly length: Uint32Array;
  private bytes: Buffer;
  private used = 0;

  constructor(count: number, names: readonly string[], initialBytes = 4096) {
    this.count = count;
    this.names = names;
    this.start = new Uint32Array(count * names.length);
    this.length = new Uint32Array(count * names.length);
    this.bytes = Buffer.allocUnsafe(Math.max(64, initialBytes));
  }

  /** Bytes held for values (not counting the offsets). */
  get usedBytes(): number {
    return this.used;
  }

  set(slot: number, varIndex: number, value: string): void {
    const n = Buffer.byteLength(value);
    this.reserve(n);
    this.bytes.write(value, this.used, 'utf8');
    this.commit(slot, varIndex, n);
  }

  /** A value as UTF-8 bytes (src[from, to)), copied without decoding (a saved enrolment, enrolled-state.ts). */
  setBytes(slot: number, varIndex: number, src: Buffer, from: number, to: number): void {
    this.reserve(to - from);
    src.copy(this.bytes, this.used, from, to);
    this.commit(slot, varIndex, to - from);
  }

  /** The value's length in bytes. */
  byteLength(slot: number, varIndex: number): number {
    return this.length[slot * this.names.length + varIndex];
  }

  /** Copy the value's bytes into `target` at `at`; returns the bytes copied. */
  copyTo(slot: number, varIndex: number, target: Buffer, at: number): number {
    const k = slot * this.names.length + varIndex;
    return this.bytes.copy(target, at, this.start[k], this.start[k] + this.length[k]);
  }

  private reserve(n: number): void {
    if (this.used + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (this.used + n > size) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.bytes.copy(next, 0, 0, this.used);
    this.bytes = next;
  }

  private commit(slot: number, varIndex: number, n: number): void {
    const k = slot * this.names.length + varIndex;
    this.start[k] = this.used;
    this.length[k] = n;
    this.used += n;
  }

  get(slot: number, varIndex: number): string {
    const k = slot * this.names.length + varIndex;
    const a = this.start[k];
    return this.bytes.toString('utf8', a, a + this.length[k]);
  }
}
