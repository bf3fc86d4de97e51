import { InvalidArgumentError, ValidationError } from '../core/errors.js';
import type { LoadPoint } from './usl.js';

/**
 * Two-column CSV with a header naming the columns: `concurrency,throughput` or `load,throughput`
 * (any order; extra columns ignored), as other tools export it. Every bad line is listed.
 */
export function parseLoadCsv(file: string, text: string): LoadPoint[] {
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? '').split(',').map((h) => h.trim().toLowerCase().replace(/^"|"$/g, ''));
  const loadCol = header.findIndex((h) => h === 'concurrency' || h === 'load');
  const tputCol = header.indexOf('throughput');
  if (loadCol < 0 || tputCol < 0) {
    throw new InvalidArgumentError(`${file}:1 header`, lines[0] ?? '', 'a header with "concurrency,throughput" or "load,throughput"');
  }
  const problems: string[] = [];
  const points: LoadPoint[] = [];
  for (let i = 1; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const cells = raw.split(',');
    const load = Number(cells[loadCol]);
    const throughput = Number(cells[tputCol]);
    if (!Number.isFinite(load) || load <= 0 || !Number.isFinite(throughput) || throughput < 0) {
      problems.push(`${file}:${i + 1}: expected ${header[loadCol]} > 0 and throughput ≥ 0 as numbers, got "${raw}"`);
      continue;
    }
    points.push({ load, throughput });
  }
  if (problems.length > 0) throw new ValidationError(problems);
  if (points.length < 3) throw new InvalidArgumentError(file, `${points.length} data rows`, 'at least 3 data rows for a USL fit');
  return points;
}
