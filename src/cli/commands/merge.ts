import { readFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { InvalidArgumentError } from '../../core/errors.js';
import type { SwarmResult } from '../../swarm/result.js';

/**
 * `rmmscale merge SHARD.json… --out result.json`: the results of the n shards of one run
 * (`rmmscale swarm --shard i/n --json FILE`), merged exactly into one result of the same kind
 * (src/swarm/merge-shards.ts). Prints the merged summary; exits as the one run would have (4 when
 * a shard was untrustworthy, 3 when the merged error rate is over the limit).
 */
export const mergeCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'merge <files..>',
  describe: 'merge the results of the n shards of one run (--shard i/n) exactly: histograms, series by wall clock, verdicts',
  builder: (y: Argv) =>
    y
      .positional('files', { type: 'string', array: true, describe: 'the shard results (rmmscale.swarm/1 from swarm --shard i/n --json)' })
      .option('out', { type: 'string', requiresArg: true, demandOption: true, describe: 'write the merged result to FILE' }) as Argv<Record<string, unknown>>,
  handler: async (argv) => {
    const files = (argv.files as string[]).map(String);
    const out = String(argv.out);
    if (out === '') throw new InvalidArgumentError('--out', out, 'a file path');
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
