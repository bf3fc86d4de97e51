import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deriveFleet } from '../../src/core/identity.js';
import { alive } from '../helpers/fork-node.js';
import { runCli } from '../helpers/spawn-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'rmmscale-cli-stack-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Line {
  event: string;
  entry: string;
  nodes: Array<{ name: string; role: string; tier: string; url: string; metricsUrl: string; pid: number }>;
  signal?: string;
}

describe('rmmscale stack up (the real binary)', () => {
  it('a YAML topology with --json: ready line, node-exit when a node dies, stopped on SIGTERM, exit 130, no process left', async () => {
    const topo = join(dir, 'pair.yaml');
    writeFileSync(topo, 'name: pair\nnodes:\n  - {name: db, role: db}\n  - {name: web-1, role: web}\n  - {name: web-2, role: web}\n');
    const lines: Line[] = [];
    const r = await runCli(['stack', 'up', topo, '--json', '--profile', 'automate', '--secret', 'cli'], {
      timeoutMs: 40_000,
      onStart: (child) => {
        let buf = '';
        child.stdout!.on('data', (d: Buffer) => {
          buf += d.toString();
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = JSON.parse(buf.slice(0, nl)) as Line;
            buf = buf.slice(nl + 1);
            lines.push(line);
            if (line.event === 'ready') process.kill(line.nodes[2].pid, 'SIGKILL');
            if (line.event === 'node-exit') child.kill('SIGTERM');
          }
        });
      },
    });
    expect(r.code).toBe(130);
    expect(lines.map((l) => l.event)).toEqual(['ready', 'node-exit', 'stopped']);
    const ready = lines[0];
    expect(ready.nodes.map((n) => `${n.name}:${n.role}:${n.tier}`)).toEqual(['db:db:db', 'web-1:web:web-agent', 'web-2:web:web-agent']);
    expect(ready.entry).toBe(ready.nodes[1].url);
    for (const n of ready.nodes) {
      expect(Object.keys(n).sort()).toEqual(['metricsUrl', 'name', 'pid', 'role', 'tier', 'url']);
      expect(n.metricsUrl).toBe(`${n.url}/metrics`);
    }
    expect(lines[1]).toMatchObject({ event: 'node-exit', entry: ready.entry, nodes: [ready.nodes[2]], signal: 'SIGKILL' });
    expect(lines[2]).toMatchObject({ event: 'stopped', entry: ready.entry, nodes: ready.nodes });
    for (const n of ready.nodes) expect(alive(n.pid)).toBe(false);
  }, 60_000);

  it('without --json: one line per node with its role and URL', async () => {
    let out = '';
    let sent = false;
    const r = await runCli(['stack', 'up', 'single'], {
      timeoutMs: 50_000, // start-up under a full parallel suite on 2 cores can take a while
      onStart: (child) =>
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (!sent && out.includes('Ctrl-C')) {
            sent = true;
            child.kill('SIGINT');
          }
        }),
    });
    expect(r.code).toBe(130);
    expect(r.stdout).toMatch(
      /^stack single \(profile none, db sqlite, proxy builtin\) is up; entry http:\/\/127\.0\.0\.1:\d+\n {2}single {9}single http:\/\/127\.0\.0\.1:\d+ +metrics http:\/\/127\.0\.0\.1:\d+\/metrics {2}pid \d+\nsecret: [A-Za-z0-9_-]{43} \(generated; shown once\)\nstate: \S+\/stack-\d+\.json \(mode 0600: the secret, for rmmscale swarm \/ stack tokens on this host\)\nCtrl-C stops every node\.\n$/,
    );
  }, 60_000);

  it.each([
    [['stack', 'up', 'mesh'], `rmmscale: TOPOLOGY: expected single, split2 … split16 (split3 is the article's layout), relays1 … relays16 (relays = relays3), or a .yaml/.json topology file, got "mesh"`],
    [['stack', 'up'], `rmmscale: TOPOLOGY: expected single, split2 … split16 (split3 is the article's layout), relays1 … relays16 (relays = relays3), or a .yaml/.json topology file, got nothing`],
    [['stack', 'up', 'single', '--profile', 'fast'], 'rmmscale: --profile: expected none, automate, or a .yaml/.json profile file, got "fast"'],
    [['stack', 'up', 'single', '--proxy', 'nginx'], 'rmmscale: --proxy: expected builtin or haproxy, got "nginx"'],
    [['stack', 'up', 'single', '--proxy', 'haproxy'], 'rmmscale: --proxy: expected builtin for topology single (haproxy needs a proxy node: split2 … split16), got "haproxy"'],
    [['stack', 'up', 'single', '--db', 'mysql'], 'rmmscale: --db: expected sqlite or postgres, got "mysql"'],
    [['stack', 'up', 'single', '--db', 'postgres'], 'rmmscale: --db-url: expected a postgres://USER@127.0.0.1/DB URL (or env DATABASE_URL) with --db postgres, got nothing'],
    [['stack', 'up', 'single', '--db', 'postgres', '--db-url', 'postgres://10.1.2.3/x'], 'rmmscale: --db-url: expected a loopback host (127.0.0.0/8, ::1, localhost) or a local socket, got "postgres://10.1.2.3/x"'],
    [['stack', 'up', 'single', '--port-base', '80'], 'rmmscale: --port-base: expected a whole number from 1024 to 65534, got "80"'],
    [['stack', 'launch'], 'rmmscale: ACTION: expected up or tokens or fault, got "launch"'],
    [['stack', 'tokens', '--agents', '0'], 'rmmscale: --agents: expected a whole number from 1 to 1000000, got "0"'],
  ])('%j: one line naming the flag, value and what is allowed; exit 2', async (args, line) => {
    const r = await runCli(args, { env: { DATABASE_URL: '' } });
    expect(r.stderr.trim()).toBe(line);
    expect(r.code).toBe(2);
  });

  it('a topology file with problems lists every one (exit 2)', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'nodes:\n  - {name: a, role: cache}\n  - {name: a, role: web, serves: all}\n');
    const r = await runCli(['stack', 'up', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([`rmmscale: ${bad}: nodes[0].role: expected one of single, web, app, db, proxy, relay, analytics, got "cache"`, `rmmscale: ${bad}: nodes[1].serves: expected one of agent, user, both, got "all"`]);
  });
});

describe('rmmscale stack tokens', () => {
  it('prints the identities the swarm derives from the same seed and secret (text and --json)', async () => {
    const fleet = deriveFleet('fleet-b', 'k2', 3);
    const text = await runCli(['stack', 'tokens', '--seed', 'fleet-b', '--agents', '3', '--secret', 'k2']);
    expect(text.code).toBe(0);
    expect(text.stdout).toBe(fleet.map((a) => `${a.id} ${a.token}\n`).join(''));
    const json = await runCli(['stack', 'tokens', '--seed', 'fleet-b', '--agents', '3', '--secret', 'k2', '--json']);
    expect(json.code).toBe(0);
    expect(json.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual(fleet.map((a) => ({ index: a.index, id: a.id, token: a.token, hostname: a.hostname, os: a.os, client: a.client })));
  });
});
