import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SwarmResult } from '../../src/swarm/result.js';
import { expectTrustedUnlessStolen } from '../helpers/host-trust.js';
import { runCli } from '../helpers/spawn-cli.js';

// In the measured (one file at a time) group: the demo's exit code is its trust verdict, and a
// verdict taken while other test files load the host is a verdict on the host.
describe('rmmscale demo', () => {
  it('drives the single stack and reports the server count beside the swarm count', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rmmscale-demo-'));
    const r = await runCli(['demo', '--agents', '2000', '--duration', '3s', '--json', join(dir, 'demo.json')], { timeoutMs: 60_000 });
    const result = JSON.parse(readFileSync(join(dir, 'demo.json'), 'utf8')) as SwarmResult;
    rmSync(dir, { recursive: true, force: true });
    expectTrustedUnlessStolen(r.code, result, r.stderr);
    const m = /counted (\d+) check-ins; the swarm completed (\d+)/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(m![1]).toBe(m![2]);
    expect(Math.abs(Number(m![1]) - 30)).toBeLessThanOrEqual(2); // 2,000 × 0.3/min × 3 s
  });
});
