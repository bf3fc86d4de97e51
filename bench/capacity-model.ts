import { fork } from 'node:child_process';
import { join } from 'node:path';
import { Pool } from 'undici';
import { erlangC } from '../src/analysis/erlang-c.js';
import type { NodeHdrSnapshot } from '../src/core/protocol.js';
import { deriveKey } from '../src/core/identity.js';
import { Rng } from '../src/core/random.js';
import { round } from '../src/core/units.js';
import { decodeHistogram } from '../src/metrics/histogram.js';
import type { NodeFailedMessage, NodeReadyMessage, NodeSpec } from '../src/stack/types.js';
import { ROOT, runIfMain, type BenchRow } from './lib.js';

/**
 * The capacity model on a real node process, over HTTP and real timers: a node with 4 workers and
 * exponential 20 ms service (the runtime tests' echo role, from a source checkout) under open-loop
 * Poisson arrivals at 150/s, 3,000 requests (~20 s); the node's own mean response (arrival to
 * response end, queueing included) beside the Erlang C prediction of 30.19 ms. The model's
 * arithmetic is a test (test/stack/capacity.test.ts, on a fake clock); how closely a real process
 * on this host realises it is this measurement. Moved here from test/stack/runtime.test.ts.
 */

const WORKERS = 4;
const RATE_PER_SEC = 150;
const SERVICE = { dist: 'exponential', meanMs: 20 } as const;

function poissonArrivalsMs(seed: string, ratePerSec: number, count: number): number[] {
  const rng = new Rng(seed);
  const out: number[] = [];
  let t = 0;
  for (let i = 0; i < count; i++) out.push((t += rng.exponential(1000 / ratePerSec)));
  return out;
}

export async function benchCapacityModel(opts: { total: number }): Promise<BenchRow[]> {
  const spec: NodeSpec = { name: 'mm4-29', role: 'web', tier: 'web-agent', host: '127.0.0.1', port: 0, secret: 's', profile: { workers: WORKERS, queue: 10_000, service: SERVICE } };
  const env = { ...process.env, RMMSCALE_NODE_SPEC: JSON.stringify(spec), RMMSCALE_TEST_ROLE_MODULE: join(ROOT, 'test', 'fixtures', 'echo-role.mjs') };
  const proc = fork(join(ROOT, 'dist', 'src', 'stack', 'node-main.js'), [], { env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  try {
    const m = await new Promise<NodeReadyMessage | NodeFailedMessage>((resolve, reject) => {
      proc.once('message', (msg) => resolve(msg as NodeReadyMessage | NodeFailedMessage));
      void exited.then(() => reject(new Error('the node exited before it was ready')));
    });
    if (m.type !== 'ready') throw new Error(`node failed: ${m.error}`);
    const client = new Pool(m.url, { connections: 200, pipelining: 1 });
    const latenciesMs: number[] = [];
    try {
      // Open loop: send at the intended time regardless of earlier replies; latency from that time
      // (a send up to 1 ms early from when it left, as the swarm measures its look-ahead sends).
      const arrivalsMs = poissonArrivalsMs('poisson-150', RATE_PER_SEC, opts.total);
      const t0 = performance.now() + 50;
      const sends: Array<Promise<void>> = [];
      for (const offsetMs of arrivalsMs) {
        const at = t0 + offsetMs;
        const wait = at - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        const from = Math.min(at, performance.now());
        sends.push(
          client.request({ path: '/work', method: 'GET' }).then(async (r) => {
            await r.body.dump();
            if (r.statusCode === 200) latenciesMs.push(performance.now() - from);
          }),
        );
      }
      await Promise.all(sends);
    } finally {
      await client.close();
    }
    const hdr = (await (await fetch(`${m.url}/admin/hdr`, { headers: { authorization: `Bearer ${deriveKey('s', 'admin')}` } })).json()) as NodeHdrSnapshot;
    const h = decodeHistogram(hdr.histograms.work);
    const nodeMeanMs = h.mean / 1000;
    const clientMeanMs = latenciesMs.reduce((a, b) => a + b, 0) / Math.max(1, latenciesMs.length);
    const predicted = erlangC(RATE_PER_SEC, WORKERS, SERVICE.meanMs).meanResponseMs;
    const off = Math.abs(nodeMeanMs - predicted) / predicted;
    return [
      {
        bench: 'capacity-model',
        metric: `node mean response, ms (M/M/${WORKERS}, ${SERVICE.meanMs} ms, Poisson ${RATE_PER_SEC}/s, ${opts.total} requests)`,
        rmmscale: round(nodeMeanMs, 2),
        peer: round(predicted, 2),
        peerName: 'Erlang C',
        ratio: round(nodeMeanMs / predicted, 3),
        target: 'within 10% of Erlang C',
        pass: off < 0.1 && h.totalCount === opts.total && latenciesMs.length === opts.total,
        note: `client mean from the intended send time ${round(clientMeanMs, 2)} ms; node counted ${h.totalCount} of ${opts.total}, ${latenciesMs.length} answered 200`,
      },
    ];
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exited;
  }
}

runIfMain(import.meta.url, 'capacity-model', async () => benchCapacityModel({ total: 3000 }));
