import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { alive } from '../helpers/fork-node.js';
import { runCli } from '../helpers/spawn-cli.js';

/**
 * `rmmscale stack fault NODE kill|stop|cont|restart` against a running `rmmscale stack up` (both the
 * real binary): the fault goes through stack up's control endpoint, found in its state file.
 */
const stateDir = mkdtempSync(join(tmpdir(), 'rmmscale-fault-state-'));
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));
const env = { RMMSCALE_STATE_DIR: stateDir };

interface Line {
  event: string;
  node?: string;
  action?: string;
  pid?: number;
  signal?: string | null;
  nodes?: Array<{ name: string; pid: number }>;
}

describe('rmmscale stack fault (the real binary)', () => {
  it('restart, stop, cont and kill a node of a running stack up; a bad node or action is one line, exit 2', async () => {
    const lines: Line[] = [];
    const results: Array<{ code: number | null; stdout: string; stderr: string }> = [];
    const r = await runCli(['stack', 'up', 'single', '--json', '--secret', 'fault-cli-secret'], {
      timeoutMs: 90_000,
      env,
      onStart: (child) => {
        let buf = '';
        child.stdout!.on('data', (d: Buffer) => {
          buf += d.toString();
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = JSON.parse(buf.slice(0, nl)) as Line;
            buf = buf.slice(nl + 1);
            lines.push(line);
            if (line.event !== 'ready') continue;
            void (async () => {
              for (const args of [
                ['single', 'restart'],
                ['single', 'stop'],
                ['single', 'cont'],
                ['nope', 'kill'],
                ['single', 'pause'],
                ['single', 'kill'],
              ]) {
                results.push(await runCli(['stack', 'fault', ...args], { timeoutMs: 30_000, env }));
              }
              child.kill('SIGTERM');
            })();
          }
        });
      },
    });
    expect(r.code).toBe(130);
    const [restart, stop, cont, badNode, badAction, kill] = results;
    const before = lines[0]!.nodes![0]!.pid;
    expect(restart!.code).toBe(0);
    const restarted = /^restart single: done \(pid (\d+)\)\n$/.exec(restart!.stdout);
    expect(restarted).not.toBeNull();
    expect(Number(restarted![1])).not.toBe(before);
    expect(alive(before)).toBe(false);
    expect([stop!.code, stop!.stdout]).toEqual([0, `stop single: done (pid ${restarted![1]})\n`]);
    expect([cont!.code, cont!.stdout]).toEqual([0, `cont single: done (pid ${restarted![1]})\n`]);
    expect(badNode!.code).toBe(2);
    expect(badNode!.stderr.trim().split('\n')).toHaveLength(1);
    expect(badNode!.stderr).toContain('node: expected one of single (or a tier), got "nope"');
    expect(badAction!.code).toBe(2);
    expect(badAction!.stderr).toContain('FAULT: expected kill | stop | cont | restart, got "pause"');
    expect(kill!.code).toBe(0);
    // stack up reported each fault it did, and the killed node's exit.
    expect(lines.filter((l) => l.event === 'fault').map((l) => `${l.action} ${l.node}`)).toEqual(['restart single', 'stop single', 'cont single', 'kill single']);
    expect(lines.some((l) => l.event === 'node-exit' && l.signal === 'SIGKILL')).toBe(true);
    expect(alive(Number(restarted![1]))).toBe(false);
  }, 120_000);

  it('with no stack up running: one line saying so, exit 2', async () => {
    const r = await runCli(['stack', 'fault', 'db', 'kill'], { timeoutMs: 20_000, env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no `rmmscale stack up` is running');
  });
});
