import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * compactHeap (src/swarm/compact.ts) against a plain full GC, each in a fresh process that builds
 * the same fragmented old generation: 200,000 objects promoted, then all but every 20th dropped,
 * so every page keeps a little live data. A plain GC frees the dead objects but keeps the pages;
 * the compacting GC must hand most of them back.
 */

const COMPACT = fileURLToPath(new URL('../../dist/src/swarm/compact.js', import.meta.url));

interface Heap {
  ran: boolean;
  usedBytes: number;
  committedBytes: number;
}

function heapAfter(how: 'plain' | 'compact', exposeGc = true): Promise<Heap> {
  const script = `
    const { compactHeap } = await import(${JSON.stringify(COMPACT)});
    let objs = [];
    for (let i = 0; i < 200000; i++) objs.push({ i, s: 'x' + i });
    globalThis.gc?.(); // promote them all
    objs = objs.filter((_, i) => i % 20 === 0);
    globalThis.gc?.({ type: 'minor' });
    const ran = ${JSON.stringify(how)} === 'plain' ? (globalThis.gc?.(), !!globalThis.gc) : compactHeap();
    const u = process.memoryUsage();
    process.stdout.write(JSON.stringify({ ran, usedBytes: u.heapUsed, committedBytes: u.heapTotal, keep: objs.length }));
  `;
  const args = [...(exposeGc ? ['--expose-gc'] : []), '--input-type=module', '-e', script];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { timeout: 30_000 }, (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout) as Heap)));
  });
}

describe('compactHeap', () => {
  it('hands back pages that a plain full GC keeps, and keeps every live object', async () => {
    const [plain, compact] = await Promise.all([heapAfter('plain'), heapAfter('compact')]);
    expect(plain.ran).toBe(true);
    expect(compact.ran).toBe(true);
    // The same live data either way (within 10%)...
    expect(Math.abs(compact.usedBytes - plain.usedBytes)).toBeLessThan(plain.usedBytes * 0.1);
    // ...in far fewer committed pages.
    expect(plain.committedBytes - plain.usedBytes).toBeGreaterThan(4 * 2 ** 20);
    expect(compact.committedBytes).toBeLessThan(plain.committedBytes * 0.8);
  });

  it('does nothing without --expose-gc', async () => {
    const h = await heapAfter('compact', false);
    expect(h.ran).toBe(false);
  });
});
