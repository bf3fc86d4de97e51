import autocannon from 'autocannon';
import { deriveAgent, generateSecret, DEFAULT_SEED } from '../src/core/identity.js';
import { Rng } from '../src/core/random.js';
import { round } from '../src/core/units.js';
import { PayloadFactory } from '../src/swarm/payloads.js';
import { median, runSwarmCli, startMinimalServer, type BenchRow } from './lib.js';

/** The stack's secret for this bench (no default secret exists). */
const SECRET = generateSecret();

/**
 * Maximum throughput: `rmmscale swarm --rate max` against autocannon, same minimal server, same
 * connections, the same check-in request (POST, ~1.2 KB body, same headers). Both are measured by
 * the server's own request count, so neither tool grades itself. Rounds alternate to share noise.
 */
export async function benchThroughput(opts: { rounds: number; durationSec: number; connections: number }): Promise<BenchRow[]> {
  const agent = deriveAgent(DEFAULT_SEED, SECRET, 0);
  const body = new PayloadFactory(DEFAULT_SEED).body('checkin', agent, 1, new Rng('bench'));
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${agent.token}`, 'x-agent-id': agent.id };
  const ours: number[] = [];
  const peer: number[] = [];
  for (let roundIndex = 0; roundIndex < opts.rounds; roundIndex++) {
    for (const who of roundIndex % 2 === 0 ? ['peer', 'ours'] : ['ours', 'peer']) {
      const server = await startMinimalServer();
      try {
        const before = await server.served();
        const t0 = performance.now();
        if (who === 'peer') {
          await autocannon({ url: `${server.url}/agent/v1/checkin`, connections: opts.connections, duration: opts.durationSec, method: 'POST', headers, body });
        } else {
          await runSwarmCli(
            ['--target', server.url, '--agents', '1000', '--rate', 'max', '--connections', String(opts.connections), '--workers', '1', '--duration', `${opts.durationSec}s`],
            (opts.durationSec + 60) * 1000,
          );
        }
        const served = (await server.served()) - before;
        // Rate over the load window only: both tools spend a little time starting up.
        const rate = served / opts.durationSec;
        (who === 'peer' ? peer : ours).push(rate);
        void t0;
      } finally {
        await server.stop();
      }
    }
  }
  const o = median(ours);
  const p = median(peer);
  return [
    {
      bench: 'throughput',
      metric: `requests/s, ${opts.connections} connections, POST check-in (median of ${opts.rounds})`,
      rmmscale: Math.round(o),
      peer: Math.round(p),
      peerName: 'autocannon',
      ratio: round(o / p, 2),
      target: '≥ 1.0× autocannon',
      pass: o / p >= 1.0,
      note: `rounds: rmmscale ${ours.map(Math.round).join('/')}, autocannon ${peer.map(Math.round).join('/')}`,
    },
  ];
}
