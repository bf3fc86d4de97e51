import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { deriveAgent, generateSecret, DEFAULT_SEED } from '../src/core/identity.js';
import { Rng } from '../src/core/random.js';
import { PayloadFactory } from '../src/swarm/payloads.js';
import { median, runSwarmCli, type BenchRow } from './lib.js';

/** The stack's secret for this bench (no default secret exists). */
const SECRET = generateSecret();

/**
 * Closed-loop throughput against a fast third-party server: nginx (one worker, `return 200`), the
 * same POST check-in from wrk (one thread, the fastest common generator), autocannon and
 * `rmmscale swarm --rate max` with one and with two worker processes, 100 connections each, in the
 * same session. nginx's own stub_status counts what was served, so no tool grades itself. Needs
 * the Debian packages `wrk` and `nginx-light` (`apt-get install wrk nginx-light`); not part of CI.
 */
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

interface Nginx {
  url: string;
  served(): Promise<number>;
  stop(): Promise<void>;
}

async function startNginx(dir: string): Promise<Nginx> {
  const port = await freePort();
  const statusPort = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:${port}; location / { default_type application/json; return 200 '{"ok":true,"commands":[],"nextCheckinSec":60}'; } }
  server { listen 127.0.0.1:${statusPort}; location = /status { stub_status; } }
}
`,
  );
  const proc: ChildProcess = spawn(NGINX!, ['-c', conf, '-p', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const statusUrl = `http://127.0.0.1:${statusPort}/status`;
  const served = async (): Promise<number> => {
    const text = await (await fetch(statusUrl)).text();
    // "Active connections: 1 \n server accepts handled requests\n 1 1 1 \n…"
    const m = /\n\s*(\d+)\s+(\d+)\s+(\d+)/.exec(text);
    if (!m) throw new Error(`nginx stub_status: unexpected ${JSON.stringify(text.slice(0, 80))}`);
    return Number(m[3]);
  };
  for (let i = 0; ; i++) {
    try {
      await served();
      break;
    } catch (err) {
      if (i >= 50 || proc.exitCode !== null) throw new Error(`nginx did not start: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url: `http://127.0.0.1:${port}`,
    served,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGQUIT');
      }),
  };
}

type Tool = 'wrk' | 'autocannon' | 'rmmscale-1' | 'rmmscale-2';

export async function benchNginx(opts: { rounds: number; durationSec: number; connections: number }): Promise<BenchRow[]> {
  if (!NGINX || spawnSync('wrk', ['--version']).error) throw new Error('nginx: needs wrk and nginx (apt-get install wrk nginx-light)');
  const agent = deriveAgent(DEFAULT_SEED, SECRET, 0);
  const body = new PayloadFactory(DEFAULT_SEED).body('checkin', agent, 1, new Rng('bench'));
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${agent.token}`, 'x-agent-id': agent.id };
  const dir = mkdtempSync(join(tmpdir(), 'rmmscale-nginx-'));
  const lua = join(dir, 'post.lua');
  writeFileSync(lua, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\n${Object.entries(headers).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`).join('\n')}\n`);
  const rates: Record<Tool, number[]> = { wrk: [], autocannon: [], 'rmmscale-1': [], 'rmmscale-2': [] };
  const tools: Tool[] = ['wrk', 'autocannon', 'rmmscale-1', 'rmmscale-2'];
  try {
    for (let round = 0; round < opts.rounds; round++) {
      // Rotate the order so no tool always meets the warmest (or the noisiest) machine.
      const order = tools.map((_, i) => tools[(i + round) % tools.length]);
      for (const tool of order) {
        const nginx = await startNginx(dir);
        try {
          const before = await nginx.served();
          const url = `${nginx.url}/agent/v1/checkin`;
          if (tool === 'wrk') {
            const r = spawnSync('wrk', ['-t1', `-c${opts.connections}`, `-d${opts.durationSec}s`, '-s', lua, url], { encoding: 'utf8', timeout: (opts.durationSec + 30) * 1000 });
            if (r.status !== 0) throw new Error(`wrk exited ${r.status}: ${r.stderr}`);
          } else if (tool === 'autocannon') {
            await autocannon({ url, connections: opts.connections, duration: opts.durationSec, method: 'POST', headers, body });
          } else {
            const workers = tool === 'rmmscale-1' ? '1' : '2';
            await runSwarmCli(
              ['--target', nginx.url, '--agents', '1000', '--rate', 'max', '--connections', String(opts.connections), '--workers', workers, '--duration', `${opts.durationSec}s`],
              (opts.durationSec + 60) * 1000,
            );
          }
          rates[tool].push(((await nginx.served()) - before) / opts.durationSec);
        } finally {
          await nginx.stop();
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const wrk = median(rates.wrk);
  const r2 = (x: number): number => Math.round(x * 100) / 100;
  const rounds = (t: Tool): string => rates[t].map(Math.round).join('/');
  return (['rmmscale-1', 'rmmscale-2', 'autocannon'] as const).map((t) => {
    const x = median(rates[t]);
    return {
      bench: 'nginx',
      metric: `requests/s against nginx (1 worker), ${opts.connections} connections, POST check-in: ${t === 'autocannon' ? 'autocannon' : `rmmscale --rate max, ${t.slice(-1)} worker(s)`} (median of ${opts.rounds})`,
      rmmscale: Math.round(x),
      peer: Math.round(wrk),
      peerName: 'wrk -t1',
      ratio: r2(x / wrk),
      target: t === 'autocannon' ? 'peer, for scale' : '≥ 0.7× wrk',
      pass: t === 'autocannon' ? true : x / wrk >= 0.7,
      note: `rounds: ${t} ${rounds(t)}, wrk ${rounds('wrk')}`,
    };
  });
}
