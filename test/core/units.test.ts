import { describe, expect, it } from 'vitest';
import { aggregateRatePerSec, parseBytes, parseCheckinFractionPerMin, parseDurationMs, parseRatePerSec } from '../../src/core/units.js';

describe('unit grammar', () => {
  it.each([
    ['250ms', 250],
    ['60s', 60_000],
    ['5m', 300_000],
    ['1.5h', 5_400_000],
    ['500us', 0.5],
  ])('duration %s = %d ms', (s, ms) => expect(parseDurationMs('--x', s)).toBe(ms));

  it('parses rates, check-in fractions and sizes', () => {
    expect(parseRatePerSec('--rate', '250/s')).toBe(250);
    expect(parseRatePerSec('--rate', '6600/min')).toBe(110);
    expect(parseCheckinFractionPerMin('--checkin', '30%/min')).toBe(0.3);
    expect(parseCheckinFractionPerMin('--checkin', '60%/h')).toBe(0.01);
    expect(parseBytes('--limit', '1mb')).toBe(1_048_576);
    expect(parseBytes('--limit', '512kb')).toBe(524_288);
  });

  it('the article: 20,000 agents at 30%/min is 6,000 check-ins a minute (100/s)', () => {
    expect(aggregateRatePerSec({ kind: 'fraction', fractionPerMin: 0.3 }, 20_000)).toBeCloseTo(100, 10);
    expect(aggregateRatePerSec({ kind: 'interval', intervalMs: 300_000 }, 20_000)).toBeCloseTo(66.667, 3);
  });

  it('names the field, the value and the allowed form on bad input', () => {
    expect(() => parseDurationMs('--timeout', 'soon')).toThrow('--timeout: expected a duration like "250ms", "60s", "5m" or "1h", got "soon"');
    expect(() => parseRatePerSec('stages[2].rate', 'fast')).toThrow('stages[2].rate: expected a rate like "250/s" or "6600/min", above 0, got "fast"');
  });
});
