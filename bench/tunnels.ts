import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { HostCpuSampler } from '../src/core/host.js';
import { round } from '../src/core/units.js';
import { fmtPct } from '../src/core/format.js';
import { runSwarmCli, type BenchRow } from './lib.js';

/**
 * Tunnel scale: N concurrent WebSocket agents held on this machine against a multi-process ws
 * server (one shard per process, each on its own port, pinging every 30 s). rmmscale's swarm
 * against the bare minimum a tunnel client can be (plain `ws` sockets, no identities, no
 * measurement), with the same process count, source addresses, connect rate and telemetry frames.
 */

interface Shard {
  proc: ChildProcess;
  url: string;
}

function forkFixture(name: string, env: NodeJS.ProcessEnv): ChildProcess {
  return fork(fileURLToPath(new URL(`./fixtures/${name}.js`, import.meta.url)), [], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

async function startShards(n: number): Promise<Shard[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const proc = forkFixture('tunnel-server', { PING_MS: '30000' });
      const port = await new Promise<number>((r) => proc.once('message', (m: { port: number }) => r(m.port)));
      return { proc, url: `ws://127.0.0.1:${port}/agent/v1/tunnel` };
    }),
  );
}

function ask<T>(proc: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve) => {
    proc.once('message', (m: T) => resolve(m));
    proc.send({ type });
  });
}

function stopAll(procs: ChildProcess[]): Promise<void> {
  return Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((r) => {
          if (p.exitCode !== null) return r();
          p.once('exit', () => r());
          p.kill('SIGTERM');
        }),
    ),
  ).then(() => undefined);
}

