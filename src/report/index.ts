import { writeFileAtomic } from '../core/atomic-write.js';
import { RmmscaleError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import type { RunResult } from '../run/result-types.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';

/**
 * Reports read a run's result.json and nothing else, so a report can be rebuilt from any old run.
 * Both `rmmscale run` (at its end) and `rmmscale report` read the file with
 * src/run/result-file.ts, then call writeReports and terminalSummary on what it returned.
 */

export { renderHtml } from './html.js';
export { renderMarkdown } from './markdown.js';
export { terminalSummary } from './terminal.js';
export { verdictOf, type ReportHeadline, type ReportStatus } from './format.js';

export interface ReportFiles {
  htmlFile?: string;
  mdFile?: string;
}

export interface WrittenReports {
  htmlFile: string | null;
  mdFile: string | null;
}

/** Render and write the reports asked for (each atomically: a reader never sees half a file). */
export async function writeReports(result: RunResult, opts: ReportFiles): Promise<WrittenReports> {
  const written: WrittenReports = { htmlFile: null, mdFile: null };
  if (opts.htmlFile) {
    write('HTML report', opts.htmlFile, await renderHtml(result));
    written.htmlFile = opts.htmlFile;
  }
  if (opts.mdFile) {
    write('Markdown summary', opts.mdFile, renderMarkdown(result));
    written.mdFile = opts.mdFile;
  }
  return written;
}

function write(what: string, file: string, text: string): void {
  try {
    writeFileAtomic(file, text);
  } catch (err) {
    throw new RmmscaleError('ERR_REPORT_WRITE', `${what}: cannot write ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, EXIT.badInput);
  }
}
