import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { round } from '../src/core/units.js';
import type { SwarmResult } from '../src/swarm/result.js';
import { runSwarmCli, type BenchRow } from './lib.js';

/**
 * Sharded tunnels: N WebSocket agents held on this machine as one swarm (1 shard) and as `shards`
 * swarm processes (`--shard i/n`, one shared --start-at), against the same multi-process ws server.
 * Reports, for both, the connect rate (tunnels open ÷ seconds until 99% were open, from the
 * per-second series; the shards' series summed second by second on their shared t = 0) and RSS
 * per tunnel (every worker's RSS at the end of the run, summed, ÷ tunnels: the whole cost, not the
 * marginal one bench/tunnels.ts reports). The peer is the unsharded run: ratio = sharded ÷ one.
 */

function startServers(n: number): Promise<Array<{ proc: ChildProcess; url: string }>> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const proc = fork(fileURLToPath(new URL('./fixtures/tunnel-server.js', import.meta.url)), [], { env: { ...process.env, PING_MS: '30000' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const port = await new Promise<number>((r) => proc.once('message', (m: { port: number }) => r(m.port)));
      return { proc, url: `ws://127.0.0.1:${port}/agent/v1/tunnel` };
    }),
  );
}

/** Seconds until 99% of `agents` tunnels were open, and the RSS of every worker at the end, over the runs' summed series. */
function measure(results: SwarmResult[], agents: number): { connectRatePerSec: number; rssPerTunnelKb: number; connected: number } {
  const connected = new Map<number, number>();
  const rss = new Map<number, number>();
  for (const r of results)
    for (const p of r.series) {
      connected.set(p.tSec, (connected.get(p.tSec) ?? 0) + p.connected);
      rss.set(p.tSec, (rss.get(p.tSec) ?? 0) + p.generatorRssBytes);
    }
  const secs = [...connected.keys()].sort((a, b) => a - b);
  const at99 = secs.find((t) => connected.get(t)! >= agents * 0.99) ?? Infinity;
  const held = Math.max(0, ...connected.values());
  // The last second in which every run still reported (before the drain), at its fullest.
  const lastFull = secs.filter((t) => connected.get(t)! >= held * 0.99).pop() ?? secs[secs.length - 1];
  return { connectRatePerSec: round(agents / at99, 0), rssPerTunnelKb: round((rss.get(lastFull) ?? 0) / Math.max(1, held) / 1024, 2), connected: held };
}

export async function benchShards(o: { agents: number; shards: number; servers: number; connectRatePerSec: number; holdSec: number }): Promise<BenchRow[]> {
  const servers = await startServers(o.servers);
  const urls = servers.map((s) => s.url).join(',');
  const durationSec = Math.ceil((o.agents / o.connectRatePerSec) * 1.5) + o.holdSec;
  const args = ['--mode', 'ws', '--target', urls, '--agents', String(o.agents), '--checkin-interval', '5m', '--duration', `${durationSec}s`, '--connect-rate', `${o.connectRatePerSec}/s`, '--seed', 'bench-shards'];
  const timeoutMs = (durationSec + 120) * 1000;
  try {
    const one = measure([await runSwarmCli(args, timeoutMs)], o.agents);
    const startAt = String(Date.now() + 8000);
    const parts = await Promise.all(Array.from({ length: o.shards }, (_, i) => runSwarmCli([...args, '--shard', `${i}/${o.shards}`, '--start-at', startAt], timeoutMs)));
    const many = measure(parts, o.agents);
    const note = (m: typeof one): string => `${m.connected} tunnels held`;
    // A side that never had 99% of its tunnels open has no connect rate to compare: a failure, not a figure.
    const bothOpened = Number.isFinite(many.connectRatePerSec) && many.connectRatePerSec > 0 && one.connectRatePerSec > 0;
    return [
      { bench: 'shards', metric: `connects/s, ${o.agents} tunnels, ${o.shards} shard processes vs 1`, rmmscale: many.connectRatePerSec, peer: one.connectRatePerSec, peerName: '1 shard', ratio: round(many.connectRatePerSec / one.connectRatePerSec, 2), target: '99% of the tunnels open on both sides', pass: bothOpened, note: `${note(many)} vs ${note(one)}` },
      { bench: 'shards', metric: `RSS per tunnel (KB, whole), ${o.shards} shards vs 1`, rmmscale: many.rssPerTunnelKb, peer: one.rssPerTunnelKb, peerName: '1 shard', ratio: round(many.rssPerTunnelKb / one.rssPerTunnelKb, 2), target: 'report', pass: true },
    ];
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => (s.proc.exitCode !== null ? r() : (s.proc.once('exit', () => r()), s.proc.kill('SIGTERM'))))));
  }
}
