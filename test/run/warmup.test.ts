import { describe, expect, it } from 'vitest';
import { stackDelayUs } from '../../src/run/judge-window.js';
import { STAGE_WARMUP_MS, windowWarmupMs } from '../../src/run/plan-window.js';
import { mayCompactAt } from '../../src/swarm/compact.js';

describe('warm-ups that keep the generator’s own stalls out of measured windows', () => {
  it.each([
    ['http', 10_000, STAGE_WARMUP_MS, 3000],
    ['http', 0, 10_000, 10_000],
    ['ws', 0, 0, 0], // a ramp from nothing: its tunnels open along the ramp
    ['ws', 10_000, STAGE_WARMUP_MS, 3000 + 4000], // 10,000 at 4,000/s = 2.5 s, × 1.5, in whole seconds
    ['ws', 40_000, 10_000, 10_000 + 15_000],
    ['ws', 100, 3000, 3000 + 1000],
  ] as const)('%s window from %i agents with a %i ms base warm-up: %i ms', (transport, agents, base, expected) => {
    expect(windowWarmupMs(transport, agents, base)).toBe(expected);
  });

  it('compacts a settled wave during the warm-up only, never inside the measured window', () => {
    expect(mayCompactAt(-200, 7000)).toBe(true); // before t = 0
    expect(mayCompactAt(6999, 7000)).toBe(true);
    expect(mayCompactAt(7000, 7000)).toBe(false);
    expect(mayCompactAt(30_000, 0)).toBe(false); // no warm-up: the whole swarm is measured
  });
});

describe('the stack\'s event-loop delay along a request\'s path', () => {
  it('takes each tier\'s worst node and sums the tiers', () => {
    const nodes = [
      { tier: 'proxy', eventLoopDelayP99MsMax: 12.5 },
      { tier: 'web-agent', eventLoopDelayP99MsMax: 40 },
      { tier: 'web-agent', eventLoopDelayP99MsMax: 90 },
      { tier: 'db', eventLoopDelayP99MsMax: 3 },
    ] as const;
    expect(stackDelayUs([...nodes])).toBe(12_500 + 90_000 + 3_000);
    expect(stackDelayUs([])).toBe(0);
  });
});
