import { describe, expect, it } from 'vitest';
import { deriveFleet } from '../../src/core/identity.js';
import { runCli } from '../helpers/spawn-cli.js';

describe('rmmscale stack (the real binary)', () => {
  it('stack up --json prints one ready line with every node, and Ctrl-C stops them all (exit 130)', async () => {
    let ready: { event: string; entry: string; nodes: Array<{ name: string; role: string; url: string; metricsUrl: string; pid: number }> } | null = null;
    const r = await runCli(['stack', 'up', 'single', '--json', '--secret', 's3'], {
      onStart: (child) => {
        let buf = '';
        child.stdout!.on('data', (d: Buffer) => {
          buf += d.toString();
          const line = buf.split('\n')[0];
          if (!ready && buf.includes('\n')) {
            ready = JSON.parse(line);
            void fetch(`${ready!.entry}/healthz`).then((h) => {
              expect(h.status).toBe(200);
              child.kill('SIGINT');
            });
          }
        });
      },
    });
    expect(r.code).toBe(130);
    expect(ready).not.toBeNull();
    const ev = ready!;
    expect(ev.event).toBe('ready');
    expect(ev.nodes).toHaveLength(1);
    expect(Object.keys(ev.nodes[0]).sort()).toEqual(['metricsUrl', 'name', 'pid', 'role', 'tier', 'url']);
    expect(ev.nodes[0].metricsUrl).toBe(`${ev.nodes[0].url}/metrics`);
    expect(() => process.kill(ev.nodes[0].pid, 0)).toThrow(); // the node is gone
  });

  it('a second Ctrl-C while stopping does not cut the shutdown short: exit 130, no node left', async () => {
    let pid = 0;
    const r = await runCli(['stack', 'up', 'single', '--json'], {
      timeoutMs: 50_000,
      onStart: (child) => {
        let buf = '';
        child.stdout!.on('data', (d: Buffer) => {
          buf += d.toString();
          if (!pid && buf.includes('\n')) {
            pid = (JSON.parse(buf.split('\n')[0]) as { nodes: Array<{ pid: number }> }).nodes[0].pid;
            child.kill('SIGINT');
            setTimeout(() => child.kill('SIGINT'), 5);
          }
        });
      },
    });
    expect(r.code).toBe(130);
    expect(pid).toBeGreaterThan(0);
    expect(() => process.kill(pid, 0)).toThrow();
  }, 60_000);

  it('stack tokens prints the identities the swarm derives from the same seed and secret', async () => {
    const r = await runCli(['stack', 'tokens', '--seed', 'fleet-a', '--agents', '3', '--secret', 'k']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(deriveFleet('fleet-a', 'k', 3).map((a) => `${a.id} ${a.token}`));
  });

  it.each([
    [['stack', 'up', 'mesh'], 'rmmscale: TOPOLOGY: expected single, split2 … split16 (split3 is the article\'s layout), relays1 … relays16 (relays = relays3), or a .yaml/.json topology file, got "mesh"'],
    [['stack', 'up', 'single', '--profile', 'fast'], 'rmmscale: --profile: expected none, automate, or a .yaml/.json profile file, got "fast"'],
    [['stack', 'tokens', '--agents', '0'], 'rmmscale: --agents: expected a whole number from 1 to 1000000, got "0"'],
  ])('%j: one line, exit 2', async (args, line) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(line);
  });
});
