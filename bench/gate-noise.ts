import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_DECIDE } from '../src/gate/decide.js';
import { loadRun, runGate, type LoadedRun } from '../src/gate/gate.js';
import { printWorkerErrors } from '../src/cli/run-events.js';
import { runScenario } from '../src/run/run.js';
import { loadScenario } from '../src/scenario/load.js';
import type { Scenario } from '../src/scenario/types.js';
import { argNum, ROOT, runIfMain, type BenchRow } from './lib.js';

/**
 * How often does `rmmscale gate` cry wolf, and how often does it catch a real regression?
 *
 * A small emulated stack (`single`, its own process: 4 workers × exponential 20 ms, a fast db),
 * driven at 100 check-ins/s (utilisation ≈ 0.5) for a short staged run, many times over in one
 * session, in rotating order:
 *   - baseline runs;
 *   - unchanged reruns (same profile);
 *   - regressed runs: the web service time 20% slower (24 ms).
 * Then the gate's own decision (`checkin.p99 <= +10%`, and the same bound on the mean and the
 * median; the confidence interval on the ratio of means, 95%) is taken for every pairing: one run against one baseline run (n = 1, the gate's
 * assumed 5% noise), and groups of three against groups of three (n = 3, measured noise).
 * False alarms = unchanged pairings that fail; detections = regressed pairings that fail. An
 * inconclusive verdict is counted apart: it neither passes a regression nor fails a good build.
 *
 *   npm run build && node dist/bench/gate-noise.js [--runs 9] [--seconds 12] [--replay DIR]
 */

type Variant = 'baseline' | 'unchanged' | 'slower';
const SERVICE_MS: Record<Variant, number> = { baseline: 20, unchanged: 20, slower: 24 };
const VARIANTS: readonly Variant[] = ['baseline', 'unchanged', 'slower'];
const RULES = ['checkin.p99 <= +10%', 'checkin.p99 <= +5%', 'checkin.mean <= +10%', 'checkin.mean <= +5%'];

/** The scenario as a user would write it, through the real loader. */
function scenario(dir: string, variant: Variant, index: number, profileFile: string, seconds: number): Scenario {
  const file = join(dir, `${variant}-${index}.yaml`);
  writeFileSync(
    file,
    [
      `name: gate-noise-${variant}`,
      'stack: { topology: single, profile: ' + JSON.stringify(profileFile) + ' }',
      // A fresh seed per run: the noise a CI job sees includes a different fleet draw each time.
      `fleet: { checkin: 30%/min, connection: keepalive, arrival: poisson, seed: gate-noise-${variant}-${index}, secret: gate-noise, timeout: 10s }`,
      // A 3 s ramp, then the measured hold (which the gate reads: the headline is the last stage).
      `stages: [{ duration: 3s, agents: 20000 }, { duration: ${seconds}s, agents: 20000 }]`,
      'slo: { p99: 2s, errors: 1%, minAchieved: 90% }',
      `timeLimit: ${seconds + 60}s`,
      '',
    ].join('\n'),
  );
  return loadScenario(file);
}

