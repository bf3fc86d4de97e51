import * as hdr from 'hdr-histogram-js';
import { round } from '../core/units.js';

/**
 * The one module that imports hdr-histogram-js. Every latency in rmmscale is recorded here, in
 * microseconds, from 1 µs to one hour, with 3 significant digits (0.1% value precision). Histograms
 * cross process boundaries only as compressed base64 (the HdrHistogram V2 encoding), which merges
 * exactly: no t-digest, no rounded buckets.
 *
 * Plain-JS histograms are used on purpose: a record costs ~100 ns (vs ~25 ns for WASM), but they
 * need no `.destroy()`, so a histogram can never leak when a worker dies mid-interval.
 */

export const LATENCY_UNIT = 'us';
export const LOWEST_US = 1;
export const HIGHEST_US = 3_600_000_000;
export const SIGNIFICANT_DIGITS = 3;
const BIT_BUCKET_SIZE = 32;

export type LatencyHistogram = hdr.Histogram;

export function createLatencyHistogram(): LatencyHistogram {
  return hdr.build({
    bitBucketSize: BIT_BUCKET_SIZE,
    lowestDiscernibleValue: LOWEST_US,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: SIGNIFICANT_DIGITS,
    autoResize: false,
    useWebAssembly: false,
  });
}

/** Record one latency. Values are clamped into the trackable range, never dropped. */
export function recordUs(h: LatencyHistogram, valueUs: number): void {
  const v = valueUs < LOWEST_US ? LOWEST_US : valueUs > HIGHEST_US ? HIGHEST_US : Math.round(valueUs);
  h.recordValue(v);
}

