import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_ROUTES } from '../src/core/protocol.js';
import { round } from '../src/core/units.js';
import { startStack } from '../src/stack/launcher.js';
import { namedTopology } from '../src/stack/topology.js';
import { DEFAULTS, resolveSwarmConfig } from '../src/swarm/config.js';
import { runSwarm, SwarmControl } from '../src/swarm/coordinator.js';
import { relayFor } from '../src/swarm/transports/ws-tunnels.js';
import { reconnectAfter, type FaultReconnect } from '../src/swarm/tunnel-log.js';
import type { BenchRow } from './lib.js';

/**
 * The reconnect storm: N tunnels on a local relays4 stack, relay-2 SIGKILLed once they are all
 * open, and its agents' way back measured from the swarm's tunnel log (src/swarm/tunnel-log.ts):
 * the default policy (exponential:1s:60s, full jitter) against a fixed delay (fixed:200ms, every
 * agent retrying in lockstep), each on a fresh stack, in the same run. What the jitter buys is
 * the peak connect rate (lower is better: the relays take a trickle, not a wall); what it costs is
 * t99 (how long until 99% of the dropped agents are back; the issue's bar is 10 s).
 */

const KILL_AFTER_OPEN_MS = 2000;
const AFTER_KILL_SEC = 15;

async function oneRun(policy: string, tunnels: number): Promise<FaultReconnect> {
  const secret = 'bench-reconnect';
  const dataDir = mkdtempSync(join(tmpdir(), 'rmmscale-bench-reconnect-'));
  const stack = await startStack(namedTopology('relays4'), { secret, dataDir, stopGraceMs: 3000 });
  try {
    const relays = stack.nodes.filter((n) => n.role === 'relay');
    const killed = relays.findIndex((n) => n.name === 'relay-2');
    const target = relays.map((n) => `${n.url.replace(/^http/, 'ws')}${AGENT_ROUTES.tunnel}`).join(',');
    const connectSec = Math.ceil(tunnels / 2000) + 2;
    const config = resolveSwarmConfig({ mode: 'ws', target, agents: tunnels, checkinInterval: '5m', duration: `${connectSec + AFTER_KILL_SEC}s`, reconnect: policy, returnHome: 'off', secret, seed: 'bench-reconnect', connectRate: '2000/s' });
    const control = new SwarmControl();
    let t0 = 0;
    const run = runSwarm({ config, control, onStart: (at) => (t0 = at) });
    // Kill once the opening phase is over (connect time at the capped rate, and a margin).
    await new Promise((r) => setTimeout(r, connectSec * 1000 + KILL_AFTER_OPEN_MS));
    const killedAtMs = Date.now();
    stack.kill('relay-2', 'SIGKILL');
    await run;
    if (t0 === 0) throw new Error('the swarm never started');
    return reconnectAfter(control.tunnelLog.events, { fromMs: killedAtMs, untilMs: Date.now(), relay: killed }, (id) => relayFor(id, relays.length));
  } finally {
    await stack.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function benchReconnect(o: { tunnels: number }): Promise<BenchRow[]> {
  const jittered = await oneRun(DEFAULTS.reconnect, o.tunnels);
  const fixed = await oneRun('fixed:200ms', o.tunnels);
  const note = `${o.tunnels} tunnels on relays4, relay-2 killed: default ${jittered.agents} dropped, fixed ${fixed.agents} dropped`;
  const ratio = (a: number | null, b: number | null): number => (a !== null && b !== null && b > 0 ? round(a / b, 2) : NaN);
  return [
    {
      bench: 'reconnect',
      metric: 'peak connects/s after the kill (default jittered ÷ fixed:200ms; lower is better)',
      rmmscale: jittered.peakConnectsPerSec,
      peer: fixed.peakConnectsPerSec,
      peerName: 'fixed:200ms',
      ratio: ratio(jittered.peakConnectsPerSec, fixed.peakConnectsPerSec),
      target: '< 1',
      pass: jittered.peakConnectsPerSec < fixed.peakConnectsPerSec,
      note,
    },
    {
      bench: 'reconnect',
      metric: 't99 ms, kill → 99% of the dropped agents back (default ÷ fixed:200ms); default ≤ 10,000 ms',
      rmmscale: jittered.t99Ms ?? NaN,
      peer: fixed.t99Ms ?? NaN,
      peerName: 'fixed:200ms',
      ratio: ratio(jittered.t99Ms, fixed.t99Ms),
      target: 'default ≤ 10000 ms',
      pass: jittered.t99Ms !== null && jittered.t99Ms <= 10_000,
      note: `t50 ${jittered.t50Ms} vs ${fixed.t50Ms} ms, t90 ${jittered.t90Ms} vs ${fixed.t90Ms} ms`,
    },
  ];
}
