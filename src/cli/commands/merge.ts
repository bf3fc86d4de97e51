import { readFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { InvalidArgumentError } from '../../core/errors.js';
import type { SwarmResult } from '../../swarm/result.js';

/**
 * `rmmscale merge SHARD.json… --out result.json`: the results of the n shards of one run merged
 * exactly into one result of the same kind: `rmmscale run --shard i/n` results (src/run/merge-run.ts;
 * exits as `rmmscale run` would have on the merged result) or `rmmscale swarm --shard i/n --json
 * FILE` results (src/swarm/merge-shards.ts; 4 when a shard was untrustworthy, 3 when the merged error
 * rate is over the limit). Prints the merged summary.
 */
export const mergeCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'merge <files..>',
  describe: 'merge the results of the n shards of one run (--shard i/n) exactly: histograms, series by wall clock, verdicts',
  builder: (y: Argv) =>
    y
      .positional('files', { type: 'string', array: true, describe: 'the shard results: result.json of run --shard i/n (rmmscale.run/1), or swarm --shard i/n --json (rmmscale.swarm/1)' })
      .option('out', { type: 'string', requiresArg: true, demandOption: true, describe: 'write the merged result to FILE' }) as Argv<Record<string, unknown>>,
  handler: async (argv) => {
    const files = (argv.files as string[]).map(String);
    const out = String(argv.out);
    if (out === '') throw new InvalidArgumentError('--out', out, 'a file path');
    const { RUN_RESULT_SCHEMA } = await import('../../run/result-types.js');
    // Run shards (result.json of rmmscale run --shard i/n) or swarm shards: as the first file says.
    if (schemaOf(files[0]) === RUN_RESULT_SCHEMA) {
      process.exitCode = await mergeRuns(files, out);
      return;
    }
    const { mergeSwarmShards } = await import('../../swarm/merge-shards.js');
    const { SWARM_RESULT_SCHEMA } = await import('../../swarm/result.js');
    const { renderSummary, exitCodeFor } = await import('./swarm.js');
    const docs = files.map((file) => ({ file, doc: readShard(file, SWARM_RESULT_SCHEMA) }));
    const merged = mergeSwarmShards(docs);
    writeFileAtomic(out, JSON.stringify(merged, null, 2) + '\n');
    process.stdout.write(renderSummary(merged));
    process.stdout.write(`merged ${files.length} shards: ${out}\n`);
    process.exitCode = exitCodeFor(merged);
  },
};

/**
 * The shards of one `rmmscale run` (src/run/merge-run.ts): each read through the result reader, the
 * merge written atomically, read back as `report` and `gate` will read it, and judged as the run
 * would have been (runOutcome: the scenario's thresholds on the merged result).
 */
async function mergeRuns(files: string[], out: string): Promise<number> {
  const { readResultFile } = await import('../../run/result-file.js');
  const { mergeRunShards } = await import('../../run/merge-run.js');
  const { gateRunResult, runOutcome } = await import('./run.js');
  const { terminalSummary } = await import('../../report/index.js');
  const { EXIT } = await import('../../core/exit-codes.js');
  const docs = files.map((file) => ({ file, doc: readResultFile(file) }));
  writeFileAtomic(out, JSON.stringify(mergeRunShards(docs), null, 2) + '\n');
  const merged = readResultFile(out);
  const outcome = runOutcome(merged, await gateRunResult(out));
  process.stdout.write(terminalSummary(merged));
  process.stdout.write(`merged ${files.length} shard result${files.length === 1 ? '' : 's'}: ${out}\n`);
  process.stderr.write(`rmmscale merge: ${outcome.exitCode === EXIT.ok ? 'ok' : `exit ${outcome.exitCode}`}: ${outcome.reason}\n`);
  return outcome.exitCode;
}

/** The `schema` a JSON file declares (undefined when it is not readable JSON: the reader then says why). */
function schemaOf(file: string | undefined): unknown {
  if (file === undefined) return undefined;
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { schema?: unknown } | null)?.schema;
  } catch {
    return undefined;
  }
}

function readShard(file: string, schema: string): SwarmResult {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InvalidArgumentError(file, code === 'ENOENT' ? '(no such file)' : 'unreadable or not JSON', `a shard result (${schema})`);
  }
  const got = (doc as { schema?: unknown } | null)?.schema;
  if (got !== schema) throw new InvalidArgumentError(file, got === undefined ? '(no schema)' : got, `a shard result with schema "${schema}" (rmmscale swarm --shard i/n --json FILE)`);
  return doc as SwarmResult;
}
