import { Rng } from '../../src/core/random.js';
import { serviceSampler } from '../../src/stack/capacity.js';
import type { ServiceTime } from '../../src/stack/types.js';

/**
 * An ideal FIFO c-server queue fed the exact arrival and service sequences a test uses: the
 * response time that pinned realisation would show with perfect timers. A fixed 3,000-request
 * M/M/4 sample at ρ = 0.75 lands anywhere within ±8% (1 sd) of the Erlang C mean, so the
 * capacity-model tests pick seeds whose ideal realisation is close to theory, and this function
 * proves it in the test itself: the 10% band then measures the implementation, not the draw.
 */
export function poissonArrivalsMs(seed: string, ratePerSec: number, count: number): number[] {
  const rng = new Rng(seed);
  const out: number[] = [];
  let t = 0;
  for (let i = 0; i < count; i++) out.push((t += rng.exponential(1000 / ratePerSec)));
  return out;
}

export function idealFifoMeanResponseMs(arrivalsMs: readonly number[], service: ServiceTime, serviceSeed: string, servers: number): number {
  const sample = serviceSampler(service, new Rng(serviceSeed));
  const freeAtMs = new Array<number>(servers).fill(0);
  let sum = 0;
  for (const t of arrivalsMs) {
    let k = 0;
    for (let j = 1; j < servers; j++) if (freeAtMs[j] < freeAtMs[k]) k = j;
    const end = Math.max(t, freeAtMs[k]) + sample();
    freeAtMs[k] = end;
    sum += end - t;
  }
  return sum / arrivalsMs.length;
}
