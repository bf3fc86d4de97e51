import type { Socket } from 'node:net';
import { openFileLimit } from '../../core/host.js';
import type { NodeMetricsApi, NodeSpec } from '../types.js';

/**
 * Admission bounds every node has, with or without a capacity profile (issue 14: profile `none`
 * had none). Past either bound the answer is 503 + `retry-after: 1`, never an unbounded wait:
 *
 *   maxConnections   open client connections; one more gets a 503 written on it and is closed
 *                    (default: the open-file limit less a reserve for the node's own upstream
 *                    connections, so the node refuses before accept() starts failing)
 *   maxInflight      requests being served at once when the node has no capacity profile (a
 *                    profile's worker queue bounds them otherwise); default 4096
 *
 * /healthz, /metrics and /admin/* are answered before the in-flight bound, so a loaded node still
 * reports on itself. Tunnels (Upgrade) count as connections.
 */

export const DEFAULT_MAX_INFLIGHT = 4096;
const FD_RESERVE = 256;

export interface AdmissionLimits {
  maxConnections: number;
  maxInflight: number;
}

export function admissionLimits(limits: NodeSpec['limits']): AdmissionLimits {
  const fds = openFileLimit().soft ?? 20_000;
  return {
    maxConnections: limits?.maxConnections ?? Math.max(64, fds - FD_RESERVE),
    maxInflight: limits?.maxInflight ?? DEFAULT_MAX_INFLIGHT,
  };
}

const BUSY_BODY = '{"error":"overloaded: too many connections"}';
const BUSY = `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: ${BUSY_BODY.length}\r\n\r\n${BUSY_BODY}`;
/** How long a refused connection may linger for its 503 to be read before it is destroyed. */
const REFUSED_LINGER_MS = 1000;

/** The connection bound: refuses (503, closed) connections past maxConnections. */
export class ConnectionGate {
  private readonly refusedSockets = new WeakSet<Socket>();

  constructor(
    readonly max: number,
    private readonly metrics: Pick<NodeMetricsApi, 'count'>,
  ) {}

  /** Called for each new connection with the number already open; false: refused. */
  admit(s: Socket, open: number): boolean {
    if (open < this.max) return true;
    this.refusedSockets.add(s);
    this.metrics.count('connections-refused');
    s.on('error', () => undefined);
    s.end(BUSY);
    setTimeout(() => s.destroy(), REFUSED_LINGER_MS).unref();
    return false;
  }

  /** A request parsed on a refused connection is not served (its 503 is already on the wire). */
  refused(s: Socket): boolean {
    return this.refusedSockets.has(s);
  }
}
