/**
 * One stack node's /metrics text, read with the admin key (loopback does not need it; a remote node
 * would); null when the node did not answer in time or answered an error. The run's probes of a
 * running stack (takeover.ts, spool-drain.ts) read their role gauges from it.
 */
export async function nodeMetricsText(metricsUrl: string, adminKey: string, timeoutMs: number): Promise<string | null> {
  try {
    const res = await fetch(metricsUrl, { headers: { authorization: `Bearer ${adminKey}` }, signal: AbortSignal.timeout(timeoutMs) });
    return res.ok ? await res.text() : null;
  } catch {
    return null;
  }
}
