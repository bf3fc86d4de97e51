/**
 * A binary min-heap of slot numbers ordered by an external key array (`keys[slot]`). Typed arrays
 * only: a fleet of 100k idle agents costs 4 bytes each here, and pushing/popping allocates nothing.
 * Ties break by slot number so the order is deterministic.
 */
export class MinHeap {
  private readonly items: Int32Array;
  private readonly keys: Float64Array;
  size = 0;

  constructor(capacity: number, keys: Float64Array) {
    this.items = new Int32Array(Math.max(1, capacity));
    this.keys = keys;
  }

  private less(a: number, b: number): boolean {
    const ka = this.keys[a];
    const kb = this.keys[b];
    return ka < kb || (ka === kb && a < b);
  }

  peek(): number {
    return this.items[0];
  }

  push(slot: number): void {
    const items = this.items;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(slot, items[parent])) break;
      items[i] = items[parent];
      i = parent;
    }
    items[i] = slot;
  }

  pop(): number {
    const items = this.items;
    const top = items[0];
    const last = items[--this.size];
    let i = 0;
    const n = this.size;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.less(items[r], items[l]) ? r : l;
      if (!this.less(items[c], last)) break;
      items[i] = items[c];
      i = c;
    }
    if (n > 0) items[i] = last;
    return top;
  }
}
