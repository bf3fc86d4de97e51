import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { deriveAgent, generateSecret } from '../src/core/identity.js';
import { round } from '../src/core/units.js';
import { startStack } from '../src/stack/launcher.js';
import { RELAY_BATCH_ENV } from '../src/stack/roles/relay.js';
import { namedTopology } from '../src/stack/topology.js';
import { argNum, median, runIfMain, type BenchRow } from './lib.js';

/**
 * Relay telemetry throughput: samples/s committed to the database and acknowledged, through one
 * relay (relays1: db node on SQLite, app node, relay node, each its own process), with the
 * relay's batching (500 samples / 250 ms, 4 batches in flight) against the same relay writing
 * every sample on its own (batch size 1, 32 writes in flight: the db node's connection pool) in
 * the same run. The load is closed-loop: N tunnels each keep one frame outstanding and send the
 * next on its ack, so the rate is what the relay + database path sustains. Acks are counted by
 * the clients and checked against the telemetry table (acked ≤ rows). Rounds rotate the order.
 *
 *   npm run build && node dist/bench/relay.js [--rounds 3] [--duration 5] [--tunnels 2000]
 */

type Variant = 'batched' | 'unbatched';
const POLICY: Record<Variant, string> = { batched: '500:250:4', unbatched: '1:0:32' };

interface Measured {
  ratePerSec: number;
  ackP50Ms: number;
  ackP99Ms: number;
  rows: number;
  acked: number;
}

async function measure(variant: Variant, tunnels: number, durationSec: number): Promise<Measured> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rmmscale-bench-relay-'));
  const before = process.env[RELAY_BATCH_ENV];
  process.env[RELAY_BATCH_ENV] = POLICY[variant];
  const secret = generateSecret();
  let stack: Awaited<ReturnType<typeof startStack>> | null = null;
  const sockets: WebSocket[] = [];
  try {
    stack = await startStack(namedTopology('relays1'), { secret, dataDir, stopGraceMs: 3000 });
    const relay = stack.nodes.find((n) => n.role === 'relay')!;
    const url = `${relay.url.replace(/^http/, 'ws')}/agent/v1/tunnel`;
    let counting = false;
    let stopped = false;
    let acked = 0;
    let ackedTotal = 0;
    const latenciesMs: number[] = [];
    // Connect in chunks of 200 (the listen backlog is 511).
    for (let from = 0; from < tunnels; from += 200) {
      await Promise.all(
        Array.from({ length: Math.min(200, tunnels - from) }, async (_, k) => {
          const a = deriveAgent('bench-relay', secret, from + k);
          const ws = new WebSocket(url, { headers: { authorization: `Bearer ${a.token}`, 'x-agent-id': a.id }, perMessageDeflate: false });
          sockets.push(ws);
          await new Promise<void>((resolve, reject) => {
            ws.once('open', () => resolve());
            ws.once('error', reject);
          });
        }),
      );
    }
    // One frame outstanding per tunnel: each ack sends the next (closed loop).
    for (const ws of sockets) {
      let seq = 0;
      let sentAt = 0;
      const send = (): void => {
        sentAt = performance.now();
        ws.send(`{"t":"tel","seq":${++seq},"cpuPct":${seq % 100},"memPct":40}`);
      };
      ws.on('message', () => {
        ackedTotal++;
        if (counting) {
          acked++;
          if (latenciesMs.length < 200_000) latenciesMs.push(performance.now() - sentAt);
        }
        if (!stopped) send();
      });
      send();
    }
    await new Promise((r) => setTimeout(r, 1000)); // warm-up: JIT, pools, first batches
    counting = true;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, durationSec * 1000));
    counting = false;
    const elapsedSec = (performance.now() - t0) / 1000;
    stopped = true;
    await new Promise((r) => setTimeout(r, 600)); // the last batches commit and ack
    const db = new Database(join(dataDir, 'rmmscale.sqlite'), { readonly: true, fileMustExist: true });
    const rows = (db.prepare('SELECT COUNT(*) AS n FROM telemetry').get() as { n: number }).n;
    db.close();
    if (ackedTotal > rows) throw new Error(`bench relay: ${ackedTotal} frames acked but only ${rows} rows in the database (${variant})`);
    latenciesMs.sort((x, y) => x - y);
    const q = (p: number): number => latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(p * latenciesMs.length))] ?? NaN;
    return { ratePerSec: acked / elapsedSec, ackP50Ms: q(0.5), ackP99Ms: q(0.99), rows, acked: ackedTotal };
  } finally {
    for (const ws of sockets) ws.terminate();
    await stack?.stop();
    if (before === undefined) delete process.env[RELAY_BATCH_ENV];
    else process.env[RELAY_BATCH_ENV] = before;
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function benchRelay(opts: { rounds: number; durationSec: number; tunnels: number }): Promise<BenchRow[]> {
  const variants: Variant[] = ['batched', 'unbatched'];
  const runs: Record<Variant, Measured[]> = { batched: [], unbatched: [] };
  for (let roundIndex = 0; roundIndex < opts.rounds; roundIndex++) {
    for (const v of roundIndex % 2 === 0 ? variants : [...variants].reverse()) runs[v].push(await measure(v, opts.tunnels, opts.durationSec));
  }
  const rate = (v: Variant): number => median(runs[v].map((m) => m.ratePerSec));
  const p = (v: Variant, k: 'ackP50Ms' | 'ackP99Ms'): number => round(median(runs[v].map((m) => m[k])), 1);
  const batched = rate('batched');
  const unbatched = rate('unbatched');
  const ratio = round(batched / unbatched, 2);
  return [
    {
      bench: 'relay',
      metric: `telemetry samples/s committed and acked through one relay, batched (500 / 250 ms) vs unbatched (1 per write), ${opts.tunnels} tunnels closed-loop (median of ${opts.rounds})`,
      rmmscale: Math.round(batched),
      peer: Math.round(unbatched),
      peerName: 'unbatched',
      ratio,
      target: '≥ 3× unbatched',
      pass: ratio >= 3,
      note: `rounds: batched ${runs.batched.map((m) => Math.round(m.ratePerSec)).join('/')}, unbatched ${runs.unbatched.map((m) => Math.round(m.ratePerSec)).join('/')}; ack p50/p99 ms batched ${p('batched', 'ackP50Ms')}/${p('batched', 'ackP99Ms')}, unbatched ${p('unbatched', 'ackP50Ms')}/${p('unbatched', 'ackP99Ms')}`,
    },
  ];
}

runIfMain(import.meta.url, 'relay', (args) => benchRelay({ rounds: argNum(args, '--rounds', 3), durationSec: argNum(args, '--duration', 5), tunnels: argNum(args, '--tunnels', 2000) }));
