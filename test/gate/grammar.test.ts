import { describe, expect, it } from 'vitest';
import { formatMetricValue, parseThreshold, ThresholdError } from '../../src/gate/grammar.js';

const KNOWN =
  "OP.STAT (OP: an operation such as checkin, heartbeat, inventory; STAT: p50|p90|p95|p99|p99.9|max|mean (or k6's p(50)|p(90)|p(95)|p(99)|p(99.9))), latency.STAT, errors.rate|count, " +
  'throughput.achieved|offered, ceiling.agents|rps, tier[TIER].ceiling.agents|rps, node[NAME].utilization|queue|p99|cpu|rate, generator.lagP99';

describe('threshold grammar: valid expressions', () => {
  it.each([
    ['checkin.p99 < 500ms', { kind: 'op-latency', op: 'checkin', stat: 'p99' }, 'latency', '<', { kind: 'absolute', value: 500 }],
    ['heartbeat.p50<=2s', { kind: 'op-latency', op: 'heartbeat', stat: 'p50' }, 'latency', '<=', { kind: 'absolute', value: 2000 }],
    ['inventory.p999 < 250us', { kind: 'op-latency', op: 'inventory', stat: 'p99.9' }, 'latency', '<', { kind: 'absolute', value: 0.25 }],
    ['checkin.p95 < 800ms', { kind: 'op-latency', op: 'checkin', stat: 'p95' }, 'latency', '<', { kind: 'absolute', value: 800 }],
    ['checkin.p99.9 < 2s', { kind: 'op-latency', op: 'checkin', stat: 'p99.9' }, 'latency', '<', { kind: 'absolute', value: 2000 }],
    ['latency.p95 <= +10%', { kind: 'latency', stat: 'p95' }, 'latency', '<=', { kind: 'relative', changePct: 10, ratio: 1.1 }],
    ['latency.p99.9<1.5s', { kind: 'latency', stat: 'p99.9' }, 'latency', '<', { kind: 'absolute', value: 1500 }],
    ['latency.p999 < 3s', { kind: 'latency', stat: 'p99.9' }, 'latency', '<', { kind: 'absolute', value: 3000 }],
    ['command-result.mean < 1.5s', { kind: 'op-latency', op: 'command-result', stat: 'mean' }, 'latency', '<', { kind: 'absolute', value: 1500 }],
    ['latency.max <= 3s', { kind: 'latency', stat: 'max' }, 'latency', '<=', { kind: 'absolute', value: 3000 }],
    ['latency.p90 < 800µs', { kind: 'latency', stat: 'p90' }, 'latency', '<', { kind: 'absolute', value: 0.8 }],
    ['errors.rate < 0.1%', { kind: 'errors', field: 'rate' }, 'ratio', '<', { kind: 'absolute', value: 0.001 }],
    ['errors.rate <= 0.02', { kind: 'errors', field: 'rate' }, 'ratio', '<=', { kind: 'absolute', value: 0.02 }],
    ['errors.count == 0', { kind: 'errors', field: 'count' }, 'count', '==', { kind: 'absolute', value: 0 }],
    ['throughput.achieved >= 250/s', { kind: 'throughput', field: 'achieved' }, 'rate', '>=', { kind: 'absolute', value: 250 }],
    ['throughput.offered != 100', { kind: 'throughput', field: 'offered' }, 'rate', '!=', { kind: 'absolute', value: 100 }],
    ['ceiling.agents >= 40000', { kind: 'ceiling', field: 'agents' }, 'count', '>=', { kind: 'absolute', value: 40000 }],
    ['ceiling.rps > 1200/s', { kind: 'ceiling', field: 'rps' }, 'rate', '>', { kind: 'absolute', value: 1200 }],
    ['tier[web-agent].ceiling.agents >= 20000', { kind: 'tier-ceiling', tier: 'web-agent', field: 'agents' }, 'count', '>=', { kind: 'absolute', value: 20000 }],
    ['tier[db].ceiling.rps >= 900', { kind: 'tier-ceiling', tier: 'db', field: 'rps' }, 'rate', '>=', { kind: 'absolute', value: 900 }],
    // A tier a topology file named itself: whether the run has it, the result says.
    ['tier[edge-web].ceiling.rps >= 900', { kind: 'tier-ceiling', tier: 'edge-web', field: 'rps' }, 'rate', '>=', { kind: 'absolute', value: 900 }],
    ['node[web-1].utilization < 0.8', { kind: 'node', node: 'web-1', field: 'utilization' }, 'ratio', '<', { kind: 'absolute', value: 0.8 }],
    ['node[web-1].utilization < 80%', { kind: 'node', node: 'web-1', field: 'utilization' }, 'ratio', '<', { kind: 'absolute', value: 0.8 }],
    ['node[db-1].queue <= 5', { kind: 'node', node: 'db-1', field: 'queue' }, 'count', '<=', { kind: 'absolute', value: 5 }],
    ['node[app-1].p99 < 50ms', { kind: 'node', node: 'app-1', field: 'p99' }, 'latency', '<', { kind: 'absolute', value: 50 }],
    ['node[app-1].cpu < 1.5', { kind: 'node', node: 'app-1', field: 'cpu' }, 'cores', '<', { kind: 'absolute', value: 1.5 }],
    ['node[proxy-1].rate > 100/s', { kind: 'node', node: 'proxy-1', field: 'rate' }, 'rate', '>', { kind: 'absolute', value: 100 }],
    ['generator.lagP99 < 2ms', { kind: 'generator', field: 'lagP99' }, 'latency', '<', { kind: 'absolute', value: 2 }],
    ['checkin.p99 <= +10%', { kind: 'op-latency', op: 'checkin', stat: 'p99' }, 'latency', '<=', { kind: 'relative', changePct: 10, ratio: 1.1 }],
    ['ceiling.agents >= -5%', { kind: 'ceiling', field: 'agents' }, 'count', '>=', { kind: 'relative', changePct: -5, ratio: 0.95 }],
    ['  errors.rate   <   +0%  ', { kind: 'errors', field: 'rate' }, 'ratio', '<', { kind: 'relative', changePct: 0, ratio: 1 }],
  ])('%s', (text, ref, valueKind, op, value) => {
    const t = parseThreshold(text, '--threshold');
    expect(t.metric.ref).toEqual(ref);
    expect(t.metric.valueKind).toBe(valueKind);
    expect(t.op).toBe(op);
    expect(t.value).toMatchObject(value);
    expect(t.text).toBe(text);
    expect(t.source).toBe('--threshold');
  });

  it('keeps the metric as written as its name (the key --threshold overrides by)', () => {
    expect(parseThreshold('node[web-agent-1].p99<5ms', 'x').metric.name).toBe('node[web-agent-1].p99');
    expect(parseThreshold('node[web-agent-1].p99<5ms', 'x').value).toEqual({ kind: 'absolute', value: 5, text: '5ms' });
  });
});

