import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agentId } from '../../src/core/identity.js';
import { checkLedger, ledgerProblem } from '../../src/run/ledger.js';
import { SqliteStore } from '../../src/stack/store/sqlite.js';
import { AckLedger, hasKey, ledgerKey, mergeLedgers, seqBaseFor, SEQ_PER_SWARM } from '../../src/swarm/ack-ledger.js';

const SEED = 'ledger-test';
const req = (i: number, seq: number) => ({
  agentId: agentId(SEED, i),
  hostname: `H${i}`,
  os: 'windows',
  agentVersion: '1',
  client: 'c1',
  seq,
  status: { cpuPct: 1, memPct: 2, diskFreePct: 3, uptimeSec: 4, loggedOnUser: null },
});

describe('the ack ledger (swarm side)', () => {
  it('keys come from the swarm start, whole seconds apart, and merge from workers by fleet index', () => {
    expect(seqBaseFor(1_700_000_010_999)).toBe(10 * SEQ_PER_SWARM);
    expect(seqBaseFor(1_700_000_011_000)).toBe(11 * SEQ_PER_SWARM);
    // Two workers: worker 1's slot 2 is fleet agent 1 + 2 × 2 = 5.
    const w0 = new AckLedger(7);
    const w1 = new AckLedger(7);
    for (let i = 0; i < 3000; i++) w0.ack(i % 10, 1 + Math.floor(i / 10)); // grows past its first 1024
    w1.ack(2, 4);
    w1.ack(2, 4); // a retry acknowledged twice counts once
    const m = mergeLedgers([{ worker: 0, wire: w0.toWire() }, { worker: 1, wire: w1.toWire() }], 2)!;
    expect(m.seqBase).toBe(7);
    expect(m.keys.length).toBe(3001);
    expect(hasKey(m.keys, ledgerKey(5, 4))).toBe(true);
    expect(hasKey(m.keys, ledgerKey(18, 300))).toBe(true); // worker 0, slot 9, n 300
    expect(hasKey(m.keys, ledgerKey(18, 301))).toBe(false);
    expect(hasKey(m.keys, ledgerKey(3, 4))).toBe(false);
  });
});

describe('checkLedger: identities, not row counts', () => {
  let dir: string;
  let store: SqliteStore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rmmscale-ledger-'));
    store = new SqliteStore(join(dir, 'db.sqlite'));
    await store.init();
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts lost, stored and commands exactly, even when the row counts agree', async () => {
    const baseA = 100 * SEQ_PER_SWARM;
    const baseB = 160 * SEQ_PER_SWARM;
    const a = new AckLedger(baseA);
    const b = new AckLedger(baseB);
    // Window A: agents 0 and 1 (one worker). Acked: 0/1, 0/2, 1/1. Stored: 0/1, 1/1, and 1/2, which
    // was never acknowledged (its answer was lost). Three acked, three stored: the counts agree, yet 0/2 is lost.
    a.ack(0, 1);
    a.ack(0, 2);
    a.ack(1, 1);
    await store.checkin(req(0, baseA + 1), 1);
    await store.checkin(req(1, baseA + 1), 2);
    await store.inventory(agentId(SEED, 1), { x: 1 }, 3, baseA + 2);
    // Window B: agent 2's command result, acked and stored; a retry of it changes nothing.
    b.ack(2, 1);
    await store.checkin(req(2, baseB + 5), 4); // stored, never acked: no loss
    const cmd = await store.createCommand(agentId(SEED, 2), 'script', {}, 'op');
    const pending = await store.createCommand(agentId(SEED, 0), 'script', {}, 'op');
    await store.commandResults(agentId(SEED, 2), [{ commandId: cmd!, exitCode: 0, output: '', durationMs: 1 }], 5, baseB + 1);
    await store.commandResults(agentId(SEED, 2), [{ commandId: cmd!, exitCode: 0, output: '', durationMs: 1 }], 6, baseB + 1);
    // Another run's check-in (a key below this run's first swarm) is not this run's.
    await store.checkin(req(0, 3), 7);
    const one = (l: AckLedger) => mergeLedgers([{ worker: 0, wire: l.toWire() }], 1)!;
    const ledger = await checkLedger(store, { seed: SEED, swarms: [one(b), one(a)], commandIds: [cmd!, pending!, '00000000-0000-4000-8000-000000000000'] });
    expect(ledger).toEqual({ acked: 4, stored: 5, lost: 1, duplicated: 0, commandsCreated: 3, commandsDelivered: 1, commandsLost: 1 });
    expect(ledgerProblem(ledger)).toBe('the ledger lost data: 1 of 4 acknowledged writes are not in the database; 1 of 3 created commands were lost');
  });

  it('a whole ledger: nothing lost, no problem', async () => {
    const base = 200 * SEQ_PER_SWARM;
    const l = new AckLedger(base);
    for (let i = 0; i < 50; i++) {
      l.ack(i, 1);
      await store.checkin(req(i, base + 1), i);
    }
    const ledger = await checkLedger(store, { seed: SEED, swarms: [mergeLedgers([{ worker: 0, wire: l.toWire() }], 1)!], commandIds: [] });
    expect(ledger).toEqual({ acked: 50, stored: 50, lost: 0, duplicated: 0, commandsCreated: 0, commandsDelivered: 0, commandsLost: 0 });
    expect(ledgerProblem(ledger)).toBeNull();
  });
});
