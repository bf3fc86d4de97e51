import { describe, expect, it } from 'vitest';
import { PromText, promSamples, type PromSample } from '../../src/metrics/prometheus.js';

const all = (text: string): PromSample[] => [...promSamples(text)];

describe('promSamples', () => {
  it.each<[string, string, PromSample[]]>([
    ['labelled', 'rmmscale_requests_total{node="web-1",route="checkin",status="200"} 40', [{ name: 'rmmscale_requests_total', labels: { node: 'web-1', route: 'checkin', status: '200' }, value: 40 }]],
    ['no labels', 'process_cpu_seconds_total 1.25', [{ name: 'process_cpu_seconds_total', labels: {}, value: 1.25 }]],
    ['empty braces', 'up{} 1', [{ name: 'up', labels: {}, value: 1 }]],
    ['trailing comma, spaces, timestamp', 'x{a = "1", b="2",} 3 1700000000000', [{ name: 'x', labels: { a: '1', b: '2' }, value: 3 }]],
    ['escapes and braces in values', 'x{v="a\\"}\\\\b\\nc"} 1', [{ name: 'x', labels: { v: 'a"}\\b\nc' }, value: 1 }]],
    ['infinities and NaN', 'b{le="+Inf"} +Inf\nc -Inf\nd NaN', [
      { name: 'b', labels: { le: '+Inf' }, value: Infinity },
      { name: 'c', labels: {}, value: -Infinity },
      { name: 'd', labels: {}, value: NaN },
    ]],
    ['comments and blank lines skipped', '# HELP x h\n# TYPE x counter\n\nx 2\n', [{ name: 'x', labels: {}, value: 2 }]],
    ['malformed lines skipped', 'x{a=1} 2\nx{a="1" 2\nx{a="1"}2\nx\n{a="1"} 2\ny 5', [{ name: 'y', labels: {}, value: 5 }]],
  ])('%s', (_, text, expected) => {
    expect(all(text)).toEqual(expected);
  });

  it('reads back what PromText renders', () => {
    const text = new PromText()
      .metric('m_total', 'counter', 'help', [{ labels: { route: 'proxy:agent', note: 'a "b"\\c' }, value: 7 }])
      .histogram('h_seconds', 'help', [{ labels: { route: 'r' }, boundsSec: [0.5], cumulative: [1], sumSec: 0.25, count: 2 }])
      .toString();
    expect(all(text)).toEqual([
      { name: 'm_total', labels: { route: 'proxy:agent', note: 'a "b"\\c' }, value: 7 },
      { name: 'h_seconds_bucket', labels: { route: 'r', le: '0.5' }, value: 1 },
      { name: 'h_seconds_bucket', labels: { route: 'r', le: '+Inf' }, value: 2 },
      { name: 'h_seconds_sum', labels: { route: 'r' }, value: 0.25 },
      { name: 'h_seconds_count', labels: { route: 'r' }, value: 2 },
    ]);
  });
});