describe("threshold grammar: k6's p(N) and the older p999 name the same stat", () => {
  it.each([
    ['checkin.p(50) < 200ms', 'checkin.p50', 'p50'],
    ['checkin.p(90) < 400ms', 'checkin.p90', 'p90'],
    ['checkin.p(95) < 800ms', 'checkin.p95', 'p95'],
    ['checkin.p(99) < 1s', 'checkin.p99', 'p99'],
    ['checkin.p(99.9) < 2s', 'checkin.p99.9', 'p99.9'],
    ['checkin.p999 < 2s', 'checkin.p99.9', 'p99.9'],
  ] as const)('%s is %s', (text, name, stat) => {
    const t = parseThreshold(text, '--threshold');
    expect(t.metric).toEqual({ name, ref: { kind: 'op-latency', op: 'checkin', stat }, valueKind: 'latency' });
    expect(t.text).toBe(text);
  });

  it.each([
    ['latency.p(50) < 200ms', 'latency.p50', 'p50'],
    ['latency.p(90) < 400ms', 'latency.p90', 'p90'],
    ['latency.p(95) < 800ms', 'latency.p95', 'p95'],
    ['latency.p(99) < 1s', 'latency.p99', 'p99'],
    ['latency.p(99.9) < 2s', 'latency.p99.9', 'p99.9'],
    ['latency.p999 < 2s', 'latency.p99.9', 'p99.9'],
  ] as const)('%s is %s', (text, name, stat) => {
    expect(parseThreshold(text, '--threshold').metric).toEqual({ name, ref: { kind: 'latency', stat }, valueKind: 'latency' });
  });

  it('parses k6 spellings with the operator right after them, and keeps their value and unit rules', () => {
    expect(parseThreshold('heartbeat.p(95)<=+5%', 'x')).toMatchObject({ op: '<=', value: { kind: 'relative', changePct: 5 }, metric: { name: 'heartbeat.p95' } });
    expect(() => parseThreshold('checkin.p(95) < 800', 'x')).toThrow('x "checkin.p(95) < 800": expected a duration like 500ms after "<", got "800" (checkin.p95 is a latency: give a unit, us, ms or s)');
  });
});

