import type { NodeSecond } from './result-types.js';
import type { FaultRecord, TunnelFaultMeasure } from './faults.js';
import { reconnectAfter, reconnectCurve, reconnectFigures, type TunnelLog } from '../swarm/tunnel-log.js';
import { relayFor } from '../swarm/transports/ws-tunnels.js';

/**
 * A tunnel fault's reconnect, from the swarm's tunnel log (which agents dropped, when and where
 * each came back) and the relays' own count of accepted tunnels (the collector's timeline).
 *
 * Tunnel faults: a kill, stop or restart of a relay (its agents are those whose tunnel on it
 * dropped), and a disconnect (those it cut). Any other fault gets nulls.
 */
export interface TunnelFaultSources {
  log: TunnelLog;
  /** The relays' node names, in the order of the swarm's targets (an agent's home is hash(id) mod their count). */
  relays: string[];
  /** Per node, every scraped second (tSec from runStartMs). */
  timeline: ReadonlyMap<string, readonly NodeSecond[]>;
  runStartMs: number;
}

const NONE = { reconnect: null, relayPeakConnectsPerSec: null, reconnectCurve: null } as const;

export function tunnelFaultMeasure(s: TunnelFaultSources): TunnelFaultMeasure {
  return (record: FaultRecord, firedAtMs: number, untilMs: number) => {
    const isTunnelFault = record.action === 'disconnect' || ((record.action === 'kill' || record.action === 'stop' || record.action === 'restart') && record.node !== null && s.relays.includes(record.node));
    if (!isTunnelFault || s.relays.length === 0) return { ...NONE };
    const q = { fromMs: firedAtMs, untilMs, relay: record.action === 'disconnect' ? null : s.relays.indexOf(record.node!) };
    const detail = reconnectAfter(s.log.events, q, (id) => relayFor(id, s.relays.length));
    return {
      reconnect: reconnectFigures(detail),
      relayPeakConnectsPerSec: relayPeak(s, firedAtMs, untilMs),
      reconnectCurve: reconnectCurve(s.log.events, q, detail),
    };
  };
}

/**
 * The most tunnels the relays accepted together in one second of [fromMs, untilMs): each relay's
 * scraped rate, summed over the relays by the whole second of the run it was scraped in. Null when
 * no relay second was scraped then.
 */
export function relayPeak(s: Pick<TunnelFaultSources, 'relays' | 'timeline' | 'runStartMs'>, fromMs: number, untilMs: number): number | null {
  const fromSec = (fromMs - s.runStartMs) / 1000;
  const untilSec = (untilMs - s.runStartMs) / 1000;
  const bySecond = new Map<number, number>();
  for (const relay of s.relays) {
    for (const p of s.timeline.get(relay) ?? []) {
      if (p.tSec < fromSec || p.tSec >= untilSec + 1 || p.tunnelOpensPerSec === undefined) continue;
      const sec = Math.floor(p.tSec);
      bySecond.set(sec, (bySecond.get(sec) ?? 0) + p.tunnelOpensPerSec);
    }
  }
  return bySecond.size === 0 ? null : Math.round(Math.max(...bySecond.values()) * 10) / 10;
}
