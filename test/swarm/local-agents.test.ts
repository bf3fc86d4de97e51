import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deriveAgent, deriveFleet, writeIdentityFile } from '../../src/core/identity.js';
import { localAgents } from '../../src/swarm/local-agents.js';
import { shareCount } from '../../src/swarm/schedule.js';

describe('LocalAgents: a worker’s share of the fleet', () => {
  it('gives worker w of n the agents w, w + n, w + 2n …, the same identities held or compact', () => {
    for (const [agents, w, n] of [[10, 0, 1], [10, 2, 3], [7, 3, 4], [3, 5, 8]] as const) {
      const spec = { seed: 'la', secret: 'sec', agents, share: { first: w, stride: n }, identitiesFile: null };
      const held = localAgents(spec, true);
      const compact = localAgents(spec, false);
      expect(held.count).toBe(shareCount(agents, { first: w, stride: n }));
      expect(compact.count).toBe(held.count);
      for (let s = 0; s < held.count; s++) {
        const want = deriveAgent('la', 'sec', w + s * n);
        expect(held.at(s)).toEqual(want);
        expect(compact.at(s)).toEqual(want);
        expect([compact.idAt(s), compact.tokenAt(s)]).toEqual([want.id, want.token]);
        expect([held.idAt(s), held.tokenAt(s)]).toEqual([want.id, want.token]);
      }
    }
  });

  it('holds the agents of an identity file as they are, whatever the mode', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rmmscale-la-'));
    try {
      const file = join(dir, 'ids.json');
      // A file written with another secret: its tokens cannot be derived from this run's secret.
      const fleet = deriveFleet('file-seed', 'other-secret', 5);
      writeIdentityFile(file, 'file-seed', fleet);
      const compact = localAgents({ seed: 'file-seed', secret: 'sec', agents: 5, share: { first: 1, stride: 2 }, identitiesFile: file }, false);
      expect(compact.count).toBe(2);
      expect([compact.tokenAt(0), compact.tokenAt(1)]).toEqual([fleet[1].token, fleet[3].token]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
