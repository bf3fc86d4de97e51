import { dirname, join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { InvalidArgumentError } from '../../core/errors.js';

/**
 * `rmmscale report RESULT.json [--html FILE] [--md FILE]`: rebuild the reports of a run from its
 * result.json. With neither flag, both land beside the result as `rmmscale run` names them
 * (report.html, summary.md), so a report is rebuilt in place. `--md -`
 * prints the Markdown to stdout alone, for `>> "$GITHUB_STEP_SUMMARY"`.
 */
export const reportCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'report <file>',
  describe: "render a run's result.json as a self-contained HTML report and a Markdown summary",
  builder: (y: Argv) =>
    y
      .positional('file', { type: 'string', describe: 'the result.json of rmmscale run' })
      .option('html', { type: 'string', requiresArg: true, describe: 'write the HTML report to FILE [default with neither flag: report.html beside the result]' })
      .option('md', { type: 'string', requiresArg: true, describe: 'write the Markdown summary to FILE, or "-" for stdout [default with neither flag: summary.md beside the result]' })
      .option('json', { type: 'boolean', describe: 'print {"htmlFile","mdFile","verdict","summary"} instead of the summary table' }) as Argv<Record<string, unknown>>,
  handler: async (argv) => {
    const file = String(argv.file);
    let html = argv.html as string | undefined;
    let md = argv.md as string | undefined;
    if (html === '') throw new InvalidArgumentError('--html', html, 'a file path');
    if (md === '') throw new InvalidArgumentError('--md', md, 'a file path or "-"');
    if (md === '-' && argv.json) throw new InvalidArgumentError('--md', md, 'a file path when --json is given (both would print to stdout)');
    if (html === undefined && md === undefined) {
      html = join(dirname(file), 'report.html');
      md = join(dirname(file), 'summary.md');
    }
    const { readResultFile } = await import('../../run/result-file.js');
    const report = await import('../../report/index.js');
    const result = readResultFile(file);
    const written = await report.writeReports(result, { htmlFile: html, mdFile: md === '-' ? undefined : md });
    if (md === '-') {
      process.stdout.write(report.renderMarkdown(result));
      return;
    }
    if (argv.json) {
      const v = report.verdictOf(result);
      process.stdout.write(JSON.stringify({ ...written, verdict: v.status, summary: result.summary }) + '\n');
      return;
    }
    let out = `${report.terminalSummary(result)}\n`;
    if (written.htmlFile) out += `HTML report: ${written.htmlFile}\n`;
    if (written.mdFile) out += `Markdown summary: ${written.mdFile}\n`;
    process.stdout.write(out);
  },
};
