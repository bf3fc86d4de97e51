import { promSamples } from '../../metrics/prometheus.js';

/**
 * Per-server figures from HAProxy's built-in Prometheus exporter (`http-request use-service
 * prometheus-exporter`). Only the series rmmscale reads are parsed:
 *   haproxy_server_http_responses_total{proxy,server,code="2xx"}  requests answered, by class
 *   haproxy_server_connection_errors_total{proxy,server}          failed connections
 *   haproxy_server_current_sessions{proxy,server}                 in flight now
 *   haproxy_server_status{proxy,server,state="UP"}                1 when up (2.4+ exporter)
 *   haproxy_server_check_status / weight are ignored.
 */

export interface HaproxyServerStats {
  /** The HAProxy backend (`agent` or `user`) and server (the node name). */
  backend: string;
  server: string;
  /** HTTP responses the server gave, all classes: its request count. */
  requests: number;
  responsesByClass: Record<string, number>;
  connectionErrors: number;
  currentSessions: number;
  up: boolean;
  /** Requests per second since the previous scrape (null without one). */
  ratePerSec: number | null;
}

export interface HaproxyScrape {
  atMs: number;
  servers: HaproxyServerStats[];
}

const SERVER_SERIES = /^haproxy_server_[a-z_]+$/;

/** Parse exporter text into per-server stats; `previous` (same servers, earlier) gives rates. */
export function parseHaproxyMetrics(text: string, atMs: number, previous?: HaproxyScrape): HaproxyScrape {
  const byKey = new Map<string, HaproxyServerStats>();
  const get = (backend: string, server: string): HaproxyServerStats => {
    const key = `${backend}/${server}`;
    let s = byKey.get(key);
    if (!s) byKey.set(key, (s = { backend, server, requests: 0, responsesByClass: {}, connectionErrors: 0, currentSessions: 0, up: false, ratePerSec: null }));
    return s;
  };
  for (const { name, labels: l, value: v } of promSamples(text)) {
    if (!SERVER_SERIES.test(name) || !l.proxy || !l.server) continue;
    const s = get(l.proxy, l.server);
    switch (name) {
      case 'haproxy_server_http_responses_total':
        s.responsesByClass[l.code ?? 'other'] = v;
        s.requests += v;
        break;
      case 'haproxy_server_connection_errors_total':
        s.connectionErrors = v;
        break;
      case 'haproxy_server_current_sessions':
        s.currentSessions = v;
        break;
      case 'haproxy_server_status':
        if (l.state === 'UP' && v === 1) s.up = true;
        break;
    }
  }
  const servers = [...byKey.values()];
  if (previous && atMs > previous.atMs) {
    for (const s of servers) {
      const p = previous.servers.find((x) => x.backend === s.backend && x.server === s.server);
      if (p) s.ratePerSec = ((s.requests - p.requests) * 1000) / (atMs - previous.atMs);
    }
  }
  return { atMs, servers };
}
