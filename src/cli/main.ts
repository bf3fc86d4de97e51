import yargs, { type Argv } from 'yargs';
import { RmmscaleError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { commands } from './commands/index.js';

/**
 * The CLI entry. The only place (with src/cli/*) that reads argv, writes to stdout/stderr and sets
 * the exit code. Known errors print one line and exit with their code; anything else is a bug and
 * prints its stack with exit 1.
 */
export async function main(argv: string[]): Promise<void> {
  try {
    let cli: Argv = yargs(argv)
      .scriptName('rmmscale')
      .strict()
      .demandCommand(1, 'a command is required: rmmscale <command> (see --help)')
      .recommendCommands()
      .help()
      .version(false)
      .wrap(Math.min(110, process.stdout.columns ?? 110))
      .fail((msg: string | undefined, err: Error | undefined) => {
        // yargs' own usage errors (e.g. a flag given without its value) are bad input, not bugs.
        if (err && err.name !== 'YError') throw err;
        const text = oneLine(msg ?? err?.message ?? 'bad usage');
        const hint = /^Unknown argument/.test(text) ? ' (allowed flags: rmmscale <command> --help)' : '';
        throw new RmmscaleError('ERR_USAGE', text + hint, EXIT.badInput);
      });
    for (const c of commands) cli = cli.command(c);
    await cli.parseAsync();
  } catch (err) {
    reportError(err);
  }
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, '; ').trim();
}

export function reportError(err: unknown): void {
  if (err instanceof RmmscaleError) {
    for (const line of err.message.split('\n')) process.stderr.write(`rmmscale: ${line}\n`);
    process.exitCode = err.exitCode;
    return;
  }
  process.stderr.write(`rmmscale: internal error (a bug, please report it):\n${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = EXIT.internal;
}
