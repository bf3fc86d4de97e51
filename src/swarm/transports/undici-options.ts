import type { Pool } from 'undici';

export interface AgentPoolSettings {
  localAddress: string | undefined;
  connections: number;
  timeoutMs: number;
  tls: { ca?: Buffer; insecure: boolean };
  /** A per-agent client certificate (mTLS, protocol files), or none. */
  creds?: { key: string | Buffer; cert: string | Buffer } | null;
}

/**
 * The undici pool options of every HTTP agent path (the fixed check-in's transport and a protocol
 * file's), in one place so their timeouts and keep-alive cannot drift apart: one request per
 * connection at a time, the swarm's timeout for headers and body, connects capped at 10 s.
 */
export function agentPoolOptions(s: AgentPoolSettings): Pool.Options {
  return {
    connections: s.connections,
    pipelining: 1,
    localAddress: s.localAddress,
    headersTimeout: s.timeoutMs,
    bodyTimeout: s.timeoutMs,
    connectTimeout: Math.min(s.timeoutMs, 10_000),
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 600_000,
    connect: { rejectUnauthorized: !s.tls.insecure, ca: s.tls.ca, ...(s.creds ? { key: s.creds.key, cert: s.creds.cert } : {}) },
  };
}
