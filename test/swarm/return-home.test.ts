import { afterEach, describe, expect, it } from 'vitest';
import { deriveAgent } from '../../src/core/identity.js';
import { Rng } from '../../src/core/random.js';
import { localAgents } from '../../src/swarm/local-agents.js';
import { SwarmRecorder } from '../../src/swarm/recorder.js';
import { DEFAULTS } from '../../src/swarm/config.js';
import { parseReconnectPolicy, parseReturnHome } from '../../src/swarm/reconnect.js';
import { reconnectAfter, type TunnelEvent } from '../../src/swarm/tunnel-log.js';
import { relayFor, TunnelFleet } from '../../src/swarm/transports/ws-tunnels.js';
import { startTunnelServer, type TestTunnelServer } from '../helpers/tunnel-server.js';
import { until } from '../stack/proxy-backends.js';

/**
 * Failover and return home with the fleet's default reconnect policy (exponential:1s:60s, full
 * jitter), against two real tunnel servers, one of which goes away and comes back on its port.
 * Identities, not counts: which agents dropped, where each went, and that exactly those came home.
 */

const SECRET = 'home-secret';
const SEED = 'home-test';
const AGENTS = 40;
const ids = Array.from({ length: AGENTS }, (_, i) => deriveAgent(SEED, SECRET, i).id);
let closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

function fleetOf(urls: string[], returnHome: string): { fleet: TunnelFleet; events: () => TunnelEvent[] } {
  const t0 = Date.now();
  const fleet = new TunnelFleet({
    urls,
    agents: localAgents({ seed: SEED, secret: SECRET, agents: AGENTS, share: { first: 0, stride: 1 }, identitiesFile: null }, false),
    localAddresses: [],
    reconnect: parseReconnectPolicy('--reconnect', DEFAULTS.reconnect),
    returnHome: parseReturnHome('--return-home', returnHome),
    connectRatePerSec: 1000,
    commandDelayMs: 10,
    recorder: new SwarmRecorder(0, 1000),
    rng: new Rng('home'),
    now: () => Date.now() - t0,
  });
  closers.push(async () => void (await fleet.close()));
  const log: TunnelEvent[] = [];
  const events = (): TunnelEvent[] => {
    for (const e of fleet.takeEvents()) log.push({ kind: e.kind, agentId: ids[e.slot]!, relay: e.relay, atMs: t0 + e.atMs });
    return log;
  };
  return { fleet, events };
}

async function server(port = 0): Promise<TestTunnelServer> {
  const s = await startTunnelServer(SECRET, port);
  let closed = false;
  closers.push(async () => {
    if (!closed) await s.close();
  });
  const close = s.close;
  s.close = async () => {
    closed = true;
    await close();
  };
  return s;
}

const portOf = (url: string): number => Number(new URL(url).port);
const sorted = (xs: Iterable<string>): string[] => [...xs].sort();

describe('TunnelFleet: failover and return home', () => {
  it('a relay goes away: exactly its agents move to the sibling; it comes back: exactly they return, the others never move', async () => {
    const a = await server();
    const b = await server();
    const { fleet, events } = fleetOf([a.url, b.url], '300ms:1s');
    fleet.start();
    expect(await until(() => fleet.connected === AGENTS, 5000)).toBe(true);
    const homeA = ids.filter((id) => relayFor(id, 2) === 0);
    const homeB = ids.filter((id) => relayFor(id, 2) === 1);
    expect(homeA.length).toBeGreaterThan(5);
    expect(sorted(a.tunnels.keys())).toEqual(sorted(homeA));

    const killedAtMs = Date.now();
    await a.close();
    // Default policy: a first retry at the dead relay within 1 s, the next on the sibling within 2 s more.
    expect(await until(() => b.tunnels.size === AGENTS, 8000)).toBe(true);
    expect(b.connects).toBe(homeB.length + homeA.length);

    const restartedAtMs = Date.now();
    const a2 = await server(portOf(a.url));
    expect(await until(() => a2.tunnels.size === homeA.length && b.tunnels.size === homeB.length, 8000)).toBe(true);
    expect(sorted(a2.tunnels.keys())).toEqual(sorted(homeA));
    expect(sorted(b.tunnels.keys())).toEqual(sorted(homeB));
    expect(fleet.connected).toBe(AGENTS);
    // Make before break: the agents left the sibling with a close frame, not a drop.
    expect(await until(() => b.closeCodes.filter((c) => c === 1000).length === homeA.length, 3000)).toBe(true);

    const log = events();
    const kill = reconnectAfter(log, { fromMs: killedAtMs, untilMs: restartedAtMs, relay: 0 }, (id) => relayFor(id, 2));
    expect(sorted(kill.dropped)).toEqual(sorted(homeA));
    expect(sorted(kill.back.keys())).toEqual(sorted(homeA));
    expect(new Set([...kill.back.values()].map(([, relay]) => relay))).toEqual(new Set([1]));
    expect(kill.returnedHome).toBe(0);
    expect(kill.t99Ms).not.toBeNull();
    const restart = reconnectAfter(log, { fromMs: restartedAtMs, untilMs: Date.now() + 1, relay: 0 }, (id) => relayFor(id, 2));
    expect(restart.agents).toBe(0);
    expect(sorted(restart.returnedHomeIds)).toEqual(sorted(homeA));
    // Nobody at home on B ever dropped or moved.
    expect(log.filter((e) => homeB.includes(e.agentId))).toEqual([]);
  });

  it('return home off: the agents stay on the sibling after their relay is back', async () => {
    const a = await server();
    const b = await server();
    const { fleet, events } = fleetOf([a.url, b.url], 'off');
    fleet.start();
    expect(await until(() => fleet.connected === AGENTS, 5000)).toBe(true);
    await a.close();
    expect(await until(() => b.tunnels.size === AGENTS, 8000)).toBe(true);
    const a2 = await server(portOf(a.url));
    await new Promise((r) => setTimeout(r, 1500));
    expect(a2.connects).toBe(0);
    expect(events().filter((e) => e.kind === 'home')).toEqual([]);
  });

  it('a disconnect cuts exactly the tunnels it reports; each comes back and is logged as cut, not dropped', async () => {
    const a = await server();
    const { fleet, events } = fleetOf([a.url], '300ms:1s');
    fleet.start();
    expect(await until(() => fleet.connected === AGENTS, 5000)).toBe(true);
    const fromMs = Date.now();
    const n = fleet.disconnect(0.25);
    expect(n).toBe(10);
    expect(await until(() => a.connects === AGENTS + n && fleet.connected === AGENTS, 8000)).toBe(true);
    const log = events();
    const cut = log.filter((e) => e.kind === 'cut').map((e) => e.agentId);
    expect(cut).toHaveLength(n);
    expect(log.filter((e) => e.kind === 'drop')).toEqual([]);
    const d = reconnectAfter(log, { fromMs, untilMs: Date.now() + 1, relay: null }, () => 0);
    expect(sorted(d.dropped)).toEqual(sorted(cut));
    expect(sorted(d.back.keys())).toEqual(sorted(cut));
    expect(d.returnedHome).toBe(0);
  });
});
