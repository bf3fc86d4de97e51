import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core/errors.js';
import { parseScenario } from '../../src/scenario/load.js';

function problems(text: string): string[] {
  try {
    parseScenario(text, 's.yaml');
  } catch (err) {
    if (err instanceof ValidationError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ValidationError');
}

const STAGES = 'stages:\n  - { duration: 10s, agents: 100 }\n';

describe('background.sessions: operator sessions on relays', () => {
  it('resolves on a relays topology with a tunnel fleet; absent, the background is as before', () => {
    const sc = parseScenario(`stack:\n  topology: relays2\nfleet:\n  transport: ws\n${STAGES}background:\n  sessions: { rate: 2/s }\n`, 's.yaml');
    expect(sc.background).toEqual({ dashboard: null, commands: null, integration: null, sessions: { ratePerSec: 2 } });
    expect(parseScenario(`stack:\n  topology: single\n${STAGES}background:\n  dashboard: { rate: 1/s }\n`, 's.yaml').background).toEqual({ dashboard: { ratePerSec: 1 }, commands: null, integration: null });
  });

  it.each<[string, string, string[]]>([
    ['on a topology without relays', `stack:\n  topology: split3\n${STAGES}background:\n  sessions: { rate: 2/s }\n`, [
      's.yaml:6 background.sessions: expected a topology with relays (operator sessions are brokered by relays), got topology "split3", which has none',
      's.yaml:6 background.sessions: expected a fleet with tunnels (fleet.transport ws): sessions reach agents down their tunnels, got fleet.transport http',
    ]],
    ['user streams on relays', `stack:\n  topology: relays2\nfleet:\n  transport: ws\n${STAGES}background:\n  dashboard: { rate: 1/s }\n`, ['s.yaml:7 background: expected a topology with user paths (a single or web node), got topology "relays2", which has none']],
    ['a bad rate', `stack:\n  topology: relays2\nfleet:\n  transport: ws\n${STAGES}background:\n  sessions: { rate: often }\n`, ['s.yaml:8 background.sessions.rate: expected a rate like "250/s" or "6600/min", above 0, got "often"']],
  ])('refused %s, one line each', (_name, text, expected) => {
    expect(problems(text)).toEqual(expected);
  });
});
