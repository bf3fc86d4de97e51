import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  addEncoded,
  createLatencyHistogram,
  decodeHistogram,
  encodeHistogram,
  encodeHistogramWire,
  HlogBuilder,
  mergeEncoded,
  readHlog,
  recordUs,
  summarize,
} from '../../src/metrics/histogram.js';

describe('HDR histograms (µs)', () => {
  it('merges encoded histograms from several workers exactly', () => {
    // Worker A: 1..1000 ms in 1 ms steps; worker B: 1001..2000 ms. Merged = 1..2000 ms.
    const a = createLatencyHistogram();
    const b = createLatencyHistogram();
    const whole = createLatencyHistogram();
    for (let ms = 1; ms <= 1000; ms++) recordUs(a, ms * 1000);
    for (let ms = 1001; ms <= 2000; ms++) recordUs(b, ms * 1000);
    for (let ms = 1; ms <= 2000; ms++) recordUs(whole, ms * 1000);
    const merged = mergeEncoded([encodeHistogram(a), encodeHistogram(b)]);
    expect(merged.totalCount).toBe(2000);
    for (const p of [50, 90, 99, 99.9, 100]) expect(merged.getValueAtPercentile(p)).toBe(whole.getValueAtPercentile(p));
    // 3 significant digits: 1,000,000 µs is held to within 0.1%.
    expect(merged.getValueAtPercentile(50)).toBeGreaterThanOrEqual(999_000);
    expect(merged.getValueAtPercentile(50)).toBeLessThanOrEqual(1_001_000);
    expect(summarize(merged)).toEqual(summarize(whole));
  });

  it('summarizes a known histogram exactly: p50, p90, p95, p99, p99.9 and max', () => {
    // 1..1000 µs, one each: below 2048 µs every value has its own bucket, so percentiles are exact.
    const even = createLatencyHistogram();
    for (let us = 1; us <= 1000; us++) recordUs(even, us);
    expect(summarize(even)).toEqual({ count: 1000, minUs: 1, meanUs: 500.5, p50Us: 500, p90Us: 900, p95Us: 950, p99Us: 990, p999Us: 999, maxUs: 1000 });
    // A tail that starts between p90 and p95: 930 requests at 100 µs, 70 at 1500 µs. p90 is still
    // 100 µs; p95 (the 950th) is in the tail.
    const tail = createLatencyHistogram();
    for (let i = 0; i < 930; i++) recordUs(tail, 100);
    for (let i = 0; i < 70; i++) recordUs(tail, 1500);
    expect(summarize(tail)).toMatchObject({ count: 1000, p50Us: 100, p90Us: 100, p95Us: 1500, p99Us: 1500, maxUs: 1500 });
    // Empty: zeros, p95 included.
    expect(summarize(createLatencyHistogram())).toEqual({ count: 0, minUs: 0, meanUs: 0, p50Us: 0, p90Us: 0, p95Us: 0, p99Us: 0, p999Us: 0, maxUs: 0 });
  });

  it('survives an encode/decode round trip bit for bit', () => {
    const h = createLatencyHistogram();
    for (const v of [1, 7, 250, 12_345, 999_999, 3_600_000_000]) recordUs(h, v);
    const back = decodeHistogram(encodeHistogram(h));
    expect(encodeHistogram(back)).toBe(encodeHistogram(h));
    expect(back.getValueAtPercentile(100)).toBe(h.getValueAtPercentile(100));
    expect(back.totalCount).toBe(6);
  });

  it('carries the same counts uncompressed (the workers\' wire form): round trip, merge, empty', () => {
    const h = createLatencyHistogram();
    // Large counts (multi-byte LEB128), long zero runs, both ends of the range.
    for (let i = 0; i < 5_000_000; i++) if (i % 1000 === 0) recordUs(h, 800);
    h.recordValueWithCount(800, 4_000_000);
    for (const v of [1, 2, 3, 250, 12_345, 999_999, 3_600_000_000]) recordUs(h, v);
    const back = decodeHistogram(encodeHistogramWire(h));
    expect(back.totalCount).toBe(h.totalCount);
    expect(encodeHistogram(back)).toBe(encodeHistogram(h));
    const other = createLatencyHistogram();
    recordUs(other, 42);
    const merged = mergeEncoded([encodeHistogramWire(h), encodeHistogram(other)]);
    expect(merged.totalCount).toBe(h.totalCount + 1);
    expect(merged.minNonZeroValue).toBe(1);
    const empty = decodeHistogram(encodeHistogramWire(createLatencyHistogram()));
    expect(empty.totalCount).toBe(0);
  });

  it('writes the wire form as exactly the V2 encoding the library deflates', () => {
    const h = createLatencyHistogram();
    for (const v of [5, 5, 900, 901, 70_000, 2_000_000]) recordUs(h, v);
    const wire = Buffer.from(encodeHistogramWire(h), 'base64');
    const compressed = Buffer.from(encodeHistogram(h), 'base64');
    const lib = inflateSync(compressed.subarray(8, 8 + compressed.readInt32BE(4)));
    expect(wire.readInt32BE(0)).toBe(lib.readInt32BE(0)); // cookie
    expect(wire.readInt32BE(4)).toBe(lib.readInt32BE(4)); // payload length
    expect(wire.subarray(12, 32)).toEqual(lib.subarray(12, 32)); // digits, lowest, highest
    expect(wire.subarray(40)).toEqual(lib.subarray(40)); // the counts
    expect(wire.readDoubleBE(32)).toBe(1); // conversion ratio, as a double like the Java encoder
  });

  it('adds an encoded histogram in place exactly as decoding it and adding would, either form', () => {
    const a = createLatencyHistogram();
    const b = createLatencyHistogram();
    for (let i = 1; i <= 5000; i++) recordUs(a, (i * 7919) % 2_000_000);
    a.recordValueWithCount(123_456, 3_000_000_000); // a count past 2^31: a five-byte LEB128 word
    for (const v of [1, 3_600_000_000, 42]) recordUs(b, v);
    for (const enc of [encodeHistogramWire, encodeHistogram]) {
      const viaDecode = createLatencyHistogram();
      const inPlace = createLatencyHistogram();
      recordUs(viaDecode, 77);
      recordUs(inPlace, 77);
      for (const h of [a, b]) {
        viaDecode.add(decodeHistogram(enc(h)));
        addEncoded(inPlace, enc(h));
      }
      addEncoded(inPlace, '');
      expect(encodeHistogram(inPlace)).toBe(encodeHistogram(viaDecode));
      expect(summarize(inPlace)).toEqual(summarize(viaDecode));
      expect(inPlace.minNonZeroValue).toBe(viaDecode.minNonZeroValue);
      expect(inPlace.maxValue).toBe(viaDecode.maxValue);
    }
  });

  it('refuses a string that is not a V2 encoding, in one line', () => {
    expect(() => decodeHistogram(Buffer.from('not a histogram').toString('base64'))).toThrow(/^not an HdrHistogram V2 encoding \(cookie 0x[0-9a-f]+\)$/);
  });

  it('clamps values outside 1 µs … 1 h instead of dropping them', () => {
    const h = createLatencyHistogram();
    recordUs(h, 0);
    recordUs(h, -5);
    recordUs(h, 1e12);
    expect(h.totalCount).toBe(3);
    expect(h.minNonZeroValue).toBe(1);
    expect(h.getValueAtPercentile(100)).toBeGreaterThanOrEqual(3_600_000_000 * 0.999);
  });

  it('writes an interval log that the HdrHistogram log reader reads back, tags and times included', () => {
    const start = 1_700_000_000_000;
    const log = new HlogBuilder(start, 'test run');
    const h1 = createLatencyHistogram();
    const h2 = createLatencyHistogram();
    for (let i = 0; i < 100; i++) recordUs(h1, 1000 + i);
    for (let i = 0; i < 10; i++) recordUs(h2, 50_000);
    log.addInterval('checkin', h1, start, start + 1000);
    log.addInterval('inventory', h2, start + 1000, start + 2000);
    const text = log.toString();
    expect(text).toContain('#[Histogram log format version 1.3]');
    expect(text).toContain('"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"');
    const back = readHlog(text);
    expect(back.map((i) => [i.tag, i.histogram.totalCount])).toEqual([
      ['checkin', 100],
      ['inventory', 10],
    ]);
    expect(back[1].histogram.getValueAtPercentile(50)).toBe(h2.getValueAtPercentile(50));
  });
});
