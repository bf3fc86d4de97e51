import { afterEach, describe, expect, it } from 'vitest';
import { resolveSwarmConfig } from '../../src/swarm/config.js';
import { runSwarm } from '../../src/swarm/coordinator.js';
import { startTunnelServer, type TestTunnelServer } from '../helpers/tunnel-server.js';

const SECRET = 'tunnel-protocol-secret';
let server: TestTunnelServer | null = null;

afterEach(async () => {
  await server?.close();
  server = null;
});

describe('protocols/rmmscale-tunnel.yaml: a tunnel protocol over --mode ws', () => {
  it('connects every agent with its headers, frames acked, server commands answered', async () => {
    server = await startTunnelServer(SECRET);
    const s = server;
    const run = runSwarm({
      config: resolveSwarmConfig({ mode: 'ws', target: s.url, agents: 40, checkinInterval: '1s', duration: '5s', commandDelay: '20ms', workers: 1, seed: 'tunnel-protocol', secret: SECRET, protocol: 'protocols/rmmscale-tunnel.yaml' }),
    });
    // Commands once every tunnel is up (bounded: the run itself lasts 5 s).
    for (let i = 0; i < 60 && s.tunnels.size < 40; i++) await new Promise((r) => setTimeout(r, 50));
    expect(s.sendCommandToAll()).toBe(40);
    const { result } = await run;
    expect(s.rejected).toBe(0);
    expect(s.connects).toBe(40);
    expect(result.ops['ws-rtt'].completed).toBe(s.telemetry);
    // 40 agents due 5 times each; a fire before its tunnel opened is dropped (tunnel-down), never queued.
    expect(s.telemetry + result.summary.dropped).toBe(200);
    expect(s.results).toBe(40);
    expect(result.ops['ws-command'].completed).toBe(40);
    expect(result.summary.failed).toBe(0);
  });

  it('a flows protocol with --mode ws, and a tunnel protocol with --mode http, are refused', () => {
    expect(() => resolveSwarmConfig({ mode: 'ws', target: 'ws://127.0.0.1:9/t', protocol: 'protocols/rmmscale.yaml' })).toThrow(/--protocol: expected a protocol with tunnel: for --mode ws, got .*rmmscale\.yaml, which has flows \(HTTP agents\)/);
    expect(() => resolveSwarmConfig({ target: 'http://127.0.0.1:9', protocol: 'protocols/rmmscale-tunnel.yaml' })).toThrow(/--protocol: expected a protocol with flows: for --mode http, got .*rmmscale-tunnel\.yaml, which has a tunnel \(use --mode ws\)/);
  });
});
