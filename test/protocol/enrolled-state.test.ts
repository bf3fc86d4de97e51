import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentVarStore } from '../../src/swarm/protocol/agent-vars.js';
import { loadEnrolled, saveEnrolled, type EnrolledAgents, type StateShare } from '../../src/swarm/protocol/enrolled-state.js';
import { workerShare } from '../../src/swarm/shard.js';
import { shareCount } from '../../src/swarm/schedule.js';

/** A worker's agents as the driver holds them: the store and an enrolled flag per slot. */
class Agents implements EnrolledAgents {
  readonly vars: AgentVarStore;
  readonly flags: Uint8Array;
  constructor(readonly share: StateShare, names: string[]) {
    this.vars = new AgentVarStore(share.count, names, 64);
    this.flags = new Uint8Array(share.count);
  }
  isEnrolled(slot: number): boolean {
    return this.flags[slot] === 1;
  }
  restoreEnrolled(slot: number): void {
    this.flags[slot] = 1;
  }
  /** Global agent index of a slot. */
  g(slot: number): number {
    return this.share.first + slot * this.share.stride;
  }
}

/** The workers of a fleet split `workers` ways (one shard). */
function split(agents: number, workers: number, names: string[]): Agents[] {
  return Array.from({ length: workers }, (_, w) => {
    const s = workerShare({ index: 0, count: 1 }, w, workers);
    return new Agents({ ...s, count: shareCount(agents, s) }, names);
  });
}

const key = (g: number, gen: string): string => `key-${gen}-${g}-${'é'.repeat(g % 3)}`;

let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

describe('enrolment kept between the swarms of a run (enrolled-state.ts)', () => {
  it('loads every enrolled agent back, by fleet index, whatever the worker split', () => {
    dir = mkdtempSync(join(tmpdir(), 'rmmscale-enrolled-test-'));
    // Window 1: 10 agents over 2 workers; every agent but 3 and 8 enrolled.
    for (const a of split(10, 2, ['node_key', 'token'])) {
      for (let s = 0; s < a.share.count; s++) {
        const g = a.g(s);
        if (g === 3 || g === 8) continue;
        a.vars.set(s, 0, key(g, 'w1'));
        a.vars.set(s, 1, `tok-${g}`);
        a.restoreEnrolled(s);
      }
      expect(saveEnrolled(dir, a.share, a, 1000)).toBe(4);
    }
    // Window 2: 14 agents over 3 workers (4 new ones).
    const next = split(14, 3, ['node_key', 'token']);
    const restored = next.map((a) => loadEnrolled(dir, a.share, a));
    expect(restored.reduce((x, y) => x + y, 0)).toBe(8);
    for (const a of next) {
      for (let s = 0; s < a.share.count; s++) {
        const g = a.g(s);
        const was = g < 10 && g !== 3 && g !== 8;
        expect(a.isEnrolled(s), `agent ${g}`).toBe(was);
        if (was) {
          expect(a.vars.get(s, 0)).toBe(key(g, 'w1'));
          expect(a.vars.get(s, 1)).toBe(`tok-${g}`);
        }
      }
    }
    const files = readdirSync(dir).sort();
    expect(files).toEqual(['enrolled-0-2.bin', 'enrolled-1-2.bin']);
    expect(statSync(join(dir, files[0])).mode & 0o777).toBe(0o600);
  });

  it('where saves overlap the later one wins, and a save replaces its share\'s file', () => {
    dir = mkdtempSync(join(tmpdir(), 'rmmscale-enrolled-test-'));
    const [one] = split(6, 1, ['node_key']);
    for (let s = 0; s < 6; s++) {
      one.vars.set(s, 0, key(s, 'old'));
      one.restoreEnrolled(s);
    }
    saveEnrolled(dir, one.share, one, 1000);
    // A later window split 2 ways re-keyed agent 1 only (as if it had enrolled again).
    const two = split(6, 2, ['node_key']);
    for (const a of two) {
      loadEnrolled(dir, a.share, a);
      if (a.share.first === 1) a.vars.set(0, 0, key(1, 'new'));
      saveEnrolled(dir, a.share, a, 2000);
    }
    // A third window, whole again, must see the newer key for agent 1 and the old one elsewhere.
    const [again] = split(6, 1, ['node_key']);
    expect(loadEnrolled(dir, again.share, again)).toBe(6);
    expect(again.vars.get(1, 0)).toBe(key(1, 'new'));
    expect(again.vars.get(0, 0)).toBe(key(0, 'old'));
    expect(again.vars.get(5, 0)).toBe(key(5, 'old'));
    // Saving the whole fleet again replaces its file (no growth), with no temporary file left.
    saveEnrolled(dir, again.share, again, 3000);
    expect(readdirSync(dir).sort()).toEqual(['enrolled-0-1.bin', 'enrolled-0-2.bin', 'enrolled-1-2.bin']);
  });

  it('skips files of other stripes, foreign files, and saves that lack a variable the flows use', () => {
    dir = mkdtempSync(join(tmpdir(), 'rmmscale-enrolled-test-'));
    const [w0, w1] = split(8, 2, ['node_key']);
    for (let s = 0; s < w1.share.count; s++) {
      w1.vars.set(s, 0, key(w1.g(s), 'x'));
      w1.restoreEnrolled(s);
    }
    saveEnrolled(dir, w1.share, w1, 1000);
    writeFileSync(join(dir, 'enrolled-0-2.bin'), 'not a saved enrolment at all, just text');
    writeFileSync(join(dir, 'notes.txt'), 'x');
    // Worker 0 of 2 holds even agents: the odd stripe's file cannot hold one, the other is not a save.
    expect(loadEnrolled(dir, w0.share, w0)).toBe(0);
    // A protocol with another variable besides: nothing comes back, so those agents enrol again.
    const wider = split(8, 2, ['node_key', 'session'])[1];
    expect(loadEnrolled(dir, wider.share, wider)).toBe(0);
    const same = split(8, 2, ['node_key'])[1];
    expect(loadEnrolled(dir, same.share, same)).toBe(4);
    expect(same.vars.get(3, 0)).toBe(key(7, 'x'));
  });
});