describe('threshold grammar: malformed expressions get one exact line', () => {
  const T = '--threshold';
  it.each([
    ['', 'expected METRIC OP VALUE, like "checkin.p99 < 500ms", got nothing'],
    ['checkin.p99 < fast', 'expected a duration like 500ms after "<", got "fast"'],
    ['checkin.p99 <', 'expected a duration like 500ms after "<", got nothing'],
    ['checkin.p99 < 500', 'expected a duration like 500ms after "<", got "500" (checkin.p99 is a latency: give a unit, us, ms or s)'],
    ['checkin.p99 < 500kb', 'expected a duration like 500ms after "<", got "500kb"'],
    ['checkin.p99 < 500 ms', 'expected the unit right after the number, like "500ms", got "500 ms"'],
    ['checkin.p99', 'expected an operator (<, <=, >, >=, ==, !=) after "checkin.p99", got nothing'],
    ['checkin.p99 500ms', 'expected an operator (<, <=, >, >=, ==, !=) after "checkin.p99", got "500ms"'],
    ['checkin.p99 => 500ms', 'expected an operator (<, <=, >, >=, ==, !=) after "checkin.p99", got "=>"'],
    ['checkin.p99 = 500ms', 'expected an operator (<, <=, >, >=, ==, !=) after "checkin.p99", got "="'],
    ['< 500ms', 'expected a metric like checkin.p99 before "<", got nothing'],
    ['checkin.p98 < 500ms', 'unknown metric "checkin.p98"; did you mean "checkin.p90" or "checkin.p95" or "checkin.p99"?'],
    ['checkin.p9 < 500ms', 'unknown metric "checkin.p9"; did you mean "checkin.p90" or "checkin.p95" or "checkin.p99" or "checkin.p99.9"?'],
    ['checkin.p(97) < 800ms', 'unknown metric "checkin.p(97)"; percentiles: p(50), p(90), p(95), p(99), p(99.9) (or p50, p90, p95, p99, p99.9); other stats: max, mean'],
    ['latency.p(99.99) < 2s', 'unknown metric "latency.p(99.99)"; percentiles: p(50), p(90), p(95), p(99), p(99.9) (or p50, p90, p95, p99, p99.9); other stats: max, mean'],
    ['checkin.p(95 < 800ms', 'unknown metric "checkin.p(95"; did you mean "checkin.p95"?'],
    ['checkin.p(999) < 2s', 'unknown metric "checkin.p(999)"; percentiles: p(50), p(90), p(95), p(99), p(99.9) (or p50, p90, p95, p99, p99.9); other stats: max, mean'],
    ['generator.lagp99 < 2ms', 'unknown metric "generator.lagp99"; did you mean "generator.lagP99"?'],
    ['ceiling.agent >= 40000', 'unknown metric "ceiling.agent"; did you mean "ceiling.agents"?'],
    ['errors.ratio < 1%', 'unknown metric "errors.ratio"; did you mean "errors.rate"?'],
    ['node[web-1].util < 0.8', 'unknown metric "node[web-1].util"; did you mean "node[web-1].utilization"?'],
    ['cpu < 2', `unknown metric "cpu"; known: ${KNOWN}`],
    ['latency.p99.ms < 5ms', 'unknown metric "latency.p99.ms"; did you mean "latency.p99.9"?'],
    ['latency.p99.ms.x < 5ms', `unknown metric "latency.p99.ms.x"; known: ${KNOWN}`],
    ['tier[Web-Agent].ceiling.agents >= 100', 'expected a tier name inside tier[…] (lowercase letters, digits and "-", like single, proxy, web-agent, web-user, app, db, relay, analytics or a topology file\'s own), got "Web-Agent"'],
    ['node[].utilization < 0.8', 'expected a node name inside node[…], got nothing'],
    ['node[web-1.utilization < 0.8', 'expected "]" to close "node[" in "node[web-1.utilization"'],
    ['errors.rate < 5', 'expected a fraction from 0 to 1 or a percentage like 0.1% after "<", got "5"'],
    ['errors.rate < 150%', 'expected a fraction from 0 to 1 or a percentage like 0.1% after "<", got "150%"'],
    ['errors.rate < 5ms', 'expected a fraction from 0 to 1 or a percentage like 0.1% after "<", got "5ms"'],
    ['ceiling.agents >= 40k', 'expected a number like 40000 after ">=", got "40k"'],
    ['ceiling.agents >= 40,000', 'expected a number like 40000 after ">=", got "40,000"'],
    ['throughput.achieved > 100/min', 'expected a rate like 250/s after ">", got "100/min"'],
    ['node[app-1].cpu < 150%', 'expected a number of CPU cores like 1.5 after "<", got "150%"'],
    ['checkin.p99 == +10%', 'a baseline-relative value (+10%) needs <, <=, > or >=, got "=="'],
    ['checkin.p99 <= +10', 'expected a baseline-relative change like +10% or -5% after "<=", got "+10"'],
    ['checkin.p99 < -5ms', 'expected a baseline-relative change like +10% or -5% after "<", got "-5ms"'],
    ['ceiling.agents >= -100%', 'a relative change must be above -100%, got "-100%"'],
    ['checkin.p99 < 500ms and more', 'unexpected "and more" after the value "500ms"'],
    ['checkin.p99 < .5s', 'expected a duration like 500ms after "<", got ".5s"'],
  ])('%j', (text, detail) => {
    let err: unknown;
    try {
      parseThreshold(text, T);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ThresholdError);
    expect((err as ThresholdError).message).toBe(`--threshold ${JSON.stringify(text)}: ${detail}`);
    expect((err as ThresholdError).exitCode).toBe(2);
  });

  it('names where a scenario threshold came from', () => {
    expect(() => parseThreshold('checkin.p99 < fast', 'reports/ci/result.json: thresholds[1]')).toThrow(
      'reports/ci/result.json: thresholds[1] "checkin.p99 < fast": expected a duration like 500ms after "<", got "fast"',
    );
  });
});

describe('formatMetricValue', () => {
  it.each([
    ['latency', 412.159, '412 ms'],
    ['latency', 2.5, '2.5 ms'],
    ['latency', 0.25, '250 µs'],
    ['latency', 12_345, '12.3 s'],
    ['ratio', 0.0012, '0.12%'],
    ['count', 40000, '40,000'],
    ['rate', 99.5, '99.5/s'],
    ['cores', 1.5, '1.5 cores'],
  ] as const)('%s %d → %s', (kind, v, text) => {
    expect(formatMetricValue(kind, v)).toBe(text);
  });
});
