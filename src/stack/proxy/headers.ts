import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/**
 * Hop-by-hop header handling (RFC 9110 §7.6.1): these headers describe one connection, not the
 * message, so a proxy drops them in both directions, along with every header the Connection
 * header names. `host` is set by the upstream client; `content-length` is recomputed (or kept,
 * on responses) by the transport.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

const NONE: ReadonlySet<string> = new Set();

/** Header names listed in a Connection header (`Connection: close, x-foo` → {close, x-foo}). */
export function connectionTokens(value: string | string[] | undefined): Set<string> {
  const out = new Set<string>();
  if (value === undefined) return out;
  for (const part of Array.isArray(value) ? value : [value]) {
    for (const token of part.split(',')) {
      const t = token.trim().toLowerCase();
      if (t) out.add(t);
    }
  }
  return out;
}

/**
 * Headers to send upstream: the client's end-to-end headers, plus X-Forwarded-For (appended to any
 * the client sent) and X-Forwarded-Proto. `host` and `content-length` are left to the transport,
 * which knows the backend's authority and the body it actually sends. `expect: 100-continue` was
 * already answered by this proxy's server, so it is not passed on.
 */
export function requestHeaders(h: IncomingHttpHeaders, remoteAddress: string | undefined, proto: 'http' | 'https'): Record<string, string> {
  const named = h.connection === undefined ? NONE : connectionTokens(h.connection);
  const out: Record<string, string> = {};
  for (const k in h) {
    const v = h[k];
    if (v === undefined || HOP_BY_HOP.has(k) || named.has(k) || k === 'host' || k === 'content-length' || k === 'expect') continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  const remote = remoteAddress ?? '';
  const prior = h['x-forwarded-for'];
  out['x-forwarded-for'] = prior ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${remote}` : remote;
  out['x-forwarded-proto'] = proto;
  return out;
}

/** Headers to send the client: the backend's end-to-end headers plus `x-served-by`. */
export function responseHeaders(h: Record<string, string | string[] | undefined>, servedBy: string): OutgoingHttpHeaders {
  const named = h.connection === undefined ? NONE : connectionTokens(h.connection);
  const out: OutgoingHttpHeaders = {};
  for (const k in h) {
    const v = h[k];
    if (v === undefined || HOP_BY_HOP.has(k) || named.has(k)) continue;
    out[k] = v;
  }
  out['x-served-by'] = servedBy;
  return out;
}

/**
 * The upstream request head for the lean client (upstream.ts), from the client's raw headers: the
 * same filtering as requestHeaders (hop-by-hop and Connection-named headers, host,
 * content-length and expect dropped; X-Forwarded-For appended, X-Forwarded-Proto set), plus the
 * backend's host, the body's real length and keep-alive. Node's parser has already refused
 * header names and values that could break the framing (CR, LF, NUL, obs-fold).
 */
export function requestHead(method: string, url: string, raw: readonly string[], remoteAddress: string | undefined, proto: 'http' | 'https', host: string, bodyBytes: number): string {
  let named: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 10 && raw[i].toLowerCase() === 'connection') {
      const v = raw[i + 1];
      if (v.length === 10 && v.toLowerCase() === 'keep-alive') continue; // names only a hop-by-hop header
      for (const t of connectionTokens(v)) (named ??= new Set()).add(t);
    }
  }
  let head = `${method} ${url} HTTP/1.1\r\nhost: ${host}\r\n`;
  let xff = '';
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    if (k === 'x-forwarded-for') {
      xff = xff ? `${xff}, ${raw[i + 1]}` : raw[i + 1];
      continue;
    }
    if (HOP_BY_HOP.has(k) || k === 'host' || k === 'content-length' || k === 'expect' || k === 'x-forwarded-proto' || named?.has(k)) continue;
    head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  const remote = remoteAddress ?? '';
  head += `x-forwarded-for: ${xff ? `${xff}, ${remote}` : remote}\r\nx-forwarded-proto: ${proto}\r\n`;
  if (bodyBytes > 0 || method === 'POST' || method === 'PUT' || method === 'PATCH') head += `content-length: ${bodyBytes}\r\n`;
  return `${head}\r\n`;
}
