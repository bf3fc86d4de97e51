import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bucketIncrease, bucketQuantileUs, mappedSecond, readMapped, unmatchedSignals, type MappingSignals } from '../../src/metrics/mapped-scrape.js';
import { parseSelector, selects, SelectorSyntaxError } from '../../src/metrics/prom-selector.js';
import { parseMapping, signalsFor } from '../../src/scenario/mapping.js';

const NONE: MappingSignals = { requests: null, errors: null, busyWorkers: null, workers: null, utilization: null, queueDepth: null, latency: null };
const sel = parseSelector;

describe('parseSelector', () => {
  it.each<[string, string, Array<[string, string, string]>]>([
    ['bare name', 'up', []],
    ['one equality', 'haproxy_backend_http_requests_total{proxy="agents"}', [['proxy', '=', 'agents']]],
    ['every operator, spaces, trailing comma', 'x{ a = "1", b!="2",c=~"3|4", d !~ "5.*", }', [['a', '=', '1'], ['b', '!=', '2'], ['c', '=~', '3|4'], ['d', '!~', '5.*']]],
    ['escaped quote and comma in a value', 'x{a="q\\"u,o"}', [['a', '=', 'q"u,o']]],
    ['empty braces', 'x{}', []],
  ])('%s', (_, text, expected) => {
    expect(sel(text).matchers.map((m) => [m.label, m.op, m.value])).toEqual(expected);
  });

  it.each<[string, string]>([
    ['{a="1"}', 'a metric name first ([a-zA-Z_:][a-zA-Z0-9_:]*)'],
    ['x{a="1"', '"," or "}" after a="1", got the end'],
    ['x{a=1}', 'a label matcher like label="value" (=, !=, =~, !~) at "a=1}"'],
    ['x{a=~"("}', 'a valid regular expression for a=~, got "("'],
    ['x{a="1"} y', 'nothing after "}", got " y"'],
    ['x y', '"{" or the end after the metric name x, got " y"'],
  ])('refuses %s', (text, message) => {
    expect(() => sel(text)).toThrow(SelectorSyntaxError);
    expect(() => sel(text)).toThrow(message);
  });

  it('matches as PromQL does: a missing label is "", regexes are anchored', () => {
    const s = (labels: Record<string, string>) => ({ name: 'm', labels, value: 1 });
    expect(selects(sel('m{mode!="idle"}'), s({ mode: 'user' }))).toBe(true);
    expect(selects(sel('m{mode!="idle"}'), s({ mode: 'idle' }))).toBe(false);
    expect(selects(sel('m{mode!="idle"}'), s({}))).toBe(true);
    expect(selects(sel('m{code=~"5.."}'), s({ code: '503' }))).toBe(true);
    expect(selects(sel('m{code=~"5.."}'), s({ code: '1503' }))).toBe(false);
    expect(selects(sel('m{code!~"2.*"}'), s({ code: '200' }))).toBe(false);
    expect(selects(sel('m{a="1"}'), { name: 'n', labels: { a: '1' }, value: 1 })).toBe(false);
  });
});

const TEXT = `# HELP app_requests_total Requests.
# TYPE app_requests_total counter
app_requests_total{route="checkin",code="200"} 1000
app_requests_total{route="checkin",code="503"} 20
app_requests_total{route="health",code="200"} 7
# TYPE app_busy_workers gauge
app_busy_workers{pid="1"} 3
app_busy_workers{pid="2"} 4
# TYPE app_queue gauge
app_queue 12
# TYPE app_latency_seconds histogram
app_latency_seconds_bucket{route="checkin",le="0.01"} 100
app_latency_seconds_bucket{route="checkin",le="0.1"} 900
app_latency_seconds_bucket{route="checkin",le="1"} 1000
app_latency_seconds_bucket{route="checkin",le="+Inf"} 1020
app_latency_seconds_sum{route="checkin"} 75.5
app_latency_seconds_count{route="checkin"} 1020
app_latency_seconds_bucket{route="health",le="0.01"} 7
app_latency_seconds_bucket{route="health",le="+Inf"} 7
`;