export async function benchTunnels(o: { agents: number; shards: number; connectRatePerSec: number; idleSec: number }): Promise<BenchRow[]> {
  const connectSec = Math.ceil(o.agents / o.connectRatePerSec);
  // Both sides measure the same window: from 10 s after 99% of the tunnels are open, for idleSec.
  // Ours runs for a fixed time, so it gets room for a connect phase half again as slow as asked.
  const SETTLE_SEC = 10;
  const durationSec = Math.ceil(connectSec * 1.5) + SETTLE_SEC + o.idleSec;

  // rmmscale: telemetry once an hour, so the fleet is idle but for the 30 s pings.
  let shards = await startShards(o.shards);
  const urls = shards.map((s) => s.url).join(',');
  let ours;
  try {
    ours = await runSwarmCli(
      // The connect phase is the swarm's warm-up: a worker compacts its heap after its opening
      // wave only there, never inside a measured window (src/swarm/compact.ts).
      ['--mode', 'ws', '--target', urls, '--agents', String(o.agents), '--checkin-interval', '1h', '--connect-rate', `${o.connectRatePerSec}/s`, '--warmup', `${durationSec - o.idleSec}s`, '--duration', `${o.idleSec}s`],
      (durationSec + 180) * 1000,
    );
  } finally {
    await stopAll(shards.map((s) => s.proc));
  }
  // Baseline: the same worker processes holding one tunnel each, so the marginal cost per agent
  // can be told apart from what a process costs before it holds anything.
  let baseShards = await startShards(1);
  let oursBase;
  try {
    oursBase = await runSwarmCli(
      ['--mode', 'ws', '--target', baseShards[0].url, '--agents', String(ours.config.workers), '--workers', String(ours.config.workers), '--checkin-interval', '1h', '--warmup', '2s', '--duration', '10s'],
      120_000,
    );
  } finally {
    await stopAll(baseShards.map((s) => s.proc));
  }
  const oursBaseRss = Math.max(...oursBase.series.filter((p) => p.tSec <= 12).map((p) => p.generatorRssBytes));
  // Warm-up seconds included: the connect phase is in them.
  const series = ours.series.filter((p) => p.tSec <= durationSec);
  const held = Math.max(...series.map((p) => p.connected));
  const t99 = series.findIndex((p) => p.connected >= o.agents * 0.99);
  const oursConnectRate = t99 >= 0 ? (o.agents * 0.99) / series[t99].tSec : NaN;
  const idle = t99 >= 0 ? series.slice(t99 + 1 + SETTLE_SEC, t99 + 1 + SETTLE_SEC + o.idleSec) : [];
  if (idle.length < o.idleSec) throw new Error(`tunnels: only ${idle.length} s of the ${o.idleSec} s idle window fit in the run (99% connected at ${t99 >= 0 ? series[t99].tSec : 'never'} s)`);
  // CPU time over the window divided by its length: exact even when a worker's intervals are
  // uneven. Every client process counts: the workers and the coordinator that merges their reports.
  const oursWorkerCpu = idle.reduce((a, p) => a + p.generatorCpuUs, 0) / 1e6 / idle.length;
  const oursCoordinatorCpu = idle.reduce((a, p) => a + p.coordinatorCpuUs, 0) / 1e6 / idle.length;
  const oursCpu = oursWorkerCpu + oursCoordinatorCpu;
  const oursRss = Math.max(...idle.map((p) => p.generatorRssBytes));
  // Host steal over the window: CPU the hypervisor took is not in anyone's CPU time, but a window
  // with steal is a window where the machine was not ours alone.
  const steals = idle.map((p) => p.hostSteal).filter((x): x is number => x !== null);
  const oursSteal = steals.length ? steals.reduce((a, b) => a + b, 0) / steals.length : null;
  const workers = ours.config.workers;

  // The peer: the same number of client processes, addresses, connect rate and telemetry, bare ws sockets.
  shards = await startShards(o.shards);
  const peers: ChildProcess[] = [];
  let peerOpen = 0;
  let peerRss = 0;
  let peerCpu = 0;
  let peerConnectRate = NaN;
  let peerBaseRss = 0;
  let peerSteal: number | null = null;
  try {
    // Peer baseline: the same processes with no sockets.
    baseShards = await startShards(1);
    const idlePeers = Array.from({ length: workers }, () => forkFixture('ws-peer-client', { URLS: baseShards[0].url, COUNT: '1' }));
    await new Promise((r) => setTimeout(r, 3000));
    peerBaseRss = (await Promise.all(idlePeers.map((p) => ask<{ rssBytes: number }>(p, 'stats')))).reduce((a, x) => a + x.rssBytes, 0);
    await stopAll(idlePeers);
    await stopAll(baseShards.map((s) => s.proc));
    const per = Math.ceil(o.agents / workers);
    const t0 = performance.now();
    for (let w = 0; w < workers; w++) {
      peers.push(
        forkFixture('ws-peer-client', {
          URLS: shards.map((s) => s.url).join(','),
          COUNT: String(Math.min(per, o.agents - w * per)),
          ADDRS: ours.config.sourceAddresses.join(','),
          RATE: String(o.connectRatePerSec / workers),
          // The swarm's telemetry: one frame per agent per hour, split over the processes.
          TEL_PER_SEC: String(o.agents / 3600 / workers),
        }),
      );
    }
    type Stats = { open: number; rssBytes: number; cpu: { user: number; system: number } };
    const total = async (): Promise<Stats[]> => Promise.all(peers.map((p) => ask<Stats>(p, 'stats')));
    for (let i = 0; i < (connectSec + 60) * 10; i++) {
      await new Promise((r) => setTimeout(r, 100));
      if ((await total()).reduce((a, s) => a + s.open, 0) >= o.agents * 0.99) {
        peerConnectRate = (o.agents * 0.99) / ((performance.now() - t0) / 1000);
        break;
      }
    }
    await new Promise((r) => setTimeout(r, SETTLE_SEC * 1000));
    const before = await total();
    const hostCpu = new HostCpuSampler();
    const tIdle = performance.now();
    await new Promise((r) => setTimeout(r, o.idleSec * 1000));
    const after = await total();
    peerSteal = hostCpu.sample()?.steal ?? null;
    const idleMs = performance.now() - tIdle;
    peerOpen = after.reduce((a, s) => a + s.open, 0);
    peerRss = after.reduce((a, s) => a + s.rssBytes, 0);
    peerCpu = after.reduce((a, s, i) => a + (s.cpu.user + s.cpu.system - before[i].cpu.user - before[i].cpu.system) / 1000 / idleMs, 0);
  } finally {
    await stopAll(peers);
    await stopAll(shards.map((s) => s.proc));
  }
  const kb = (b: number): number => round(b / o.agents / 1024, 2);
  return [
    { bench: 'tunnels', metric: `concurrent tunnels held (${workers} client processes, ${o.shards} server processes)`, rmmscale: held, peer: peerOpen, peerName: 'bare ws clients', ratio: round(held / peerOpen, 2), target: `${o.agents}`, pass: held >= o.agents },
    {
      bench: 'tunnels',
      metric: 'generator RSS per idle agent (KB, marginal: above the same processes holding ~no tunnels)',
      rmmscale: kb(oursRss - oursBaseRss),
      peer: kb(peerRss - peerBaseRss),
      peerName: 'bare ws clients',
      ratio: round((oursRss - oursBaseRss) / (peerRss - peerBaseRss), 2),
      target: '≤ 8 KB',
      pass: kb(oursRss - oursBaseRss) <= 8,
      note: `whole processes, baseline included: rmmscale ${kb(oursRss)} KB (${workers} workers, ${Math.round(oursBaseRss / 2 ** 20)} MB before any tunnel), bare ws ${kb(peerRss)} KB`,
    },
    { bench: 'tunnels', metric: 'connects per second (to 99% connected)', rmmscale: Math.round(oursConnectRate), peer: Math.round(peerConnectRate), peerName: 'bare ws clients', ratio: round(oursConnectRate / peerConnectRate, 2), target: '≥ 3,000/s', pass: oursConnectRate >= 3000 },
    {
      bench: 'tunnels',
      metric: `idle CPU, all client processes, 30 s server ping (% of one core over ${o.idleSec} s)`,
      rmmscale: Math.round(oursCpu * 1000) / 10,
      peer: Math.round(peerCpu * 1000) / 10,
      peerName: 'bare ws clients',
      ratio: round(oursCpu / peerCpu, 2),
      target: '≤ 10%',
      pass: oursCpu <= 0.1,
      note:
        `workers ${Math.round(oursWorkerCpu * 1000) / 10}% + coordinator ${Math.round(oursCoordinatorCpu * 1000) / 10}%; ` +
        `host steal in the window: rmmscale ${fmtPct(oursSteal, 1)}, bare ws ${fmtPct(peerSteal, 1)}`,
    },
  ];
}
