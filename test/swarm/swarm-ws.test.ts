import { afterEach, describe, expect, it } from 'vitest';
import { resolveSwarmConfig, type SwarmInput } from '../../src/swarm/config.js';
import { runSwarm } from '../../src/swarm/coordinator.js';
import { relayFor } from '../../src/swarm/transports/ws-tunnels.js';
import { deriveAgent } from '../../src/core/identity.js';
import { startTunnelServer, type TestTunnelServer } from '../helpers/tunnel-server.js';

const SECRET = 'ws-secret';
let servers: TestTunnelServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

const cfg = (input: SwarmInput) => resolveSwarmConfig({ mode: 'ws', secret: SECRET, seed: 'ws-test', ...input });

describe('swarm over WebSocket tunnels', () => {
  it('holds one tunnel per agent, sends telemetry on schedule and measures ack round trips', async () => {
    const s = await startTunnelServer(SECRET);
    servers.push(s);
    // 300 agents, every agent every 2 s; tunnels open in the first ~0.1 s at 4,000/s.
    const { result } = await runSwarm({ config: cfg({ target: s.url, agents: 300, checkinInterval: '2s', duration: '4s', workers: 2 }) });
    expect(s.rejected).toBe(0);
    expect(s.connects).toBe(300);
    expect(result.ops['ws-connect'].completed).toBe(300);
    expect(result.ops['ws-rtt'].completed).toBe(s.telemetry);
    expect(Math.abs(s.telemetry - 600) / 600).toBeLessThan(0.03);
    expect(result.summary.dropped).toBeLessThanOrEqual(6); // only sends due before a tunnel opened
    expect(result.series.at(-2)!.connected).toBe(300);
  });

  it('answers server-initiated commands over the tunnel', async () => {
    const s = await startTunnelServer(SECRET);
    servers.push(s);
    const run = runSwarm({ config: cfg({ target: s.url, agents: 50, checkinInterval: '10s', duration: '3s', commandDelay: '50ms', workers: 1 }) });
    await new Promise((r) => setTimeout(r, 1500));
    expect(s.sendCommandToAll()).toBe(50);
    const { result } = await run;
    expect(s.results).toBe(50);
    expect(result.ops['ws-command'].completed).toBe(50);
  });

  it('reconnects every agent after the server closes every tunnel, and records the curve', async () => {
    const s = await startTunnelServer(SECRET);
    servers.push(s);
    const run = runSwarm({ config: cfg({ target: s.url, agents: 200, checkinInterval: '1s', duration: '6s', reconnect: 'exponential:200ms:1s', workers: 2 }) });
    // Close them once all 200 are open (on a busy host the workers take longer than usual to spawn
    // and connect; a fixed wait closed tunnels before the run had settled into its measured part).
    for (const deadline = Date.now() + 4000; s.tunnels.size < 200 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
    expect(s.tunnels.size).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    s.closeAll();
    const { result } = await run;
    expect(s.connects).toBe(400);
    expect(result.reconnect).not.toBeNull();
    const rc = result.reconnect!;
    expect(rc.disconnects).toBe(200);
    expect(rc.reconnected).toBe(200);
    // Full jitter on the first attempt: U(0, 200 ms) (median 100 ms), plus the connect itself and
    // timer delays on a busy 2-core host. A doubled first backoff would put the median near 200 ms.
    expect(rc.t50Ms!).toBeLessThan(300);
    expect(rc.t99Ms!).toBeLessThan(1000);
    expect(rc.t50Ms!).toBeLessThan(rc.t99Ms!);
    expect(rc.peakConnectsPerSec).toBeGreaterThanOrEqual(100);
    expect(result.series.at(-2)!.connected).toBe(200);
  });

  it('assigns agents to relays by hash and fails over to the sibling when one dies', async () => {
    const a = await startTunnelServer(SECRET);
    const b = await startTunnelServer(SECRET);
    servers.push(a, b);
    const agents = 100;
    const homeA = Array.from({ length: agents }, (_, i) => relayFor(deriveAgent('ws-test', SECRET, i).id, 2)).filter((r) => r === 0).length;
    const run = runSwarm({ config: cfg({ target: `${a.url},${b.url}`, agents, checkinInterval: '1s', duration: '4s', reconnect: 'fixed:100ms', workers: 1 }) });
    await new Promise((r) => setTimeout(r, 1500));
    expect(a.tunnels.size).toBe(homeA);
    expect(b.tunnels.size).toBe(agents - homeA);
    await a.close(); // relay A dies: its agents' reconnects are refused, and they move to B
    servers = [b];
    const { result } = await run;
    expect(b.connects).toBe(agents); // its own agents, then A's
    expect(result.series.at(-2)!.connected).toBe(agents);
    expect(result.reconnect!.disconnects).toBe(homeA);
    expect(result.reconnect!.reconnected).toBe(homeA);
  });
});