function profile(dir: string, variant: Variant): string {
  const file = join(dir, `${variant}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      name: `gate-noise-${variant}`,
      tiers: { single: { workers: 4, queue: 4000, service: { dist: 'exponential', meanMs: SERVICE_MS[variant] } } },
      db: { workers: 16, queue: 5000, service: { dist: 'exponential', meanMs: 1 } },
    }),
  );
  return file;
}

interface Tally {
  pairs: number;
  fail: number;
  inconclusive: number;
}

function gate(rule: string, current: LoadedRun[], baseline: LoadedRun[]): 'pass' | 'fail' | 'inconclusive' | 'invalid' {
  const report = runGate({ current, baseline, thresholds: [rule], scenarioThresholds: false, decide: DEFAULT_DECIDE, inconclusive: 'pass' });
  if (report.outcome === 'invalid') return 'invalid';
  return report.checks[0].verdict === 'invalid' ? 'invalid' : report.checks[0].verdict;
}

function tally(rule: string, currents: LoadedRun[][], baselines: LoadedRun[][]): Tally & { invalid: number } {
  const t = { pairs: 0, fail: 0, inconclusive: 0, invalid: 0 };
  for (const c of currents) {
    for (const b of baselines) {
      const v = gate(rule, c, b);
      t.pairs++;
      if (v === 'fail') t.fail++;
      else if (v === 'inconclusive') t.inconclusive++;
      else if (v === 'invalid') t.invalid++;
    }
  }
  return t;
}

const groups = <T>(xs: T[], size: number): T[][] => Array.from({ length: Math.floor(xs.length / size) }, (_, i) => xs.slice(i * size, (i + 1) * size));
const pct = (n: number, d: number): number => (d ? Math.round((n / d) * 1000) / 10 : NaN);

/**
 * Measure (or, with `replayDir`, re-read a measured set of) runs, then replay the gate on them.
 * The runs' result.json files are kept in reports/gate-noise-<time>/VARIANT-I/ so that other
 * rules can be replayed later without running anything: `--replay reports/gate-noise-…`.
 */
export async function benchGateNoise(opts: { runs: number; seconds: number; replayDir?: string }): Promise<BenchRow[]> {
  const runs: Record<Variant, LoadedRun[]> = { baseline: [], unchanged: [], slower: [] };
  const p99Ms: Record<Variant, number[]> = { baseline: [], unchanged: [], slower: [] };
  const keep = (v: Variant, run: LoadedRun): void => {
    runs[v].push(run);
    p99Ms[v].push(Math.round((run.result.headline?.client.ops.checkin?.latency.p99Us ?? 0) / 100) / 10);
  };
  if (opts.replayDir) {
    for (const v of VARIANTS) {
      const dirs = readdirSync(opts.replayDir).filter((d) => d.startsWith(`${v}-`)).sort((a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1]));
      for (const d of dirs) keep(v, loadRun(join(opts.replayDir, d, 'result.json')));
    }
    process.stderr.write(`gate-noise: replaying ${runs.baseline.length} + ${runs.unchanged.length} + ${runs.slower.length} runs from ${opts.replayDir}\n`);
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'rmmscale-bench-gate-'));
    const keepDir = join(ROOT, 'reports', `gate-noise-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    try {
      const profiles: Record<Variant, string> = { baseline: profile(dir, 'baseline'), unchanged: profile(dir, 'unchanged'), slower: profile(dir, 'slower') };
      for (let i = 0; i < opts.runs; i++) {
        // Rotate the order so that a drifting host does not favour one variant.
        for (const v of [...VARIANTS.slice(i % 3), ...VARIANTS.slice(0, i % 3)]) {
          const out = join(keepDir, `${v}-${i}`);
          const { result, resultFile } = await runScenario({ scenario: scenario(dir, v, i, profiles[v], opts.seconds), outDir: out, allowRemote: false, onEvent: printWorkerErrors });
          if (result.error) throw new Error(`${v} run ${i}: ${result.error}`);
          keep(v, { file: resultFile, result });
          process.stderr.write(`gate-noise: ${v} #${i}: checkin p99 ${p99Ms[v][i]} ms${result.summary.trustworthy ? '' : ' (not trustworthy)'}\n`);
        }
      }
      process.stderr.write(`gate-noise: runs kept in ${keepDir}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const single = (xs: LoadedRun[]): LoadedRun[][] => xs.map((x) => [x]);
  const ms = (v: Variant): string => p99Ms[v].join('/');
  const rows: BenchRow[] = [];
  for (const rule of RULES) {
    for (const n of [1, 3]) {
      const pick = (xs: LoadedRun[]): LoadedRun[][] => (n === 1 ? single(xs) : groups(xs, n));
      const fa = tally(rule, pick(runs.unchanged), pick(runs.baseline));
      const det = tally(rule, pick(runs.slower), pick(runs.baseline));
      const detRate = pct(det.fail, det.pairs);
      const faRate = pct(fa.fail, fa.pairs);
      rows.push({
        bench: 'gate-noise',
        metric: `${rule}, n = ${n} a side: detection of a 20% slower web service (%) vs false alarms on an unchanged rerun (%)`,
        rmmscale: detRate,
        peer: faRate,
        peerName: 'false alarms %',
        ratio: NaN,
        target: 'detection ≥ 80%, false alarms ≤ 5%',
        pass: detRate >= 80 && faRate <= 5,
        note:
          `${det.pairs} regressed and ${fa.pairs} unchanged pairings; inconclusive ${det.inconclusive} and ${fa.inconclusive}, invalid ${det.invalid} and ${fa.invalid}; ` +
          `with --inconclusive fail: detection ${pct(det.fail + det.inconclusive, det.pairs)}%, false alarms ${pct(fa.fail + fa.inconclusive, fa.pairs)}%`,
      });
    }
  }
  rows[rows.length - 1].note += `; checkin p99 ms — baseline ${ms('baseline')}, unchanged ${ms('unchanged')}, slower ${ms('slower')}`;
  return rows;
}

runIfMain(import.meta.url, 'gate-noise', (args) => {
  const replay = args.indexOf('--replay');
  return benchGateNoise({ runs: argNum(args, '--runs', 9), seconds: argNum(args, '--seconds', 12), replayDir: replay >= 0 ? args[replay + 1] : undefined });
});
