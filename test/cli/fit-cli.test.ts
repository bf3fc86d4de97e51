import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { uslThroughput } from '../../src/analysis/usl.js';
import { runCli } from '../helpers/spawn-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'rmmscale-fit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function csv(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('rmmscale fit usl', () => {
  it('prints the fitted parameters as JSON for data from any tool', async () => {
    const known = { lambda: 200, sigma: 0.02, kappa: 0.0005 };
    const rows = [1, 2, 4, 8, 16, 24, 32, 48, 64].map((n) => `${n},${uslThroughput(known, n)}`);
    const file = csv('ok.csv', `load,throughput\n${rows.join('\n')}\n`);
    const r = await runCli(['fit', 'usl', file, '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, number>;
    expect(Object.keys(out)).toEqual(['sigma', 'kappa', 'lambda', 'nMax', 'xMax', 'r2']);
    expect(out.sigma).toBeCloseTo(0.02, 6);
    expect(out.kappa).toBeCloseTo(0.0005, 8);
    expect(out.lambda).toBeCloseTo(200, 3);
    expect(out.nMax).toBeCloseTo(Math.sqrt(0.98 / 0.0005), 3);
  });

  it.each([
    ['hdr.csv', 'x,y\n1,2\n', 'hdr.csv:1 header: expected a header with "concurrency,throughput" or "load,throughput", got "x,y"'],
    ['rows.csv', 'concurrency,throughput\n1,10\n2,abc\n4,35\n8,60\n', 'rows.csv:3: expected concurrency > 0 and throughput ≥ 0 as numbers, got "2,abc"'],
    ['few.csv', 'concurrency,throughput\n1,10\n2,19\n', 'few.csv: expected at least 3 data rows for a USL fit, got "2 data rows"'],
  ])('%s: one clear line and exit 2', async (name, text, message) => {
    const r = await runCli(['fit', 'usl', csv(name, text)]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`rmmscale: ${join(dir, message.split(':')[0])}${message.slice(message.indexOf(':'))}`);
  });
});
