import { createHash } from 'node:crypto';

/**
 * A small, fast, seedable PRNG (sfc32) so that the same seed gives the same fleet, phases and
 * jitter on every machine. Not for cryptography: tokens use HMAC (see identity.ts).
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: string) {
    const h = createHash('sha256').update(seed).digest();
    this.a = h.readUInt32LE(0);
    this.b = h.readUInt32LE(4);
    this.c = h.readUInt32LE(8);
    this.d = h.readUInt32LE(12) | 1;
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Exponential with the given mean. */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Pick an index by weights (need not sum to 1). */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    let x = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      x -= weights[i];
      if (x < 0) return i;
    }
    return weights.length - 1;
  }
}

/**
 * Counter-based draws: a uniform number that is a pure function of (key, a, b), e.g. (the seed's
 * key, a global agent index, that agent's fire number). Unlike a stream (Rng), what one process
 * draws does not depend on what it drew before, so a schedule split over worker processes or
 * shards draws, for every agent and fire, exactly what one process would. Two rounds of
 * MurmurHash3's 32-bit finalizer; not for cryptography.
 */
export function drawKey(seed: string): number {
  return createHash('sha256').update(seed).digest().readUInt32LE(0);
}

function fmix32(x: number): number {
  let h = x;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Uniform in (0, 1), never exactly 0 or 1, from (key, a, b). */
export function drawAt(key: number, a: number, b: number): number {
  const h = fmix32(fmix32(key ^ Math.imul(a + 1, 0x9e3779b1)) ^ Math.imul(b + 1, 0x27d4eb2f));
  return (h + 0.5) / 4294967296;
}
