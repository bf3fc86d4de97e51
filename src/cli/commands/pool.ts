import type { Argv, CommandModule } from 'yargs';
import { InvalidArgumentError } from '../../core/errors.js';

/**
 * `rmmscale pool RESULT.json…`: each fault's "within 10%" across repeated runs. The runs' faults
 * are matched by position and must name the same action and node; each op's per-run p50 ratio
 * (faults[].latencyVsClean) is pooled into a 95% interval of their geometric mean
 * (src/analysis/across-runs.ts) with the same held/broken/unresolved rule as one run's verdict.
 */

export interface PooledOp {
  fault: string;
  op: string;
  ratios: number[];
  geoMean: number | null;
  low: number | null;
  high: number | null;
  within10pct: 'held' | 'broken' | 'unresolved';
  /** Each run's own verdict, in file order. */
  perRun: string[];
}

export const poolCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'pool <files..>',
  describe: "each fault's latency \"within 10%\" verdict across repeated runs (result.json files): a 95% interval of the runs' p50 ratios",
  builder: (y: Argv) =>
    y
      .positional('files', { type: 'string', array: true, describe: 'result.json of each run (at least 3 for an interval), with the same faults in the same order' })
      .option('json', { type: 'boolean', default: false, describe: 'print the pooled verdicts as JSON' }) as Argv<Record<string, unknown>>,
  handler: async (argv) => {
    const files = (argv.files as string[]).map(String);
    const { readResultFile } = await import('../../run/result-file.js');
    const docs = files.map((file) => ({ file, doc: readResultFile(file) }));
    const pooled = await poolResults(docs);
    if (argv.json) {
      process.stdout.write(JSON.stringify(pooled, null, 2) + '\n');
      return;
    }
    process.stdout.write(renderPooled(pooled, docs.length));
  },
};

type Doc = { file: string; doc: import('../../run/result-types.js').RunResult };

/** The pooled verdict of every fault and op in `docs` (a one-line error when their faults differ). */
export async function poolResults(docs: readonly Doc[]): Promise<PooledOp[]> {
  const { acrossRuns } = await import('../../analysis/across-runs.js');
  if (docs.length === 0) throw new InvalidArgumentError('files', '(none)', 'one result.json or more');
  const first = docs[0]!;
  const label = (f: { action: string; node: string | null }): string => `${f.action} ${f.node ?? ''}`.trim();
  for (const d of docs) {
    const a = first.doc.faults.map(label).join(', ');
    const b = d.doc.faults.map(label).join(', ');
    if (a !== b) throw new InvalidArgumentError(d.file, `faults [${b}]`, `the same faults, in the same order, as ${first.file} ([${a}])`);
  }
  const out: PooledOp[] = [];
  first.doc.faults.forEach((f, i) => {
    const ops = [...new Set(docs.flatMap((d) => (d.doc.faults[i]!.latencyVsClean ?? []).map((l) => l.op)))].sort();
    for (const op of ops) {
      const rows = docs.map((d) => (d.doc.faults[i]!.latencyVsClean ?? []).find((l) => l.op === op));
      const ratios = rows.map((r) => r?.p50Ratio).filter((v): v is number => typeof v === 'number');
      const a = acrossRuns(ratios);
      out.push({ fault: `${label(f)} (fault ${i + 1})`, op, ratios, geoMean: a.geoMean, low: a.low, high: a.high, within10pct: a.within10pct, perRun: rows.map((r) => r?.within10pct ?? '—') });
    }
  });
  return out;
}

export function renderPooled(pooled: readonly PooledOp[], runs: number): string {
  const lines = [`p50 during ÷ clean across ${runs} runs: geometric mean, 95% interval (Student t over the runs), within 10%`];
  let fault = '';
  for (const p of pooled) {
    if (p.fault !== fault) {
      fault = p.fault;
      lines.push(`  ${fault}:`);
    }
    const iv = p.low === null || p.high === null ? 'no interval (fewer than 3 runs)' : `${p.low.toFixed(2)}×–${p.high.toFixed(2)}×`;
    lines.push(`    ${p.op.padEnd(14)} ${p.geoMean === null ? '—' : `${p.geoMean.toFixed(2)}×`}  ${iv.padEnd(13)}  ${p.within10pct.padEnd(10)}  runs: ${p.ratios.map((r) => r.toFixed(2)).join(' ')}  (each run: ${p.perRun.join(', ')})`);
  }
  return lines.join('\n') + '\n';
}