describe('readMapped', () => {
  const m: MappingSignals = {
    ...NONE,
    requests: sel('app_requests_total{route="checkin"}'),
    errors: sel('app_requests_total{route="checkin",code=~"5.."}'),
    busyWorkers: sel('app_busy_workers'),
    workers: 8,
    queueDepth: sel('app_queue'),
    latency: { histogram: sel('app_latency_seconds{route="checkin"}'), unitSec: 1 },
  };

  it('sums counters and gauges over the matched series and keeps the histogram buckets in µs', () => {
    const r = readMapped(TEXT, m, 5000);
    expect(r).toMatchObject({ atMs: 5000, requestsTotal: 1020, errorsTotal: 20, busyWorkers: 7, workers: 8, queueDepth: 12, utilizationGauge: null, busySecondsTotal: null });
    expect([...r.bucketsUs!]).toEqual([[10_000, 100], [100_000, 900], [1_000_000, 1000], [Infinity, 1020]]);
    expect(unmatchedSignals(m, r)).toEqual([]);
  });

  it('one second: counter rates, busy ÷ workers as utilisation; a counter that went down was reset', () => {
    const a = readMapped(TEXT, m, 0);
    const b = { ...a, atMs: 2000, requestsTotal: 1220, errorsTotal: 10 };
    expect(mappedSecond(a, b)).toEqual({ requestsPerSec: 100, errorsPerSec: 5, busyWorkers: 7, queueDepth: 12, utilization: 0.875 });
  });

  it('busy CPU seconds over the number of distinct cpu labels (node_exporter)', () => {
    const at = (t: number, user0: number, user1: number, idle: number): string =>
      `node_cpu_seconds_total{cpu="0",mode="idle"} ${idle}\nnode_cpu_seconds_total{cpu="0",mode="user"} ${user0}\nnode_cpu_seconds_total{cpu="0",mode="system"} 1\n` +
      `node_cpu_seconds_total{cpu="1",mode="idle"} ${idle}\nnode_cpu_seconds_total{cpu="1",mode="user"} ${user1}\nnode_cpu_seconds_total{cpu="1",mode="system"} 1\n`;
    const nm = signalsFor(parseMapping(readFileSync('mappings/node-exporter.yaml', 'utf8'), 'mappings/node-exporter.yaml'), 'web');
    const a = readMapped(at(0, 10, 20, 100), nm, 0);
    expect(a.busySecondsTotal).toBe(32);
    expect(a.busyOver).toBe(2);
    // 1.5 busy seconds per second on cpu 0 and 0.5 on cpu 1, over 2 s: (3 + 1) / 2 s / 2 cpus
    const b = readMapped(at(0, 13, 21, 101), nm, 2000);
    expect(mappedSecond(a, b)!.utilization).toBe(1);
  });

  it('an error counter without series has counted nothing yet', () => {
    const r = readMapped('app_requests_total{code="200"} 5\n', { ...NONE, requests: sel('app_requests_total'), errors: sel('app_requests_total{code=~"5.."}') }, 0);
    expect([r.requestsTotal, r.errorsTotal]).toEqual([5, 0]);
  });

  it('names the signals whose selector matched nothing', () => {
    const r = readMapped(TEXT, { ...m, queueDepth: sel('app_queue_depth'), workers: sel('app_workers') }, 0);
    expect(unmatchedSignals({ ...m, queueDepth: sel('app_queue_depth'), workers: sel('app_workers') }, r)).toEqual(['workers', 'queueDepth']);
  });

  it('the shipped HAProxy mapping reads real HAProxy 2.6 exporter text: proxy and web tier', () => {
    const mapping = parseMapping(readFileSync('mappings/haproxy-exporter.yaml', 'utf8'), 'mappings/haproxy-exporter.yaml');
    const text = readFileSync('test/fixtures/haproxy-2.6-exporter.txt', 'utf8');
    const proxy = signalsFor(mapping, 'proxy');
    const web = signalsFor(mapping, 'web');
    expect(unmatchedSignals(proxy, readMapped(text, proxy, 0))).toEqual([]);
    expect(unmatchedSignals(web, readMapped(text, web, 0))).toEqual([]);
    expect(readMapped(text, proxy, 0)).toMatchObject({ requestsTotal: 0, busyWorkers: 0, workers: 100 });
    expect(readMapped(text, web, 0)).toMatchObject({ requestsTotal: 0, busyWorkers: 0, workers: 4, queueDepth: 0 });
  });
});

describe('bucket quantiles (histogram_quantile)', () => {
  const end = new Map([[10_000, 100], [100_000, 900], [1_000_000, 1000], [Infinity, 1020]]);
  const start = new Map([[10_000, 50], [100_000, 450], [1_000_000, 500], [Infinity, 500]]);

  it('per window: end − start, then interpolated inside the bucket', () => {
    const d = bucketIncrease(start, end);
    expect(d).toEqual([[10_000, 50], [100_000, 450], [1_000_000, 500], [Infinity, 520]]);
    // rank 0.5 × 520 = 260: in (10 ms, 100 ms], 210 of its 400 → 10 + 90 × 210/400 = 57.25 ms
    expect(bucketQuantileUs(d, 0.5)).toBe(57_250);
    // rank 26: in the first bucket, 0 → 10 ms: 10 × 26/50 = 5.2 ms
    expect(bucketQuantileUs(d, 0.05)).toBe(5_200);
    // rank 514.8: in +Inf: the highest finite bound
    expect(bucketQuantileUs(d, 0.99)).toBe(1_000_000);
    expect(bucketQuantileUs(bucketIncrease(end, end), 0.5)).toBeNull();
  });
});
