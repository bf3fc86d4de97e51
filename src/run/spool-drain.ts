import { promSamples } from '../metrics/prometheus.js';
import { nodeMetricsText } from './node-metrics-text.js';

/**
 * Relays ack telemetry once it is on their own disk and forward it to the analytics node behind
 * the ack (stack/relay/telemetry-spool.ts). So before the run reads its ledger and alerts from the
 * analytics node, it waits until every relay's spool is empty: `telemetry-spooled` 0 on each
 * relay's /metrics. Bounded by `limitMs`; what is still waiting then is reported, and frames that
 * never arrive show in the ledger as lost.
 */

export interface SpoolReading {
  node: string;
  /** Samples waiting; null when the node did not answer or publishes no spool. */
  spooled: number | null;
}

/** The `telemetry-spooled` role gauge in a node's /metrics text (null when absent). */
export function spooledOf(metricsText: string): number | null {
  for (const s of promSamples(metricsText)) if (s.name === 'rmmscale_role_gauge' && s.labels.gauge === 'telemetry-spooled') return s.value;
  return null;
}

export interface SpoolDrainOutcome {
  drained: boolean;
  waitedMs: number;
  /** What each relay still held at the end (only when not drained). */
  left: SpoolReading[];
}

/** Poll `read` every `everyMs` until no relay holds spooled telemetry, or `limitMs` passed. */
export async function waitForSpools(read: () => Promise<SpoolReading[]>, limitMs: number, everyMs = 250, now: () => number = () => Date.now()): Promise<SpoolDrainOutcome> {
  const t0 = now();
  for (;;) {
    const readings = await read();
    // A relay that does not answer (killed by a fault, not restarted) holds nothing it can forward now.
    const left = readings.filter((r) => r.spooled !== null && r.spooled > 0);
    if (left.length === 0) return { drained: true, waitedMs: now() - t0, left: [] };
    if (now() - t0 >= limitMs) return { drained: false, waitedMs: now() - t0, left };
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A reader of the relays' spools over their /metrics. */
export function relaySpoolReader(nodes: ReadonlyArray<{ name: string; role: string; metricsUrl: string }>, adminKey: string, timeoutMs = 1000): () => Promise<SpoolReading[]> {
  const relays = nodes.filter((n) => n.role === 'relay');
  return () =>
    Promise.all(
      relays.map(async (n) => {
        const text = await nodeMetricsText(n.metricsUrl, adminKey, timeoutMs);
        return { node: n.name, spooled: text === null ? null : spooledOf(text) };
      }),
    );
}
