import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core/errors.js';
import { parseScenario } from '../../src/scenario/load.js';

function problems(text: string): string[] {
  try {
    parseScenario(text, 'f.yaml');
  } catch (err) {
    if (err instanceof ValidationError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ValidationError');
}

/** split3 (proxy, web-agent-1/2, web-user-1, app, db), two 60 s stages; line 6 is `faults:`, line 7 its first item. */
const HEAD = 'stack:\n  topology: split3\nstages:\n  - { duration: 60s, agents: 1000 }\n  - { duration: 60s, agents: 1000 }\nfaults:\n';
const ws = 'stack:\n  topology: relays2\nfleet:\n  transport: ws\nstages:\n  - { duration: 60s, agents: 100 }\nfaults:\n';

describe('scenario faults: what resolves', () => {
  it('each action, in time order; a tier name picks its first node; `stage` counts from that stage', () => {
    const sc = parseScenario(
      `${HEAD}  - { at: 90s, slow: db, by: 200ms, for: 20s }\n  - { at: 10s, kill: web-agent }\n  - { at: 5s, stage: 2, stop: db, for: 20s }\n  - { at: 30s, restart: web-agent-2 }\n`,
      'f.yaml',
    );
    expect(sc.faults).toEqual([
      { atMs: 10_000, stageIndex: 0, atInStageMs: 10_000, action: 'kill', node: 'web-agent-1', forMs: null, byMs: null, byFactor: null, fraction: null },
      { atMs: 30_000, stageIndex: 0, atInStageMs: 30_000, action: 'restart', node: 'web-agent-2', forMs: null, byMs: null, byFactor: null, fraction: null },
      { atMs: 65_000, stageIndex: 1, atInStageMs: 5_000, action: 'stop', node: 'db', forMs: 20_000, byMs: null, byFactor: null, fraction: null },
      { atMs: 90_000, stageIndex: 1, atInStageMs: 30_000, action: 'slow', node: 'db', forMs: 20_000, byMs: 200, byFactor: null, fraction: null },
    ]);
  });

  it('disconnect takes a share of a tunnel fleet', () => {
    expect(parseScenario(`${ws}  - { at: 30s, disconnect: 10% }\n`, 'f.yaml').faults).toEqual([
      { atMs: 30_000, stageIndex: 0, atInStageMs: 30_000, action: 'disconnect', node: null, forMs: null, byMs: null, byFactor: null, fraction: 0.1 },
    ]);
  });

  it('slow takes a factor: `by: 10x` (the analytics node of a relays topology; a db node too), or a fractional one', () => {
    expect(parseScenario(`${ws}  - { at: 30s, slow: analytics, by: 10x, for: 20s }\n  - { at: 5s, slow: db, by: 1.5x, for: 5s }\n`, 'f.yaml').faults).toEqual([
      { atMs: 5_000, stageIndex: 0, atInStageMs: 5_000, action: 'slow', node: 'db', forMs: 5_000, byMs: null, byFactor: 1.5, fraction: null },
      { atMs: 30_000, stageIndex: 0, atInStageMs: 30_000, action: 'slow', node: 'analytics', forMs: 20_000, byMs: null, byFactor: 10, fraction: null },
    ]);
  });

  it('no faults: an empty list', () => {
    expect(parseScenario('stack:\n  topology: single\nstages:\n  - { duration: 30s, agents: 10 }\n', 'f.yaml').faults).toEqual([]);
  });
});

describe('scenario faults: what is refused, one line each', () => {
  it.each<[string, string, string[]]>([
    ['an unknown node', `${HEAD}  - { at: 10s, kill: web-9 }\n`, ['f.yaml:7 faults[0].kill: expected a node of topology "split3" (db, app, web-agent-1, web-agent-2, web-user-1, proxy) or one of its tiers, got "web-9"']],
    ['a time past the run', `${HEAD}  - { at: 3m, kill: db }\n`, ['f.yaml:7 faults[0].at: expected a time before the stages end (2m), got "3m"']],
    ['a time past its stage', `${HEAD}  - { at: 70s, stage: 1, kill: db }\n`, ['f.yaml:7 faults[0].at: expected a time before stage 1 ends (1m), got "70s"']],
    ['a stage that does not exist', `${HEAD}  - { at: 10s, stage: 3, kill: db }\n`, ['f.yaml:7 faults[0].stage: expected a stage from 1 to 2, got 3']],
    ['a stop without for', `${HEAD}  - { at: 10s, stop: db }\n`, ['f.yaml:7 faults[0].for: expected a duration: stop needs to know how long it lasts, got nothing']],
    ['a slow without by', `${HEAD}  - { at: 10s, slow: db, for: 10s }\n`, ['f.yaml:7 faults[0].by: expected a duration (the latency slow adds to each query) or a factor like 10x, got nothing']],
    ['a for on a kill', `${HEAD}  - { at: 10s, kill: db, for: 10s }\n`, ['f.yaml:7 faults[0].for: expected nothing: only stop and slow last for a while (kill is instant), got "10s"']],
    ['a by on a stop', `${HEAD}  - { at: 10s, stop: db, for: 5s, by: 5ms }\n`, ['f.yaml:7 faults[0].by: expected nothing: only slow adds latency, got "5ms"']],
    ['two actions', `${HEAD}  - { at: 10s, kill: db, restart: app }\n`, ['f.yaml:7 faults[0]: expected exactly one of kill, stop, restart, slow, disconnect, got kill and restart']],
    ['no action', `${HEAD}  - { at: 10s }\n`, ['f.yaml:7 faults[0]: expected exactly one of kill, stop, restart, slow, disconnect, got none']],
    ['no time', `${HEAD}  - { kill: db }\n`, ['f.yaml:7 faults[0].at: expected a duration like "250ms", "60s", "5m" or "1h", got nothing']],
    ['a for that outlasts the stages', `${HEAD}  - { at: 100s, stop: db, for: 30s }\n`, ['f.yaml:7 faults[0].for: expected at most 20s (the fault must end before the stages do), got "30s"']],
    ['a bad share', `${ws}  - { at: 10s, disconnect: lots }\n`, ['f.yaml:8 faults[0].disconnect: expected a share of the agents like "10%", got "lots"']],
    ['a disconnect without tunnels', `${HEAD}  - { at: 10s, disconnect: 10% }\n`, ['f.yaml:7 faults[0].disconnect: expected a fleet with tunnels (fleet.transport ws): disconnect drops tunnels, got "10%"']],
    ['slowing the proxy', `${HEAD}  - { at: 10s, slow: proxy, by: 5ms, for: 5s }\n`, ['f.yaml:7 faults[0].slow: expected a node that queries the database (the proxy has none), got "proxy"']],
    ['a factor of 1x (changes nothing)', `${ws}  - { at: 10s, slow: analytics, by: 1x, for: 5s }\n`, ['f.yaml:8 faults[0].by: expected a factor above 1x and at most 1000x (1x would change nothing), got "1x"']],
    ['a factor below 1', `${ws}  - { at: 10s, slow: analytics, by: 0.5x, for: 5s }\n`, ['f.yaml:8 faults[0].by: expected a factor above 1x and at most 1000x (1x would change nothing), got "0.5x"']],
    ['a factor past 1000x', `${ws}  - { at: 10s, slow: analytics, by: 5000x, for: 5s }\n`, ['f.yaml:8 faults[0].by: expected a factor above 1x and at most 1000x (1x would change nothing), got "5000x"']],
    ['a by neither duration nor factor', `${ws}  - { at: 10s, slow: analytics, by: 10y, for: 5s }\n`, ['f.yaml:8 faults[0].by: expected a duration like "200ms" (added to each query) or a factor like "10x" (each request takes that many times as long), got "10y"']],
    ['a factor on a stop', `${ws}  - { at: 10s, stop: analytics, for: 5s, by: 10x }\n`, ['f.yaml:8 faults[0].by: expected nothing: only slow adds latency, got "10x"']],
    ['a slow by a factor without for', `${ws}  - { at: 10s, slow: analytics, by: 10x }\n`, ['f.yaml:8 faults[0].for: expected a duration: slow needs to know how long it lasts, got nothing']],
    ['an analytics node a split topology lacks', `${HEAD}  - { at: 10s, slow: analytics, by: 10x, for: 5s }\n`, ['f.yaml:7 faults[0].slow: expected a node of topology "split3" (db, app, web-agent-1, web-agent-2, web-user-1, proxy) or one of its tiers, got "analytics"']],
    ['an unknown key', `${HEAD}  - { at: 10s, kill: db, signal: TERM }\n`, ['f.yaml:7 faults[0].signal: expected a known key (at, stage, kill, stop, restart, slow, disconnect, for, by), got "signal"']],
    [
      'faults in a ceiling search',
      'stack:\n  topology: single\nceiling: { start: 1000, max: 2000 }\nfaults:\n  - { at: 10s, kill: single }\n',
      ['f.yaml:4 faults: expected faults only with stages (a ceiling search measures a clean stack), got a ceiling search'],
    ],
    [
      'faults on an external target',
      'stack:\n  target: http://127.0.0.1:9\nstages:\n  - { duration: 30s, agents: 10 }\nfaults:\n  - { at: 10s, kill: single }\n',
      ['f.yaml:5 faults: expected faults only on a stack rmmscale starts (stack.topology), got stack.target "http://127.0.0.1:9"'],
    ],
  ])('%s', (_name, text, expected) => {
    expect(problems(text)).toEqual(expected);
  });
});
