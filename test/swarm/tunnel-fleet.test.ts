import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { deriveAgent } from '../../src/core/identity.js';
import { Rng } from '../../src/core/random.js';
import { localAgents } from '../../src/swarm/local-agents.js';
import { SwarmRecorder } from '../../src/swarm/recorder.js';
import { parseReconnectPolicy } from '../../src/swarm/reconnect.js';
import { relayFor, TunnelFleet, type FirstConnects } from '../../src/swarm/transports/ws-tunnels.js';
import { startTunnelServer, type TestTunnelServer } from '../helpers/tunnel-server.js';
import { until } from '../stack/proxy-backends.js';

/**
 * TunnelFleet in this process, against a real tunnel server and a "black hole": a TCP server that
 * accepts connections and never answers the upgrade request, as a wedged relay would.
 */

const SECRET = 'fleet-secret';
const SEED = 'fleet-test';
let closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function blackHole(): Promise<{ url: string; accepted: () => number }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.resume(); // read the upgrade request, answer nothing
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/agent/v1/tunnel`, accepted: () => accepted };
}

/** A clock the test moves by hand: the fleet's handshake deadlines, reconnect times and connect budget all read it. */
function manualClock(startMs: number): { now: () => number; set: (ms: number) => void } {
  let t = startMs;
  return { now: () => t, set: (ms) => (t = ms) };
}

function fleetOf(
  urls: string[],
  agents: number,
  handshakeTimeoutMs: number,
  onWaveSettled?: () => void,
  firstConnects?: FirstConnects,
  clock?: () => number,
): { fleet: TunnelFleet; rec: SwarmRecorder } {
  const t0 = performance.now();
  const now = clock ?? ((): number => performance.now() - t0);
  const rec = new SwarmRecorder(0, 1000);
  const fleet = new TunnelFleet({
    urls,
    agents: localAgents({ seed: SEED, secret: SECRET, agents, share: { first: 0, stride: 1 }, identitiesFile: null }, false),
    localAddresses: [],
    reconnect: parseReconnectPolicy('--reconnect', 'fixed:50ms'),
    connectRatePerSec: 1000,
    commandDelayMs: 10,
    handshakeTimeoutMs,
    onWaveSettled,
    firstConnects,
    recorder: rec,
    rng: new Rng('fleet'),
    now,
  });
  closers.push(async () => void (await fleet.close()));
  return { fleet, rec };
}

/** A fleet of `agents` against a fresh tunnel server, every tunnel open. */
async function connectedFleet(agents: number, onWaveSettled?: () => void): Promise<{ server: TestTunnelServer; fleet: TunnelFleet; rec: SwarmRecorder }> {
  const server = await startTunnelServer(SECRET);
  closers.push(() => server.close());
  const { fleet, rec } = fleetOf([server.url], agents, 15_000, onWaveSettled);
  fleet.start();
  expect(await until(() => fleet.connected === agents, 5000)).toBe(true);
  return { server, fleet, rec };
}

describe('TunnelFleet', () => {
  it('opens first tunnels only as agents become active (a ramp is not one storm at t = 0), and settles once all are open', async () => {
    const server = await startTunnelServer(SECRET);
    closers.push(() => server.close());
    let active = 5;
    let settled = 0;
    // Slots beyond the active five are always planned 20 ms ahead, until they become active.
    const t0 = performance.now();
    const { fleet } = fleetOf([server.url], 12, 15_000, () => settled++, { atMs: (s: number) => (s < active ? 0 : performance.now() - t0 + 20) });
    fleet.start();
    expect(await until(() => fleet.connected === 5, 5000)).toBe(true);
    // Ten more ticks of the fleet's own timer: nothing beyond the active five opens, nothing settles.
    await new Promise((r) => setTimeout(r, 100));
    expect(fleet.connected).toBe(5);
    expect(settled).toBe(0);
    active = 12;
    expect(await until(() => fleet.connected === 12 && settled === 1, 5000)).toBe(true);
  });

  it('started late, opens the tunnels already due at its connect rate, not in one storm (issue 16: late shards)', async () => {
    const server = await startTunnelServer(SECRET);
    closers.push(() => server.close());
    // Planned 1 ms apart from t = 0 (1,000/s); the fleet starts at 5 s, with all 50 overdue.
    const clock = manualClock(5000);
    const { fleet } = fleetOf([server.url], 50, 15_000, undefined, { atMs: (s: number) => s }, clock.now);
    fleet.start();
    expect(await until(() => fleet.connected === 1, 5000)).toBe(true);
    // Several of the fleet's ticks in real time, the clock still at 5 s: one connect, not fifty.
    await new Promise((r) => setTimeout(r, 100));
    expect(fleet.connected).toBe(1);
    clock.set(5010);
    expect(await until(() => fleet.connected === 11, 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(fleet.connected).toBe(11);
    clock.set(5049);
    expect(await until(() => fleet.connected === 50, 5000)).toBe(true);
  });

  it('abandons a handshake that outlives its timeout, counts it once, and retries on the sibling relay', async () => {
    const hole = await blackHole();
    const good: TestTunnelServer = await startTunnelServer(SECRET);
    closers.push(() => good.close());
    const urls = [hole.url, good.url];
    const agents = 20;
    const homedOnHole = Array.from({ length: agents }, (_, i) => relayFor(deriveAgent(SEED, SECRET, i).id, 2)).filter((r) => r === 0).length;
    expect(homedOnHole).toBeGreaterThan(0); // the hash sends some agents to the black hole first
    const settledAt: number[] = [];
    // The fleet's clock moves only when the test moves it: no deadline passes by itself, however
    // slow the host. 100 ms after the start is a budget of 100 connects at 1,000/s: all open at once.
    const clock = manualClock(0);
    const { fleet, rec } = fleetOf(urls, agents, 300, () => settledAt.push(fleet.connected), undefined, clock.now);
    fleet.start();
    clock.set(100);
    expect(await until(() => fleet.connected === agents - homedOnHole && hole.accepted() === homedOnHole, 5000)).toBe(true);
    // Real time passes (several of the fleet's ticks), the clock does not: those on the black hole wait.
    await new Promise((r) => setTimeout(r, 100));
    const before = rec.takeInterval(1);
    expect(before.errors).toEqual({});
    expect(before.ops['ws-connect']).toMatchObject({ completed: agents - homedOnHole, failed: 0 });
    expect(settledAt).toEqual([]);
    // Just short of the 300 ms timeout on the fleet's clock: still waiting.
    clock.set(399);
    await new Promise((r) => setTimeout(r, 100));
    expect(fleet.connected).toBe(agents - homedOnHole);
    expect(rec.takeInterval(2).errors).toEqual({});
    // The timeout passes: they are abandoned, and retried on the sibling once their 50 ms back-off is over.
    clock.set(400);
    expect(await until(() => settledAt.length === 1, 5000)).toBe(true);
    expect(fleet.connected).toBe(agents - homedOnHole);
    clock.set(1000);
    expect(await until(() => fleet.connected === agents, 5000)).toBe(true);
    expect(hole.accepted()).toBe(homedOnHole);
    expect(good.connects).toBe(agents);
    const iv = rec.takeInterval(3);
    expect(iv.errors['ws:handshake-timeout']).toBe(homedOnHole);
    // The abort's own error event is not counted a second time.
    expect(Object.keys(iv.errors).filter((k) => k !== 'ws:handshake-timeout')).toEqual([]);
    expect(iv.ops['ws-connect'].failed).toBe(homedOnHole);
    expect(iv.ops['ws-connect'].completed).toBe(homedOnHole);
    expect(iv.ops['ws-reconnect'].completed).toBe(homedOnHole);
    // The opening phase ended once: when the timed-out attempts had failed (waiting to retry),
    // before their retries opened.
    expect(settledAt).toEqual([agents - homedOnHole]);
  });

  it('derives each identity when its tunnel opens: the server checks every token', async () => {
    const { server: good } = await connectedFleet(50);
    expect(good.rejected).toBe(0);
    expect([...good.tunnels.keys()].sort()).toEqual(Array.from({ length: 50 }, (_, i) => deriveAgent(SEED, SECRET, i).id).sort());
  });

  it('ends open tunnels with a close frame (1001) so the server closes first; nothing counts as a drop', async () => {
    const { server: good, fleet, rec } = await connectedFleet(30);
    rec.takeInterval(1);
    // Every close handshake finished: none was left for the grace period to cut off.
    expect(await fleet.close()).toEqual({ unclosed: 0 });
    expect(fleet.connected).toBe(0);
    expect(await until(() => good.closeCodes.length === 30, 2000)).toBe(true);
    expect(new Set(good.closeCodes)).toEqual(new Set([1001]));
    expect(rec.takeInterval(2).errors).toEqual({});
    expect(good.connects).toBe(30); // and nothing reconnected
  });

  it('terminates what a wedged server never closes, once the grace period is over', async () => {
    const { server: good, fleet } = await connectedFleet(10);
    good.freeze();
    // All ten were still open when the grace ran out, and were terminated.
    expect(await fleet.close(300)).toEqual({ unclosed: 10 });
    expect(fleet.connected).toBe(0);
  });

  it('reports the opening phase settled, then each mass reconnect, but not a handful of retries', async () => {
    let waves = 0;
    const agents = 300; // a later wave counts from max(256, 5%) attempts
    const { server: good, fleet } = await connectedFleet(agents, () => waves++);
    expect(waves).toBe(1);
    good.closeAll(); // every tunnel drops and comes back: one wave of 300
    expect(await until(() => waves === 2 && fleet.connected === agents, 5000)).toBe(true);
    for (const ws of [...good.tunnels.values()].slice(0, 10)) ws.close(1012); // ten come back: no wave
    expect(await until(() => good.connects === 2 * agents + 10 && fleet.connected === agents, 5000)).toBe(true);
    expect(waves).toBe(2);
  });
});
