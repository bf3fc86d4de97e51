import { fork, type ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { deriveAgent, generateSecret, DEFAULT_SEED } from '../src/core/identity.js';
import { Rng } from '../src/core/random.js';
import { round } from '../src/core/units.js';
import { startHaproxy } from '../src/stack/proxy/haproxy.js';
import type { NodeReadyMessage, NodeSpec } from '../src/stack/types.js';
import { PayloadFactory } from '../src/swarm/payloads.js';
import { argNum, median, runIfMain, startMinimalServer, type BenchRow } from './lib.js';

/** The stack's secret for this bench (no default secret exists). */
const SECRET = generateSecret();

/**
 * Proxy overhead: requests/s through the built-in proxy (its own process, the real node runtime)
 * vs straight to the same backend, in the same run, with the same autocannon load (POST check-in,
 * ~1.2 KB body). With haproxy installed, HAProxy with the equivalent config is measured too.
 * Counted by the backend's own request count. Rounds rotate the order to share noise.
 *
 *   npm run build && node dist/bench/proxy.js [--rounds 5] [--duration 8] [--connections 100]
 */

const NODE_MAIN = fileURLToPath(new URL('../src/stack/node-main.js', import.meta.url));
const NODE_RELAY = fileURLToPath(new URL('./node-relay.js', import.meta.url));

/**
 * CPU seconds a process has used (user + system), from /proc; NaN where there is none. On a
 * shared host the CPU each process spends per request is steadier than the request rate.
 */
function cpuSec(pid: number | undefined): number {
  const t = cpuTicks(pid);
  return (t[0] + t[1]) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** User-mode CPU seconds alone: the process's own code, not the kernel's socket work. */
function userSec(pid: number | undefined): number {
  return cpuTicks(pid)[0] / 100;
}

function cpuTicks(pid: number | undefined): [number, number] {
  if (pid === undefined) return [NaN, NaN];
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return [Number(f[11]), Number(f[12])];
  } catch {
    return [NaN, NaN];
  }
}

/** SIGTERM a front this bench forked, by its handle; resolves once it exited. */
function stopChild(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
  });
}

