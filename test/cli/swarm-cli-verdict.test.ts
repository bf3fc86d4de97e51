import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readHlog } from '../../src/metrics/histogram.js';
import type { SwarmResult } from '../../src/swarm/result.js';
import { expectTrustedUnlessStolen } from '../helpers/host-trust.js';
import { runCli } from '../helpers/spawn-cli.js';
import { SWARM_CLI_SECRET, swarmCliFixture } from '../helpers/swarm-cli-fixture.js';

// In the measured (one file at a time) group: this run's exit code and the lines it prints are its
// trust verdict, and a verdict taken while other test files load the host is a verdict on the host.

const fx = swarmCliFixture();
const SECRET = SWARM_CLI_SECRET;

describe('rmmscale swarm (the real binary): the verdict', () => {
  it('runs, prints achieved beside target, writes a versioned result and an .hlog, exits 0', async () => {
    const server = await fx.start();
    const json = fx.path('r.json');
    const hlog = fx.path('r.hlog');
    const r = await runCli(['swarm', '--target', server.url, '--secret', SECRET, '--agents', '6000', '--duration', '3s', '--json', json, '--hlog', hlog]);
    expect(r.stderr).not.toContain('internal error');
    expect(r.stdout).toMatch(/rate\s+achieved [\d.]+\/s\s+target 30\/s/);
    const result = JSON.parse(readFileSync(json, 'utf8')) as SwarmResult;
    expectTrustedUnlessStolen(r.code, result, r.stderr);
    // Steal on the summary line: the mean, and the worst second beside it once it passes 1%.
    const g = result.generator;
    if (g.hostStealMean === null) expect(r.stdout).toContain(', steal n/a');
    else {
      expect(g.hostStealMax).toBeGreaterThanOrEqual(g.hostStealMean);
      const worst = g.hostStealMax! > 0.01 ? ` (worst second ${(g.hostStealMax! * 100).toFixed(0)}%)` : '';
      expect(r.stdout).toContain(`, steal ${(g.hostStealMean * 100).toFixed(1)}%${worst}\n`);
      // The lag over the seconds free of steal: every measured second sampled; named on the line
      // only when steal took some out.
      const q = g.schedulingLagStealFree!;
      expect(q.ofSeconds).toBe(3);
      expect(q.seconds).toBe(result.series.filter((p) => !p.warmup && p.hostSteal !== null && p.hostSteal <= 0.01 && p.tSec <= 3).length);
      if (q.seconds === 0) expect(r.stdout).toContain('(no second was free of steal)');
      else if (q.seconds < q.ofSeconds) expect(r.stdout).toContain(`over the ${q.seconds} of ${q.ofSeconds} s free of steal`);
      else expect(r.stdout).not.toContain('free of steal');
    }
    expect(result.schema).toBe('rmmscale.swarm/1');
    expect(result.ops.checkin.count).toBe(server.counts.get('/agent/v1/checkin'));
    expect(Math.abs(result.ops.checkin.count - 90)).toBeLessThanOrEqual(2);
    expect(readHlog(readFileSync(hlog, 'utf8')).length).toBeGreaterThanOrEqual(3);
  });

});
