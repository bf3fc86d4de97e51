import { agentId } from '../core/identity.js';
import { LEDGER_PAGE_MAX } from '../stack/store/schema.js';
import type { Store } from '../stack/types.js';
import { hasKey, ledgerKey, SEQ_PER_SWARM, type SwarmLedger } from '../swarm/ack-ledger.js';

/**
 * The ledger: nothing acknowledged is lost. Each window's swarm records the keys (agent, seq) of the
 * writes the stack acknowledged (src/swarm/ack-ledger.ts); background traffic records the ids of the
 * commands whose creation was answered 201. After the run this reads the database, key by key, and
 * compares identities, not row counts:
 *
 *   acked              writes acknowledged to the swarm (distinct keys)
 *   stored             distinct keys of this run's swarms the database holds (acknowledged or not:
 *                      a write whose answer was lost may be stored, and that is no error)
 *   lost               acknowledged keys the database does not hold
 *   duplicated         extra rows under a key already stored (the unique keys should make it 0)
 *   commandsCreated    commands whose creation was answered 201
 *   commandsDelivered  of those, the ones the agent acknowledged (its result is stored)
 *   commandsLost       of those, the ones the database does not hold, or marks delivered without a result
 *
 * A command neither delivered nor lost is still pending: its agent has not checked in since.
 */
export interface Ledger {
  acked: number;
  stored: number;
  lost: number;
  duplicated: number;
  commandsCreated: number;
  commandsDelivered: number;
  commandsLost: number;
}

export interface LedgerInput {
  /** The fleet's seed: agent i's id is agentId(seed, i). */
  seed: string;
  /** One per window (HTTP), each with keys of its own (its seqBase). */
  swarms: SwarmLedger[];
  commandIds: string[];
}

/** Where the stored keys are read: the control plane's database (a Store), or the analytics node (telemetry frames). */
export type LedgerSource = Pick<Store, 'ledgerKeys'> & Partial<Pick<Store, 'commandStates'>>;

/**
 * The ledger of a run, read from `store`: an authenticated RemoteStore to the db node, or the
 * SQLite file, for agent writes; the analytics node (AnalyticsClient) for a tunnel fleet's telemetry
 * frames, each acked by a relay only once the analytics node stored it.
 */
export async function checkLedger(store: LedgerSource, input: LedgerInput): Promise<Ledger> {
  const swarms = [...input.swarms].sort((a, b) => a.seqBase - b.seqBase);
  let acked = 0;
  let maxAgent = -1;
  for (const w of swarms) {
    acked += w.keys.length;
    if (w.keys.length > 0) maxAgent = Math.max(maxAgent, Math.floor(w.keys[w.keys.length - 1] / SEQ_PER_SWARM));
  }
  const indexOf = new Map<string, number>();
  for (let i = 0; i <= maxAgent; i++) indexOf.set(agentId(input.seed, i), i);
  let stored = 0;
  let found = 0;
  let duplicated = 0;
  if (swarms.length > 0) {
    let after: { agentId: string; seq: number } | null = null;
    for (;;) {
      const rows = await store.ledgerKeys(swarms[0].seqBase + 1, after, LEDGER_PAGE_MAX);
      for (const r of rows) {
        const w = swarmOf(swarms, r.seq);
        if (!w) continue;
        stored++;
        duplicated += Math.max(0, r.copies - 1);
        const g = indexOf.get(r.agentId);
        if (g !== undefined && hasKey(w.keys, ledgerKey(g, r.seq - w.seqBase))) found++;
      }
      if (rows.length < LEDGER_PAGE_MAX) break;
      after = rows[rows.length - 1];
    }
  }
  const states = input.commandIds.length > 0 && store.commandStates ? await store.commandStates(input.commandIds) : [];
  const held = new Map(states.map((c) => [c.id, c]));
  let delivered = 0;
  let commandsLost = 0;
  for (const id of new Set(input.commandIds)) {
    const c = held.get(id);
    if (!c || (c.delivered && !c.hasResult)) commandsLost++;
    else if (c.delivered) delivered++;
  }
  return { acked, stored, lost: acked - found, duplicated, commandsCreated: new Set(input.commandIds).size, commandsDelivered: delivered, commandsLost };
}

/** The swarm whose keys `seq` falls among: seqBase < seq ≤ seqBase + 2^22 (swarms sorted by seqBase). */
function swarmOf(swarms: SwarmLedger[], seq: number): SwarmLedger | null {
  for (let i = swarms.length - 1; i >= 0; i--) {
    const w = swarms[i];
    if (seq > w.seqBase) return seq - w.seqBase <= SEQ_PER_SWARM ? w : null;
  }
  return null;
}

/** The one line a run prints (and fails with, exit 3) when the ledger lost anything acknowledged. */
export function ledgerProblem(l: Ledger): string | null {
  if (l.lost === 0 && l.commandsLost === 0) return null;
  const parts: string[] = [];
  if (l.lost > 0) parts.push(`${l.lost} of ${l.acked} acknowledged writes are not in the database`);
  if (l.commandsLost > 0) parts.push(`${l.commandsLost} of ${l.commandsCreated} created commands were lost`);
  return `the ledger lost data: ${parts.join('; ')}`;
}