async function startBuiltinProxy(backendUrl: string): Promise<{ url: string; pid: number | undefined; stop(): Promise<void> }> {
  const spec: NodeSpec = {
    name: 'proxy',
    role: 'proxy',
    tier: 'proxy',
    host: '127.0.0.1',
    port: 0,
    secret: SECRET,
    proxy: { agentPool: [backendUrl], userPool: [], names: { [backendUrl]: 'web-agent-1' } },
  };
  const proc = fork(NODE_MAIN, [], { env: { ...process.env, RMMSCALE_NODE_SPEC: JSON.stringify(spec) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = await new Promise<NodeReadyMessage>((resolve, reject) => {
    proc.once('message', (m: NodeReadyMessage) => (m.type === 'ready' ? resolve(m) : reject(new Error(JSON.stringify(m)))));
    proc.once('exit', (c) => reject(new Error(`proxy node exited ${c}`)));
  });
  return {
    url: ready.url,
    pid: proc.pid,
    stop: () => stopChild(proc),
  };
}

/** The floor: a bare Node TCP relay (bench/node-relay.ts), no HTTP work. */
async function startNodeRelay(backendUrl: string): Promise<{ url: string; pid: number | undefined; stop(): Promise<void> }> {
  const proc = fork(NODE_RELAY, [new URL(backendUrl).port], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('message', (m: { port: number }) => resolve(m.port));
    proc.once('exit', (c) => reject(new Error(`node relay exited ${c}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: proc.pid,
    stop: () => stopChild(proc),
  };
}

type Path = 'direct' | 'builtin' | 'haproxy' | 'node-relay';

export async function benchProxy(opts: { rounds: number; durationSec: number; connections: number }): Promise<BenchRow[]> {
  const agent = deriveAgent(DEFAULT_SEED, SECRET, 0);
  const body = new PayloadFactory(DEFAULT_SEED).body('checkin', agent, 1, new Rng('bench'));
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${agent.token}`, 'x-agent-id': agent.id };
  const withHaproxy = spawnSync(process.env.RMMSCALE_HAPROXY ?? 'haproxy', ['-v']).status === 0;
  const paths: Path[] = withHaproxy ? ['direct', 'builtin', 'haproxy', 'node-relay'] : ['direct', 'builtin', 'node-relay'];
  const rates: Record<Path, number[]> = { direct: [], builtin: [], haproxy: [], 'node-relay': [] };
  const p99: Record<Path, number[]> = { direct: [], builtin: [], haproxy: [], 'node-relay': [] };
  /** CPU µs per request: the load generator (this process), the backend, the proxy. */
  const cpuUs: Record<Path, Array<[number, number, number]>> = { direct: [], builtin: [], haproxy: [], 'node-relay': [] };
  /** The proxy's user-mode CPU µs per request (its own code and Node's, not the kernel's socket work). */
  const userUs: Record<Path, number[]> = { direct: [], builtin: [], haproxy: [], 'node-relay': [] };
  const server = await startMinimalServer();
  try {
    for (let roundIndex = 0; roundIndex < opts.rounds; roundIndex++) {
      const order = paths.map((_, i) => paths[(i + roundIndex) % paths.length]);
      for (const path of order) {
        const front =
          path === 'direct'
            ? { url: server.url, pid: undefined, stop: async () => undefined }
            : path === 'builtin'
              ? await startBuiltinProxy(server.url)
              : path === 'node-relay'
                ? await startNodeRelay(server.url)
                : await startHaproxy({ agentPool: [server.url], userPool: [], names: { [server.url]: 'web-agent-1' } });
        try {
          // Warm-up: connections and JIT, not counted.
          await autocannon({ url: `${front.url}/agent/v1/checkin`, connections: opts.connections, duration: 1, method: 'POST', headers, body });
          const before = await server.served();
          const cpu0 = [cpuSec(process.pid), cpuSec(server.proc.pid), cpuSec(front.pid)];
          const user0 = userSec(front.pid);
          const r = await autocannon({ url: `${front.url}/agent/v1/checkin`, connections: opts.connections, duration: opts.durationSec, method: 'POST', headers, body });
          const cpu1 = [cpuSec(process.pid), cpuSec(server.proc.pid), cpuSec(front.pid)];
          const user1 = userSec(front.pid);
          const served = (await server.served()) - before;
          rates[path].push(served / opts.durationSec);
          const us = (i: number): number => Math.round(((cpu1[i] - cpu0[i]) * 1e6) / served);
          cpuUs[path].push([us(0), us(1), path === 'direct' ? 0 : us(2)]);
          userUs[path].push(Math.round(((user1 - user0) * 1e6) / served * 10) / 10);
          p99[path].push(r.latency.p99);
        } finally {
          await front.stop();
        }
      }
    }
  } finally {
    await server.stop();
  }
  const direct = median(rates.direct);
  /**
   * What the CPU accounting alone predicts for the ratio, per round: with the cores saturated,
   * throughput goes as 1 / (CPU per request of every process on the path), so direct's
   * load + backend over the path's load + backend + proxy. Contention from other work on a shared
   * host moves this much less than the rates; it is a model, printed beside the measured ratio.
   */
  const cpuModel = (path: Exclude<Path, 'direct'>): string =>
    cpuUs[path].map((c, i) => round((cpuUs.direct[i][0] + cpuUs.direct[i][1]) / (c[0] + c[1] + c[2]), 2)).join('/');
  /**
   * The ratio is the median of the per-round ratios: each round measures direct and the path back
   * to back, so a round's two rates share that moment's contention (a paired design), where a
   * median of all direct rounds over a median of all path rounds pairs figures from different
   * moments. The ratio of the medians is printed beside it.
   */
  const row = (path: Exclude<Path, 'direct'>, target: string, min: number): BenchRow => {
    const rate = median(rates[path]);
    const perRound = rates[path].map((r, i) => r / rates.direct[i]);
    const ratio = median(perRound);
    return {
      bench: 'proxy',
      metric: `requests/s through the ${path} proxy vs direct, ${opts.connections} connections, POST check-in (ratio: median of ${opts.rounds} paired rounds)`,
      rmmscale: Math.round(rate),
      peer: Math.round(direct),
      peerName: 'direct',
      ratio: round(ratio, 2),
      target,
      pass: ratio >= min,
      note: `rounds: ${path} ${rates[path].map(Math.round).join('/')}, direct ${rates.direct.map(Math.round).join('/')}; ${path}/direct per round ${perRound.map((r) => round(r, 2)).join('/')}; ratio of the medians ${round(rate / direct, 2)}; p99 ms ${path} ${median(p99[path])}, direct ${median(p99.direct)}; CPU µs/request (load+backend+proxy) per round ${cpuUs[path].map((c) => c.join('+')).join(' / ')}, direct ${cpuUs.direct.map((c) => `${c[0]}+${c[1]}`).join(' / ')}; CPU-model ratio per round ${cpuModel(path)}; ${path}'s user-mode CPU µs/request per round ${userUs[path].join('/')} (the bare Node relay's: ${userUs['node-relay'].join('/')})`,
    };
  };
  const rows = [row('builtin', '≥ 0.5× direct (2 cores shared by load, proxy and backend)', 0.5)];
  if (withHaproxy) rows.push(row('haproxy', 'reference: HAProxy 2.6 on the same host', 0));
  rows.push(row('node-relay', "reference: the floor, a bare Node TCP relay with no HTTP work (bench/node-relay.ts)", 0));
  return rows;
}

runIfMain(import.meta.url, 'proxy', (args) => benchProxy({ rounds: argNum(args, '--rounds', 5), durationSec: argNum(args, '--duration', 8), connections: argNum(args, '--connections', 100) }));
