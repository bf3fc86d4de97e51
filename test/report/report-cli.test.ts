import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderMarkdown } from '../../src/report/index.js';
import { runCli } from '../helpers/spawn-cli.js';
import { buildResult } from './fixtures.js';

/** `rmmscale report`, the real binary (needs `npm run build`, as `npm test` does first). */
const dir = mkdtempSync(join(tmpdir(), 'rmmscale-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

const result = buildResult();
const resultFile = file('result.json', JSON.stringify(result, null, 2));

describe('rmmscale report', () => {
  it('writes the HTML report and the Markdown summary, and prints the summary table', async () => {
    const html = join(dir, 'out', 'report.html');
    const md = join(dir, 'out', 'summary.md');
    const r = await runCli(['report', resultFile, '--html', html, '--md', md]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(readFileSync(html, 'utf8')).toMatch(/^<!doctype html>[\s\S]*Chart\.js v4[\s\S]*<\/html>\n$/);
    expect(readFileSync(md, 'utf8')).toBe(renderMarkdown(result));
    expect(r.stdout).toMatch(/^PASS: Ceiling found: 6,500 agents/);
    expect(r.stdout).toContain('  web-agent *   6,500    325  limiting: utilization 0.96, queue growing');
    expect(r.stdout).toContain(`HTML report: ${html}\n`);
    expect(r.stdout).toContain(`Markdown summary: ${md}\n`);
  });

  it('with neither flag, writes report.html and summary.md beside the result, as rmmscale run names them', async () => {
    const sub = join(dir, 'run-1');
    const f = join(sub, 'result.json');
    rmSync(sub, { recursive: true, force: true });
    mkdirSync(sub);
    writeFileSync(f, JSON.stringify(result));
    const r = await runCli(['report', f, '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { htmlFile: string; mdFile: string; verdict: string; summary: { ceilingAgents: number } };
    expect(out).toMatchObject({ htmlFile: join(sub, 'report.html'), mdFile: join(sub, 'summary.md'), verdict: 'pass', summary: { ceilingAgents: 6500 } });
    expect(existsSync(out.htmlFile) && existsSync(out.mdFile)).toBe(true);
  });

  it('--md - prints only the Markdown, for a CI step summary', async () => {
    const r = await runCli(['report', resultFile, '--md', '-']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(renderMarkdown(result));
  });

  const bad: Array<[string, () => string, string]> = [
    ['a missing file', () => join(dir, 'nope.json'), `${join(dir, 'nope.json')}: cannot read the result file (no such file)`],
    ['not JSON', () => file('text.json', 'hello'), `${join(dir, 'text.json')}: not JSON (Unexpected token 'h', "hello" is not valid JSON); expected the result.json of rmmscale run`],
    ['a JSON array', () => file('array.json', '[]'), `${join(dir, 'array.json')}: expected a JSON object: the result.json of rmmscale run`],
    ['another schema', () => file('swarm.json', '{"schema":"rmmscale.swarm/1"}'), `${join(dir, 'swarm.json')}: schema: expected "rmmscale.run/1" (the result.json of rmmscale run), got "rmmscale.swarm/1"`],
    [
      'a result with missing parts',
      () => {
        const { windows: _w, summary: _s, ...rest } = result;
        return file('partial.json', JSON.stringify({ ...rest, timeline: [] }));
      },
      `${join(dir, 'partial.json')}: not a complete rmmscale.run/1 result: summary: expected object, got missing; windows: expected array, got missing; timeline: expected object, got array`,
    ],
  ];
  it.each(bad)('%s: one line, exit 2', async (_name, make, message) => {
    const f = make();
    const r = await runCli(['report', f, '--html', join(dir, 'x.html')]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`rmmscale: ${message}\n`);
    expect(existsSync(join(dir, 'x.html'))).toBe(false);
  });

  it('an unwritable output is one line and exit 2', async () => {
    const blocker = file('blocker', 'a file, not a directory');
    const r = await runCli(['report', resultFile, '--md', join(blocker, 'summary.md')]);
    expect(r.code).toBe(2);
    // mkdir -p under a file: EEXIST on Linux (ENOTDIR elsewhere).
    expect(r.stderr).toMatch(/^rmmscale: Markdown summary: cannot write \/\S+\/blocker\/summary\.md \((EEXIST|ENOTDIR)\)\n$/);
  });
});
