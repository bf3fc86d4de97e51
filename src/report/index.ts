import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../core/atomic-write.js';
import { InvalidArgumentError, RmmscaleError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { RUN_RESULT_SCHEMA, type RunResult } from '../run/result-types.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';

/**
 * Reports read a run's result.json and nothing else, so a report can be rebuilt from any old run.
 * `rmmscale run` calls writeReports and terminalSummary at its end; `rmmscale report` does the same
 * from a file.
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

/** One line for a result file that cannot be reported on. Exit 2. */
export class ResultFileError extends RmmscaleError {
  constructor(file: string, problem: string) {
    super('ERR_RESULT_FILE', `${file}: ${problem.replace(/\s*\n\s*/g, ' ')}`, EXIT.badInput);
  }
}

/**
 * Read and check a result.json: readable, JSON, schema `rmmscale.run/1`, and the fields the reports
 * dereference present with the right kind. Every problem found goes on the one line.
 */
export async function readRunResult(file: string): Promise<RunResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ResultFileError(file, `cannot read the result file (${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ResultFileError(file, `not JSON (${(err as Error).message}); expected the result.json of rmmscale run`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ResultFileError(file, 'expected a JSON object: the result.json of rmmscale run');
  const schema = (doc as { schema?: unknown }).schema;
  if (schema !== RUN_RESULT_SCHEMA) throw new InvalidArgumentError(`${file}: schema`, schema, `"${RUN_RESULT_SCHEMA}" (the result.json of rmmscale run)`);
  const problems = shapeProblems(doc as Record<string, unknown>);
  if (problems.length) throw new ResultFileError(file, `not a complete ${RUN_RESULT_SCHEMA} result: ${problems.join('; ')}`);
  return doc as RunResult;
}

type Kind = 'object' | 'array' | 'boolean' | 'string' | 'object|null' | 'number|null';

/** The parts of RunResult the reports read without a guard. */
const REQUIRED: Array<[string, Kind]> = [
  ['summary', 'object'],
  ['summary.tiers', 'array'],
  ['summary.warnings', 'array'],
  ['summary.trustworthy', 'boolean'],
  ['summary.ceilingAgents', 'number|null'],
  ['summary.ceilingRps', 'number|null'],
  ['scenario', 'object'],
  ['scenario.name', 'string'],
  ['versions', 'object'],
  ['host', 'object'],
  ['stack', 'object'],
  ['stack.nodes', 'array'],
  ['slo', 'object'],
  ['thresholds', 'array'],
  ['windows', 'array'],
  ['headline', 'object|null'],
  ['search', 'object|null'],
  ['fits', 'object'],
  ['plan', 'object|null'],
  ['timeline', 'object'],
  ['hlogFiles', 'array'],
];

function shapeProblems(doc: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const failed: string[] = [];
  for (const [path, kind] of REQUIRED) {
    if (failed.some((f) => path.startsWith(`${f}.`))) continue;
    let v: unknown = doc;
    for (const k of path.split('.')) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined;
    const actual = v === null ? 'null' : Array.isArray(v) ? 'array' : v === undefined ? 'missing' : typeof v;
    if (kind.split('|').includes(actual)) continue;
    failed.push(path);
    problems.push(`${path}: expected ${kind.replace('|', ' or ')}, got ${actual}`);
  }
  return problems;
}
