import { readFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { InvalidArgumentError } from '../../core/errors.js';

/** `rmmscale fit usl FILE.csv [--json]`: the Universal Scalability Law on anyone's data. */
export const fitCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'fit <model> <file>',
  describe: 'fit a scaling model to a CSV of load,throughput (model: usl)',
  builder: (y: Argv) =>
    y
      .positional('model', { type: 'string', describe: 'usl' })
      .positional('file', { type: 'string', describe: 'CSV with a header: concurrency,throughput (or load,throughput)' })
      .option('json', { type: 'boolean', describe: 'print {"sigma","kappa","lambda","nMax","xMax","r2"}' }) as Argv<Record<string, unknown>>,
  handler: async (argv) => {
    if (argv.model !== 'usl') throw new InvalidArgumentError('model', argv.model, 'usl');
    const file = String(argv.file);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new InvalidArgumentError('file', file, `a readable CSV file (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    }
    const { parseLoadCsv } = await import('../../analysis/csv-points.js');
    const { fitUsl } = await import('../../analysis/usl.js');
    const f = fitUsl(parseLoadCsv(file, text));
    const num = (x: number): number | null => (Number.isFinite(x) ? x : null);
    if (argv.json) {
      process.stdout.write(JSON.stringify({ sigma: f.sigma, kappa: f.kappa, lambda: f.lambda, nMax: num(f.nMax), xMax: num(f.xMax), r2: f.r2 }) + '\n');
      return;
    }
    const fmt = (x: number, d = 4): string => (Number.isFinite(x) ? x.toPrecision(d) : '∞ (no peak: κ = 0)');
    process.stdout.write(
      [
        `Universal Scalability Law fit of ${f.points} points from ${file}`,
        `  σ (contention)  ${fmt(f.sigma)}`,
        `  κ (coherency)   ${fmt(f.kappa)}`,
        `  λ (per unit)    ${fmt(f.lambda)}`,
        `  N* (peak load)  ${fmt(f.nMax)}`,
        `  X* (peak tput)  ${fmt(f.xMax)}`,
        `  R²              ${f.r2.toFixed(4)}`,
        '',
      ].join('\n'),
    );
  },
};