/** The compressed V2 encoding, base64: what result files and --hlog carry. */
export function encodeHistogram(h: LatencyHistogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

/** HdrHistogram V2 cookies (the low nibble of the second byte is the word size, 0x10 here). */
const V2_COOKIE = 0x1c849313;
const V2_COMPRESSED_COOKIE = 0x1c849314;
const V2_HEADER_BYTES = 40;

/** What the JS histograms (never WASM here) offer beyond the `Histogram` interface. */
interface CountsAccess {
  countsArrayIndex(value: number): number;
  getCountAtIndex(index: number): number;
  valueFromIndex(index: number): number;
  highestEquivalentValue(value: number): number;
}
const JsHistogramDecoder = hdr.JsHistogram as unknown as { decode(data: Uint8Array, bitBucketSize: number): LatencyHistogram };

let scratch = new Uint8Array(4096);

function ensure(n: number): void {
  if (n <= scratch.length) return;
  const next = new Uint8Array(Math.max(n, scratch.length * 2));
  next.set(scratch);
  scratch = next;
}

/** ZigZag LEB128 (the V2 payload word), for any safe integer. Returns the new position. */
function putZigZag(pos: number, n: number): number {
  let v = n >= 0 ? n * 2 : -n * 2 - 1;
  ensure(pos + 10);
  while (v >= 0x80) {
    scratch[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  scratch[pos++] = v;
  return pos;
}

/**
 * The V2 encoding without its deflate wrapper, base64: for the once-a-second hop from a swarm worker
 * to the coordinator. The compressed form runs a zlib stream per histogram, whose native state
 * (~256 KB) is allocated and freed each time: in an idle tunnel worker that churn cost more CPU
 * than everything else it did. This form is the same counts, bit for bit, with run-length zeros,
 * and `decodeHistogram` reads both.
 */
export function encodeHistogramWire(h: LatencyHistogram): string {
  const c = h as unknown as CountsAccess;
  const limit = h.totalCount === 0 ? 0 : c.countsArrayIndex(h.maxValue) + 1;
  let pos = V2_HEADER_BYTES;
  let i = 0;
  while (i < limit) {
    const count = c.getCountAtIndex(i++);
    if (count !== 0) {
      pos = putZigZag(pos, count);
      continue;
    }
    let zeros = 1;
    while (i < limit && c.getCountAtIndex(i) === 0) {
      zeros++;
      i++;
    }
    pos = putZigZag(pos, zeros > 1 ? -zeros : 0);
  }
  // After the payload: writing it may have moved the scratch buffer.
  const header = new DataView(scratch.buffer);
  header.setInt32(0, V2_COOKIE);
  header.setInt32(4, pos - V2_HEADER_BYTES);
  header.setInt32(8, 0); // normalizing index offset
  header.setInt32(12, h.numberOfSignificantValueDigits);
  header.setBigInt64(16, BigInt(LOWEST_US)); // every histogram here is created with it
  header.setBigInt64(24, BigInt(h.highestTrackableValue));
  header.setFloat64(32, 1); // integer-to-double conversion ratio
  return Buffer.from(scratch.buffer, 0, pos).toString('base64');
}

/** Either V2 form: compressed (`encodeHistogram`) or not (`encodeHistogramWire`). '' is empty. */
export function decodeHistogram(encoded: string): LatencyHistogram {
  if (encoded === '') return createLatencyHistogram();
  const bytes = Buffer.from(encoded, 'base64');
  const cookie = bytes.length >= 4 ? bytes.readInt32BE(0) : 0;
  if (cookie !== V2_COOKIE && cookie !== V2_COMPRESSED_COOKIE) throw new Error(`not an HdrHistogram V2 encoding (cookie 0x${(cookie >>> 0).toString(16)})`);
  const decoded = cookie === V2_COOKIE ? JsHistogramDecoder.decode(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), BIT_BUCKET_SIZE) : hdr.decodeFromCompressedBase64(encoded, BIT_BUCKET_SIZE, false);
  // Re-home into a histogram with our range, so later merges never depend on the encoder's.
  const h = createLatencyHistogram();
  h.add(decoded);
  return h;
}

/**
 * Add an encoded histogram into `target`, exactly as `target.add(decodeHistogram(encoded))` would.
 * The wire form with this module's range and precision is read straight into `target`, count by
 * count: no histogram (~94 KB of counts) is built and dropped per decode. The coordinator merges
 * dozens of these a second.
 */
export function addEncoded(target: LatencyHistogram, encoded: string): void {
  if (encoded === '') return;
  const bytes = Buffer.from(encoded, 'base64');
  const ours =
    bytes.length >= V2_HEADER_BYTES &&
    bytes.readInt32BE(0) === V2_COOKIE &&
    bytes.readInt32BE(12) === SIGNIFICANT_DIGITS &&
    bytes.readBigInt64BE(16) === BigInt(LOWEST_US) &&
    bytes.readBigInt64BE(24) === BigInt(HIGHEST_US);
  if (!ours) {
    target.add(decodeHistogram(encoded));
    return;
  }
  const t = target as unknown as { valueFromIndex(index: number): number; highestEquivalentValue(value: number): number };
  const end = Math.min(bytes.length, V2_HEADER_BYTES + bytes.readInt32BE(4));
  let pos = V2_HEADER_BYTES;
  let index = 0;
  let top = -1;
  while (pos < end) {
    // ZigZag LEB128-64b9B: seven bits a byte for eight bytes, all eight bits of a ninth.
    let v = 0;
    let scale = 1;
    for (let k = 0; k < 9 && pos < end; k++) {
      const b = bytes[pos++];
      if (k === 8) {
        v += b * scale;
        break;
      }
      v += (b & 0x7f) * scale;
      scale *= 0x80;
      if ((b & 0x80) === 0) break;
    }
    const n = v % 2 === 0 ? v / 2 : -(v + 1) / 2;
    if (n < 0) {
      index += -n;
      continue;
    }
    if (n > 0) {
      target.recordValueWithCount(t.valueFromIndex(index), n);
      top = index;
    }
    index++;
  }
  // add() takes the top bucket's highest value as the max; a zero count moves only the max.
  if (top >= 0) target.recordValueWithCount(t.highestEquivalentValue(t.valueFromIndex(top)), 0);
}

/** Exact merge of encoded histograms into one. */
export function mergeEncoded(encoded: Iterable<string>): LatencyHistogram {
  const out = createLatencyHistogram();
  for (const e of encoded) addEncoded(out, e);
  return out;
}

/**
 * A histogram in numbers, microseconds. `summarize` fills every field; a summary read back from a
 * result file written before p95 was recorded has no `p95Us`, so readers treat it as missing.
 */
export interface LatencySummary {
  count: number;
  minUs: number;
  meanUs: number;
  p50Us: number;
  p90Us: number;
  /** Absent in results written before p95 was recorded: show "–", never 0. */
  p95Us?: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
}

export function summarize(h: LatencyHistogram): LatencySummary {
  if (h.totalCount === 0) return { count: 0, minUs: 0, meanUs: 0, p50Us: 0, p90Us: 0, p95Us: 0, p99Us: 0, p999Us: 0, maxUs: 0 };
  return {
    count: h.totalCount,
    minUs: h.minNonZeroValue,
    meanUs: round(h.mean, 1),
    p50Us: h.getValueAtPercentile(50),
    p90Us: h.getValueAtPercentile(90),
    p95Us: h.getValueAtPercentile(95),
    p99Us: h.getValueAtPercentile(99),
    p999Us: h.getValueAtPercentile(99.9),
    // The bucket's top (within 0.1%): the same whether or not the histogram went through a merge.
    maxUs: h.getValueAtPercentile(100),
  };
}

/**
 * Builds a standard HdrHistogram interval log (the `.hlog` format read by HdrHistogram's
 * HistogramLogProcessor and friends): a version line, a start time, a legend, then one line per
 * (tag, interval). Values are microseconds; the "Interval_Max" column is in milliseconds
 * (maxValueUnitRatio = 1000).
 */
export class HlogBuilder {
  private readonly lines: string[] = [];
  private readonly writer: hdr.HistogramLogWriter;
  private readonly startMs: number;

  constructor(startMs: number, comment?: string) {
    this.startMs = startMs;
    this.writer = new hdr.HistogramLogWriter((s: string) => this.lines.push(s));
    if (comment) this.writer.outputComment(comment);
    this.writer.outputComment(`values in microseconds (${LATENCY_UNIT}); Interval_Max in milliseconds`);
    this.writer.outputLogFormatVersion();
    this.writer.outputStartTime(startMs);
    this.writer.outputLegend();
  }

  addInterval(tag: string, h: LatencyHistogram, fromMs: number, toMs: number): void {
    const prevTag = h.tag;
    h.tag = tag;
    this.writer.outputIntervalHistogram(h, (fromMs - this.startMs) / 1000, (toMs - this.startMs) / 1000, 1000);
    h.tag = prevTag;
  }

  toString(): string {
    return this.lines.join('');
  }
}

/** Reads an .hlog back: every interval histogram with its tag and times (seconds from start). */
export function readHlog(content: string): Array<{ tag: string; startSec: number; endSec: number; histogram: LatencyHistogram }> {
  const reader = new hdr.HistogramLogReader(content, BIT_BUCKET_SIZE, false);
  const out: Array<{ tag: string; startSec: number; endSec: number; histogram: LatencyHistogram }> = [];
  for (let h = reader.nextIntervalHistogram(); h; h = reader.nextIntervalHistogram()) {
    out.push({ tag: h.tag, startSec: h.startTimeStampMsec / 1000, endSec: h.endTimeStampMsec / 1000, histogram: h });
  }
  return out;
}

/**
 * Prometheus histogram buckets from an HDR histogram: for each bound (µs, ascending), how many
 * recorded values are at or below it, to HDR's precision (a value in the bound's own HDR bucket,
 * within 0.1% of it, counts as at or below). The live view derives its `_bucket` series from the
 * swarm's merged histograms with this, so nothing extra is recorded on the send path.
 */
export function cumulativeCountsAtUs(h: LatencyHistogram, boundsUs: readonly number[]): number[] {
  const c = h as unknown as CountsAccess;
  const last = h.totalCount === 0 ? -1 : c.countsArrayIndex(h.maxValue);
  const out: number[] = [];
  let sum = 0;
  let i = 0;
  for (const b of boundsUs) {
    const bound = b < LOWEST_US ? LOWEST_US : b > HIGHEST_US ? HIGHEST_US : Math.floor(b);
    const upTo = Math.min(last, c.countsArrayIndex(bound));
    while (i <= upTo) sum += c.getCountAtIndex(i++);
    out.push(sum);
  }
  return out;
}

/** A histogram's recorded values as parallel arrays, ascending: value (µs) and how many. */
export interface RecordedCounts {
  valuesUs: number[];
  counts: number[];
}

/**
 * Each non-empty bucket of `h`, ascending, as the value getValueAtPercentile reports for it (the
 * bucket's highest equivalent value) and its count: a compact copy a resampling can work on, whose
 * nearest-rank percentiles are the histogram's own.
 */
export function recordedCounts(h: LatencyHistogram): RecordedCounts {
  const out: RecordedCounts = { valuesUs: [], counts: [] };
  if (h.totalCount === 0) return out;
  const c = h as unknown as CountsAccess;
  const last = c.countsArrayIndex(h.maxValue);
  for (let i = c.countsArrayIndex(h.minNonZeroValue); i <= last; i++) {
    const n = c.getCountAtIndex(i);
    if (n === 0) continue;
    out.valuesUs.push(c.highestEquivalentValue(c.valueFromIndex(i)));
    out.counts.push(n);
  }
  return out;
}
