import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { deriveAgent, deriveFleet, type IdentityFile } from '../../src/core/identity.js';
import { Rng } from '../../src/core/random.js';
import { PayloadFactory } from '../../src/swarm/payloads.js';
import { startAgentServer, type TestAgentServer } from '../helpers/agent-server.js';
import { runCli } from '../helpers/spawn-cli.js';

let server: TestAgentServer | null = null;
const dir = mkdtempSync(join(tmpdir(), 'rmmscale-ids-'));
afterEach(async () => {
  await server?.close();
  server = null;
});

describe('identity files', () => {
  it('are written on first use and reused later: the second run speaks as the same agents', async () => {
    server = await startAgentServer('id-secret');
    const file = join(dir, 'fleet.json');
    const args = ['swarm', '--target', server.url, '--agents', '120', '--rate', '120/s', '--duration', '1s', '--secret', 'id-secret', '--seed', 'first', '--identities', file];
    // 0, or 4 when the parallel tests load this host so much that the swarm (rightly) calls its
    // 1-second run untrustworthy: what is tested here is the identity file, not the verdict.
    expect([0, 4]).toContain((await runCli(args)).code);
    expect(existsSync(file)).toBe(true);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as IdentityFile;
    expect(doc.format).toBe('rmmscale.identities/1');
    expect(doc.agents.map((a) => a.id)).toEqual(deriveFleet('first', 'id-secret', 120).map((a) => a.id));
    const seen = new Set(server.agents);
    // A different --seed is ignored when the file exists: the file's fleet is reused.
    const again = args.map((a) => (a === 'first' ? 'other' : a));
    expect([0, 4]).toContain((await runCli(again)).code);
    expect(server.agents.size).toBe(seen.size);
    expect(server.rejected).toBe(0);
  });
});

describe('payloads', () => {
  it('have realistic sizes per kind', () => {
    const f = new PayloadFactory('p');
    const a = deriveAgent('p', 's', 3);
    const rng = new Rng('x');
    const size = (k: 'heartbeat' | 'checkin' | 'inventory'): number => Buffer.byteLength(f.body(k, a, 1, rng));
    expect(size('heartbeat')).toBeLessThan(200);
    expect(size('checkin')).toBeGreaterThan(800);
    expect(size('checkin')).toBeLessThan(2000);
    expect(size('inventory')).toBeGreaterThan(30_000);
    expect(size('inventory')).toBeLessThan(60_000);
    for (const k of ['heartbeat', 'checkin', 'inventory'] as const) expect((JSON.parse(f.body(k, a, 7, rng)) as { agentId: string }).agentId).toBe(a.id);
  });
});
