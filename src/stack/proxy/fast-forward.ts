import type { OutgoingHttpHeaders } from 'node:http';
import type { NodeMetricsApi } from '../types.js';
import type { Backend } from './backend.js';
import { pickBackend } from './balancer.js';
import type { FastReply } from './fast-front.js';
import { TIMEOUT_CODES } from './forward.js';
import { requestHead } from './headers.js';
import { isConnectionError, type HealthChecker } from './health-checker.js';
import type { FastRequest } from './request-head.js';
import type { UpstreamExchange } from './upstream.js';

/** What the fast path forwards with: the proxy role's pools, health checker and metrics. */
export interface FastPools {
  agent: readonly Backend[];
  user: readonly Backend[];
  health: HealthChecker;
  metrics: NodeMetricsApi;
}

const NONE: ReadonlySet<Backend> = new Set();

/**
 * Forward one fast-path request (proxy/fast-front.ts) over the backends' lean upstream pools, with
 * the same rules as the role's node:http path (roles/proxy.ts): least outstanding among the
 * healthy backends; at a full backend 503 + retry-after; a retry on another backend only when
 * nothing reached the first; after that 502 (504 on a timeout), or a cut connection when the
 * response had started; a refused or reset connection ejects the backend.
 */
export function forwardFast(pools: FastPools, kind: 'agent' | 'user', req: FastRequest, remote: string | undefined, reply: FastReply, tried: Set<Backend> | null, start: number, lastCode: string): void {
  const b = pickBackend(pools, kind, tried ?? NONE, start);
  if (!b) {
    if (tried === null) return reply.refuse(503, `no healthy backend in the ${kind} pool`, true);
    return reply.refuse(TIMEOUT_CODES.has(lastCode) ? 504 : 502, `no backend reachable: ${lastCode}`, false);
  }
  if (b.full) {
    // Least outstanding picked it, so every other candidate is as full: shed, don't queue.
    pools.metrics.count('proxy-shed');
    return reply.refuse(503, `every ${kind} backend holds its limit of ${b.maxOutstanding} requests`, true);
  }
  b.outstanding++;
  b.requests++;
  pools.metrics.count(b.metricRequests);
  const t0 = process.hrtime.bigint();
  const head = requestHead(req.method, req.url, req.rawHeaders, remote, 'http', b.authority, req.body.length);
  const headBytes = Buffer.byteLength(head, 'latin1');
  const request = Buffer.allocUnsafe(headBytes + req.body.length);
  request.write(head, 0, 'latin1');
  req.body.copy(request, headBytes);
  let status = 0;
  let headers: OutgoingHttpHeaders = {};
  let over = false;
  const done = (relayed: boolean): void => {
    if (over) return;
    over = true;
    b.outstanding--;
    if (relayed) pools.metrics.observeUs(b.metricUpstream, Number(process.hrtime.bigint() - t0) / 1000);
  };
  const ex: UpstreamExchange = {
    sent: false,
    conn: null,
    onHead(s, h) {
      status = s;
      headers = h;
    },
    onData(chunk) {
      if (!reply.started) reply.head(status, headers, b.name);
      if (reply.data(chunk)) return true;
      reply.onDrain = () => ex.conn?.resume();
      return false;
    },
    onEnd(body) {
      done(true);
      if (reply.started) reply.end();
      else reply.whole(status, headers, b.name, body);
    },
    onError(code) {
      done(false);
      if (reply.closed) return;
      b.errors++;
      pools.metrics.count(b.metricErrors);
      if (isConnectionError(code)) pools.health.eject(b, code);
      if (!ex.sent) {
        // Nothing reached that backend: another may take the request.
        const next = tried ?? new Set<Backend>();
        next.add(b);
        return forwardFast(pools, kind, req, remote, reply, next, start, code);
      }
      if (reply.started) return reply.destroy(); // a truncated response, never a spliced one
      reply.refuse(TIMEOUT_CODES.has(code) ? 504 : 502, `upstream ${b.name} failed: ${code}`, false);
    },
  };
  reply.onClose = () => {
    if (ex.conn) {
      if (ex.conn.ex === ex) ex.conn.abort();
    } else b.fast.cancel(ex);
    done(false);
  };
  b.fast.send(request, ex, false);
}
