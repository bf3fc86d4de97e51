import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TelemetrySpool, TelemetrySpoolFull } from '../../src/stack/relay/telemetry-spool.js';
import type { TelemetrySample } from '../../src/stack/types.js';

/**
 * The relay's telemetry write-behind on its own: real segment files, against an analytics sink
 * whose mood the test sets (up: batches land; hung: they never answer until woken; down: they
 * fail). What the sink ends up holding is checked by key (agent id + seq), once each.
 */

const root = mkdtempSync(join(tmpdir(), 'rmmscale-tel-spool-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => join(root, `s${++dirs}`);

type Mood = 'up' | 'hung' | 'down';

class Sink {
  mood: Mood = 'up';
  /** key → copies stored (the analytics store keeps one; counted here to see replays). */
  readonly stored = new Map<string, number>();
  calls = 0;
  private readonly held: Array<() => void> = [];
  write = (samples: TelemetrySample[]): Promise<void> => {
    this.calls++;
    if (this.mood === 'down') return Promise.reject(new Error('connection refused'));
    const land = (): void => {
      for (const s of samples) this.stored.set(`${s.agentId}:${s.seq}`, (this.stored.get(`${s.agentId}:${s.seq}`) ?? 0) + 1);
    };
    if (this.mood === 'hung') return new Promise<void>((r) => this.held.push(() => (land(), r())));
    land();
    return Promise.resolve();
  };
  wake(): void {
    this.mood = 'up';
    for (const f of this.held.splice(0)) f();
  }
}

const metrics = { count: (): void => undefined, observeUs: (): void => undefined };
const errors: string[] = [];

function spool(dir: string, sink: Sink, extra: Partial<ConstructorParameters<typeof TelemetrySpool>[0]> = {}): TelemetrySpool {
  return new TelemetrySpool({ dir, sink: sink.write, metrics, logError: (m) => errors.push(m), retryMs: 20, ...extra });
}

const batch = (agent: string, from: number, n: number): TelemetrySample[] =>
  Array.from({ length: n }, (_, i) => ({ agentId: agent, relay: 'relay-1', atMs: 1, cpuPct: 1, memPct: 1, seq: from + i }));

const keys = (agent: string, from: number, n: number): string[] => Array.from({ length: n }, (_, i) => `${agent}:${from + i}`);

async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return cond();
}

const segments = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith('.spool'));

describe('telemetry spool (write-behind to the analytics node)', () => {
  it('an append resolves once its line is on disk, while the analytics node has not answered', async () => {
    const dir = freshDir();
    const sink = new Sink();
    sink.mood = 'hung';
    const s = spool(dir, sink);
    await s.load();
    await s.append(batch('a', 1, 3));
    // Durable here, not yet there.
    expect(sink.stored.size).toBe(0);
    expect(s.waiting).toBe(3);
    const lines = segments(dir).flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean));
    expect(lines.map((l) => (JSON.parse(l) as TelemetrySample[]).map((x) => x.seq))).toEqual([[1, 2, 3]]);
    sink.wake();
    expect(await until(() => s.waiting === 0)).toBe(true);
    expect([...sink.stored.keys()]).toEqual(keys('a', 1, 3));
    await s.close();
    // Everything forwarded: no segment is left behind.
    expect(segments(dir)).toEqual([]);
  });

  it('retries a failed forward, oldest first, and stores every key once', async () => {
    const dir = freshDir();
    const sink = new Sink();
    sink.mood = 'down';
    const s = spool(dir, sink, { maxInFlight: 2 });
    await s.load();
    for (let i = 0; i < 5; i++) await s.append(batch('b', 1 + i * 10, 10));
    expect(await until(() => sink.calls >= 3)).toBe(true);
    expect(sink.stored.size).toBe(0);
    sink.mood = 'up';
    expect(await until(() => s.waiting === 0)).toBe(true);
    expect([...sink.stored.keys()].sort()).toEqual(keys('b', 1, 50).sort());
    expect([...sink.stored.values()].every((n) => n === 1)).toBe(true);
    expect(errors.some((m) => m.includes('failed (retrying)'))).toBe(true);
    await s.close();
  });

  it('a relay that died before forwarding: the next one on the same folder replays what was acked, and a torn last line is ignored', async () => {
    const dir = freshDir();
    const hung = new Sink();
    hung.mood = 'hung';
    const first = spool(dir, hung);
    await first.load();
    await first.append(batch('c', 1, 4));
    await first.append(batch('c', 5, 4));
    // The process "dies": nothing forwarded, file handles dropped without a drain.
    await first.close();
    const [seg] = segments(dir);
    appendFileSync(join(dir, seg), '[{"agentId":"c","seq":99'); // a crash mid-append (never acked)
    const sink = new Sink();
    const next = spool(dir, sink);
    await next.load();
    expect(next.replayedTotal).toBe(8);
    expect(await until(() => next.waiting === 0)).toBe(true);
    expect([...sink.stored.keys()]).toEqual(keys('c', 1, 8));
    await next.close();
    expect(segments(dir)).toEqual([]);
    hung.wake(); // the old process's calls never land anywhere that matters; release them
  });

  it('rotates segments and deletes each once all of it was forwarded; the one still waiting stays', async () => {
    const dir = freshDir();
    const sink = new Sink();
    const s = spool(dir, sink, { segmentSamples: 10 });
    await s.load();
    for (let i = 0; i < 4; i++) await s.append(batch('d', 1 + i * 10, 10));
    expect(await until(() => s.waiting === 0)).toBe(true);
    // The three sealed segments were forwarded and deleted; the open one is the fourth.
    expect(await until(() => segments(dir).length === 1)).toBe(true);
    expect(segments(dir)[0]).toBe('telemetry-00000004.spool');
    sink.mood = 'hung';
    await s.append(batch('d', 41, 10)); // rotates: segment 5 holds a batch the sink has not taken
    expect(await until(() => segments(dir).length === 1 && segments(dir)[0] === 'telemetry-00000005.spool')).toBe(true);
    await s.close();
    expect(segments(dir)).toEqual(['telemetry-00000005.spool']);
    sink.wake();
  });

  it('is bounded: past maxSamples an append is refused (not acked), and takes again once the analytics node catches up', async () => {
    const dir = freshDir();
    const sink = new Sink();
    sink.mood = 'hung';
    const s = spool(dir, sink, { maxSamples: 25 });
    await s.load();
    await s.append(batch('e', 1, 10));
    await s.append(batch('e', 11, 10));
    await expect(s.append(batch('e', 21, 10))).rejects.toBeInstanceOf(TelemetrySpoolFull);
    expect(s.waiting).toBe(20);
    sink.wake();
    expect(await until(() => s.waiting === 0)).toBe(true);
    await s.append(batch('e', 21, 10));
    expect(await until(() => s.waiting === 0)).toBe(true);
    expect(sink.stored.size).toBe(30);
    await s.close();
  });

  it('drain waits for the analytics node, up to its deadline', async () => {
    const dir = freshDir();
    const sink = new Sink();
    sink.mood = 'hung';
    const s = spool(dir, sink);
    await s.load();
    await s.append(batch('f', 1, 5));
    const t0 = Date.now();
    await s.drain(150);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(s.waiting).toBe(5);
    expect(s.oldestAgeMs).toBeGreaterThanOrEqual(140);
    setTimeout(() => sink.wake(), 50);
    await s.drain(5000);
    expect(s.waiting).toBe(0);
    expect(s.oldestAgeMs).toBe(0);
    await s.close();
  });
});
