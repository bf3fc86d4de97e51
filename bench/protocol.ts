import { join } from 'node:path';
import { deriveFleet, generateSecret, DEFAULT_SEED } from '../src/core/identity.js';
import { Rng } from '../src/core/random.js';
import { round } from '../src/core/units.js';
import { PayloadFactory } from '../src/swarm/payloads.js';
import { AgentVarStore } from '../src/swarm/protocol/agent-vars.js';
import { compileProtocol, renderHeaders } from '../src/swarm/protocol/compile-protocol.js';
import { loadProtocolFile } from '../src/swarm/protocol/load-protocol.js';
import { RenderState } from '../src/swarm/protocol/template.js';
import { median, ROOT, runIfMain, runSwarmCli, startMinimalServer, type BenchRow } from './lib.js';

/**
 * The template send path against today's fixed check-in, in the same run:
 * 1. Build cost: what each path does per check-in before the socket (the fixed path's
 *    PayloadFactory body and header object; protocols/rmmscale.yaml's compiled path, headers and
 *    body), ns per send, rounds alternating, median.
 * 2. End to end: `rmmscale swarm --rate max --connection pool` with and without
 *    `--protocol protocols/rmmscale.yaml` against the same minimal server, counted by the server.
 * Ratios are template ÷ fixed: below 1.0 the template path builds faster, above 1.0 it serves more.
 */

const SECRET = generateSecret();

function buildCostNs(which: 'fixed' | 'template', sends: number): number {
  const agents = deriveFleet(DEFAULT_SEED, SECRET, 1000);
  const rng = new Rng('bench-protocol');
  let sink = 0;
  if (which === 'fixed') {
    const payloads = new PayloadFactory(DEFAULT_SEED);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < sends; i++) {
      const agent = agents[i % agents.length];
      const body = payloads.body('checkin', agent, i, rng);
      const headers = { 'content-type': 'application/json', authorization: `Bearer ${agent.token}`, 'x-agent-id': agent.id };
      sink += body.length + headers.authorization.length + '/agent/v1/checkin'.length;
    }
    const ns = Number(process.hrtime.bigint() - t0) / sends;
    return sink > 0 ? ns : NaN;
  }
  const protocol = compileProtocol(loadProtocolFile(join(ROOT, 'protocols', 'rmmscale.yaml')));
  const step = protocol.flows[0].steps[0];
  const st = new RenderState();
  st.rng = rng;
  st.store = new AgentVarStore(agents.length, []);
  // As the driver does (protocol-driver.ts): {{now}} is the start's epoch plus the send's own clock
  // reading, which the send takes anyway for its lag; the fixed path's lag reading is outside its
  // body too, so neither loop reads a clock.
  const epochAtZeroMs = Date.now();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < sends; i++) {
    st.agent = agents[i % agents.length];
    st.slot = i % agents.length;
    st.seq = i;
    st.nowMs = epochAtZeroMs + i;
    const path = step.path.render(st);
    const headers = renderHeaders(step, st);
    const body = step.body!.render(st);
    sink += body.length + path.length + headers[1].length;
  }
  const ns = Number(process.hrtime.bigint() - t0) / sends;
  return sink > 0 ? ns : NaN;
}

export async function benchProtocol(opts: { rounds: number; sends: number; durationSec: number; connections: number }): Promise<BenchRow[]> {
  const fixedNs: number[] = [];
  const templateNs: number[] = [];
  buildCostNs('fixed', 20_000); // warm both paths up before measuring
  buildCostNs('template', 20_000);
  for (let r = 0; r < opts.rounds * 2; r++) {
    for (const who of r % 2 === 0 ? (['fixed', 'template'] as const) : (['template', 'fixed'] as const)) {
      (who === 'fixed' ? fixedNs : templateNs).push(buildCostNs(who, opts.sends));
    }
  }
  const fixedRate: number[] = [];
  const templateRate: number[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    for (const who of r % 2 === 0 ? (['fixed', 'template'] as const) : (['template', 'fixed'] as const)) {
      const server = await startMinimalServer();
      try {
        const before = await server.served();
        const args = ['--target', server.url, '--agents', '1000', '--rate', 'max', '--connections', String(opts.connections), '--workers', '1', '--duration', `${opts.durationSec}s`, '--secret', SECRET];
        if (who === 'template') args.push('--protocol', join(ROOT, 'protocols', 'rmmscale.yaml'));
        await runSwarmCli(args, (opts.durationSec + 60) * 1000);
        (who === 'fixed' ? fixedRate : templateRate).push(((await server.served()) - before) / opts.durationSec);
      } finally {
        await server.stop();
      }
    }
  }
  const fNs = median(fixedNs);
  const tNs = median(templateNs);
  const fR = median(fixedRate);
  const tR = median(templateRate);
  return [
    {
      bench: 'protocol',
      metric: `ns to build one check-in (path, headers, ~1.2 KB body), median of ${fixedNs.length} × ${opts.sends}`,
      rmmscale: round(tNs, 0),
      peer: round(fNs, 0),
      peerName: 'fixed check-in',
      ratio: round(tNs / fNs, 2),
      target: '≤ 1.0× the fixed check-in',
      pass: tNs / fNs <= 1.0,
      note: `rounds: template ${templateNs.map((x) => Math.round(x)).join('/')}, fixed ${fixedNs.map((x) => Math.round(x)).join('/')}`,
    },
    {
      bench: 'protocol',
      metric: `requests/s, --rate max, ${opts.connections} pool connections, 1 worker (median of ${opts.rounds})`,
      rmmscale: Math.round(tR),
      peer: Math.round(fR),
      peerName: 'fixed check-in',
      ratio: round(tR / fR, 2),
      target: '≥ 0.9× the fixed check-in',
      pass: tR / fR >= 0.9,
      note: `rounds: template ${templateRate.map(Math.round).join('/')}, fixed ${fixedRate.map(Math.round).join('/')}; both on RawPool; the template path also parses each check-in's answer (its check and the command-result step read it)`,
    },
  ];
}

runIfMain(import.meta.url, 'protocol', (args) => benchProtocol({ rounds: args.includes('--quick') ? 1 : 3, sends: 200_000, durationSec: args.includes('--quick') ? 3 : 8, connections: 100 }));
