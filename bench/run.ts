import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { hostFacts } from '../src/core/host.js';
import { benchCapacityModel } from './capacity-model.js';
import { benchGateNoise } from './gate-noise.js';
import { benchNginx } from './nginx.js';
import { benchOpenModel } from './open-model.js';
import { benchProtocol } from './protocol.js';
import { benchProxy } from './proxy.js';
import { benchReconnect } from './reconnect.js';
import { benchRelay } from './relay.js';
import { benchSplitLag } from './split-lag.js';
import { benchStoreCheckins } from './store-checkins.js';
import { benchThroughput } from './throughput.js';
import { benchTunnels } from './tunnels.js';
import { benchShards } from './shards.js';
import { formatRows, ROOT, type BenchRow } from './lib.js';

/**
 * `npm run bench [-- --only NAME[,NAME]] [-- --quick] [-- --idle-sec N]`. Every benchmark runs its peer in the same
 * run on the same machine and reports a ratio. Never part of `npm test`: these are speed targets.
 * Results print as a table and land in reports/bench-<time>.json.
 */
interface BenchOptions {
  quick: boolean;
  /** tunnels: the idle window's length (default 90 s, three ping periods; --quick 30 s). */
  idleSec: number | null;
}
type BenchFn = (o: BenchOptions) => Promise<BenchRow[]>;

const BENCHES: Record<string, BenchFn> = {
  throughput: ({ quick }) => benchThroughput({ rounds: quick ? 1 : 3, durationSec: quick ? 5 : 10, connections: 100 }),
  'open-model': ({ quick }) => benchOpenModel({ ratePerSec: 10_000, durationSec: quick ? 10 : 30, connections: 200 }),
  proxy: ({ quick }) => benchProxy({ rounds: quick ? 1 : 5, durationSec: quick ? 4 : 8, connections: 100 }),
  store: ({ quick }) => benchStoreCheckins({ total: quick ? 5000 : 20_000, concurrency: 256 }),
  relay: ({ quick }) => benchRelay({ rounds: quick ? 1 : 3, durationSec: quick ? 3 : 5, tunnels: 2000 }),
  reconnect: ({ quick }) => benchReconnect({ tunnels: quick ? 2000 : 10_000 }),
  'gate-noise': ({ quick }) => benchGateNoise({ runs: quick ? 3 : 9, seconds: quick ? 8 : 12 }),
  nginx: ({ quick }) => benchNginx({ rounds: quick ? 1 : 3, durationSec: quick ? 4 : 8, connections: 100 }),
  'split-lag': ({ quick }) => benchSplitLag({ rounds: quick ? 1 : 2 }),
  'capacity-model': ({ quick }) => benchCapacityModel({ total: quick ? 1500 : 3000 }),
  protocol: ({ quick }) => benchProtocol({ rounds: quick ? 1 : 3, sends: quick ? 50_000 : 200_000, durationSec: quick ? 3 : 8, connections: 100 }),
  tunnels: ({ quick, idleSec }) => benchTunnels({ agents: quick ? 20_000 : 100_000, shards: quick ? 2 : 6, connectRatePerSec: 5000, idleSec: idleSec ?? (quick ? 30 : 90) }),
  shards: ({ quick }) => benchShards({ agents: quick ? 4000 : 100_000, shards: 4, servers: quick ? 2 : 6, connectRatePerSec: quick ? 2000 : 5000, holdSec: quick ? 5 : 20 }),
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const onlyIdx = args.indexOf('--only');
  const only = onlyIdx >= 0 ? (args[onlyIdx + 1] ?? '').split(',') : Object.keys(BENCHES);
  for (const name of only) {
    if (!BENCHES[name]) {
      process.stderr.write(`bench: --only: expected one of ${Object.keys(BENCHES).join(', ')}, got "${name}"\n`);
      process.exit(2);
    }
  }
  const idleIdx = args.indexOf('--idle-sec');
  let idleSec: number | null = null;
  if (idleIdx >= 0) {
    const text = args[idleIdx + 1] ?? '';
    idleSec = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!(idleSec >= 30 && idleSec <= 600)) {
      process.stderr.write(`bench: --idle-sec: expected a whole number of seconds from 30 to 600, got "${text}"\n`);
      process.exit(2);
    }
  }
  const host = hostFacts();
  process.stdout.write(`rmmscale bench on ${host.cpus} × ${host.cpuModel}, ${(host.memBytes / 2 ** 30).toFixed(0)} GiB, node ${host.node}\n`);
  const rows: BenchRow[] = [];
  for (const name of only) {
    process.stdout.write(`\n== ${name}\n`);
    const got = await BENCHES[name]({ quick, idleSec });
    rows.push(...got);
    process.stdout.write(formatRows(got));
  }
  const dir = join(ROOT, 'reports');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ host, rows }, null, 2));
  process.stdout.write(`\nwritten: ${file}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
