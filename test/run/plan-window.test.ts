import { describe, expect, it } from 'vitest';
import { planWindow } from '../../src/run/plan-window.js';
import type { CheckinSpec, Scenario } from '../../src/scenario/types.js';
import { DEFAULT_SETTINGS, DEFAULTS, resolveSwarmConfig, type SwarmInput } from '../../src/swarm/config.js';

/**
 * `rmmscale run` builds each window's swarm configuration as values (planWindow), where it used to
 * turn them back into flag strings for resolveSwarmConfig to parse. The two paths must agree: the
 * same window gives the same configuration either way.
 */
const fleet = (o: Partial<Scenario['fleet']> = {}): Scenario['fleet'] => ({
  agents: 20_000,
  checkin: { kind: 'fraction', fractionPerMin: 0.3, text: '30%/min' },
  mix: { checkin: 0.8, heartbeat: 0.15, inventory: 0.05 },
  transport: 'http',
  connection: 'keepalive',
  arrival: 'poisson',
  jitterMs: 250,
  seed: 'plan-window',
  secret: null,
  timeoutMs: 12_000,
  ...o,
});
const scenario = (f: Scenario['fleet']): Scenario => ({ fleet: f } as Scenario);
const targets = { entryUrl: 'http://127.0.0.1:8080/', wsTargets: ['ws://127.0.0.1:9001/agent/v1/tunnel', 'ws://127.0.0.1:9002/agent/v1/tunnel'], secret: 'k', allowRemote: false };
const rate = (n: number): CheckinSpec => ({ kind: 'rate', ratePerSec: n, text: `${n}/s` });

/** What the window used to be planned as: flag strings, parsed by the CLI's parser. */
function viaStrings(f: Scenario['fleet'], w: { agents: number; checkin: CheckinSpec; warmupMs: number; measureMs: number; rampFromAgents?: number }): ReturnType<typeof resolveSwarmConfig> {
  const input: SwarmInput = {
    target: f.transport === 'ws' ? targets.wsTargets.join(',') : targets.entryUrl,
    agents: w.agents,
    duration: `${w.measureMs}ms`,
    warmup: `${w.warmupMs}ms`,
    mode: f.transport,
    connection: f.transport === 'ws' ? undefined : f.connection,
    arrival: f.arrival,
    jitter: `${f.jitterMs}ms`,
    seed: f.seed,
    secret: targets.secret,
    mix: Object.entries(f.mix).filter(([, v]) => v > 0).map(([k, v]) => `${k}=${v}`).join(','),
    timeout: `${f.timeoutMs}ms`,
  };
  if (w.checkin.kind === 'fraction') input.checkin = w.checkin.text;
  else input.rate = w.checkin.text;
  if (w.rampFromAgents !== undefined && w.rampFromAgents !== w.agents) {
    input.stage = [`${w.measureMs}ms:${w.agents}`];
    input.rampFrom = w.rampFromAgents;
  }
  return resolveSwarmConfig(input);
}

describe('planWindow: a window as values, the same as the flags would give', () => {
  it.each([
    ['a hold at a check-in fraction', fleet(), { agents: 16_000, checkin: fleet().checkin, warmupMs: 10_000, measureMs: 20_000 }],
    ['a search step by rate', fleet({ arrival: 'periodic', jitterMs: 0 }), { agents: 2000, checkin: rate(45), warmupMs: 2000, measureMs: 5000 }],
    ['a ramped stage', fleet(), { agents: 30_000, checkin: fleet().checkin, warmupMs: 3000, measureMs: 60_000, rampFromAgents: 10_000 }],
    ['a tunnel fleet over two relays', fleet({ transport: 'ws', mix: { checkin: 1, heartbeat: 0, inventory: 0 } }), { agents: 10_000, checkin: { kind: 'fraction', fractionPerMin: 0.2, text: '20%/min' } as CheckinSpec, warmupMs: 7000, measureMs: 300_000 }],
  ])('%s', (_name, f, w) => {
    const typed = planWindow(scenario(f), targets, { kind: 'stage', label: 'x', ...w });
    expect(typed).toEqual(viaStrings(f, w));
    expect(typed.targets.every((t) => !t.endsWith('/'))).toBe(true);
  });

  it('the typed defaults are the CLI defaults', () => {
    const cli = resolveSwarmConfig({ target: 'http://127.0.0.1:8080' });
    expect({
      poolConnections: cli.poolConnections,
      commandDelayMs: cli.commandDelayMs,
      lateThresholdMs: cli.lateThresholdMs,
      maxErrorRate: cli.maxErrorRate,
      reconnect: cli.reconnect,
      returnHome: cli.returnHome,
      connectRatePerSec: cli.connectRatePerSec,
    }).toEqual(DEFAULT_SETTINGS);
    expect(DEFAULTS.connections).toBe(DEFAULT_SETTINGS.poolConnections);
  });

  it('a remote stack target is still refused without --allow-remote', () => {
    expect(() => planWindow(scenario(fleet()), { ...targets, entryUrl: 'http://10.1.2.3:8080' }, { kind: 'stage', label: 'x', agents: 10, checkin: rate(1), warmupMs: 0, measureMs: 1000 })).toThrow(/stack\.target/);
  });
});
