/**
 * A strict reader of Prometheus text exposition (format 0.0.4), for tests: every line must be a
 * `# HELP`, a `# TYPE` or a sample of the family just declared; anything else throws with the line
 * number. Histograms are checked too: per series, `le` buckets in ascending order with
 * non-decreasing counts, a `+Inf` bucket equal to `_count`, and a `_sum`.
 */

export interface PromFamily {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string;
  samples: Array<{ name: string; labels: Record<string, string>; value: number }>;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? ([^ ]+)( -?\d+)?$/;
const LABEL_PAIR = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/;

function parseValue(text: string, line: number): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`line ${line}: not a float: ${JSON.stringify(text)}`);
  return Number(text);
}

function parseLabels(text: string, line: number): Record<string, string> {
  const out: Record<string, string> = {};
  let rest = text.slice(1, -1);
  while (rest.length > 0) {
    const m = LABEL_PAIR.exec(rest);
    if (!m) throw new Error(`line ${line}: bad labels: ${text}`);
    if (!LABEL_NAME.test(m[1]) || m[1] in out) throw new Error(`line ${line}: bad or repeated label ${m[1]}`);
    out[m[1]] = m[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    rest = rest.slice(m[0].length);
  }
  return out;
}

export function parsePromStrict(text: string): Map<string, PromFamily> {
  if (!text.endsWith('\n')) throw new Error('exposition text must end with a newline');
  const families = new Map<string, PromFamily>();
  const seriesSeen = new Set<string>();
  let current: PromFamily | null = null;
  const lines = text.slice(0, -1).split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    {
      const line = i + 1;
      if (raw.startsWith('# HELP ')) {
        const help = raw.split(' ').slice(3);
        const fam = raw.split(' ')[2];
        if (!METRIC_NAME.test(fam)) throw new Error(`line ${line}: bad metric name ${fam}`);
        if (families.has(fam)) throw new Error(`line ${line}: family ${fam} declared twice`);
        current = { name: fam, type: 'untyped', help: help.join(' '), samples: [] };
        families.set(fam, current);
        continue;
      }
      if (raw.startsWith('# TYPE ')) {
        const [, , fam, type] = raw.split(' ');
        if (!current || current.name !== fam) throw new Error(`line ${line}: TYPE for ${fam} without its HELP just before`);
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type)) throw new Error(`line ${line}: bad type ${type}`);
        if (current.samples.length > 0) throw new Error(`line ${line}: TYPE after samples`);
        current.type = type as PromFamily['type'];
        continue;
      }
      const m = SAMPLE.exec(raw);
      if (!m) throw new Error(`line ${line}: not a sample line: ${JSON.stringify(raw)}`);
      const fam: PromFamily | null = current;
      if (!fam) throw new Error(`line ${line}: a sample before any family`);
      const allowed = fam.type === 'histogram' ? [`${fam.name}_bucket`, `${fam.name}_sum`, `${fam.name}_count`] : [fam.name];
      if (!allowed.includes(m[1])) throw new Error(`line ${line}: sample ${m[1]} outside its family ${fam.name}`);
      const labels = m[2] ? parseLabels(m[2], line) : {};
      const key = `${m[1]}${JSON.stringify(Object.entries(labels).sort())}`;
      if (seriesSeen.has(key)) throw new Error(`line ${line}: series repeated: ${raw}`);
      seriesSeen.add(key);
      const value = parseValue(m[3], line);
      if (fam.type === 'counter' && !(value >= 0)) throw new Error(`line ${line}: a counter must be a non-negative number: ${raw}`);
      fam.samples.push({ name: m[1], labels, value });
    }
  }
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

function checkHistogram(f: PromFamily): void {
  const series = new Map<string, { buckets: Array<[number, number]>; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    let e = series.get(key);
    if (!e) series.set(key, (e = { buckets: [] }));
    if (s.name.endsWith('_bucket')) {
      if (le === undefined) throw new Error(`${f.name}: a bucket without le`);
      e.buckets.push([parseValue(le, 0), s.value]);
    } else if (s.name.endsWith('_sum')) e.sum = s.value;
    else e.count = s.value;
  }
  for (const [key, e] of series) {
    for (let i = 1; i < e.buckets.length; i++) {
      if (!(e.buckets[i][0] > e.buckets[i - 1][0])) throw new Error(`${f.name}${key}: le not ascending`);
      if (e.buckets[i][1] < e.buckets[i - 1][1]) throw new Error(`${f.name}${key}: bucket counts decrease`);
    }
    const last = e.buckets[e.buckets.length - 1];
    if (!last || last[0] !== Infinity) throw new Error(`${f.name}${key}: no +Inf bucket`);
    if (e.count === undefined || e.sum === undefined) throw new Error(`${f.name}${key}: _count or _sum missing`);
    if (last[1] !== e.count) throw new Error(`${f.name}${key}: +Inf bucket ${last[1]} ≠ _count ${e.count}`);
  }
}

/** The one sample of a family with these labels (exactly), or throws. */
export function sampleValue(fams: Map<string, PromFamily>, name: string, labels: Record<string, string> = {}, family = name): number {
  const f = fams.get(family);
  if (!f) throw new Error(`no family ${family}`);
  const want = JSON.stringify(Object.entries(labels).sort());
  const s = f.samples.find((x) => x.name === name && JSON.stringify(Object.entries(x.labels).sort()) === want);
  if (!s) throw new Error(`no sample ${name}${want}`);
  return s.value;
}
