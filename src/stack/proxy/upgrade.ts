import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { openFileLimit } from '../../core/host.js';
import type { NodeMetricsApi } from '../types.js';
import type { Backend } from './backend.js';

const CONNECT_TIMEOUT_MS = 1000;
const MAX_HEAD_BYTES = 16 * 1024;
/** A refusal's body relayed to the client (declared length only); anything larger is dropped. */
const MAX_REFUSAL_BODY_BYTES = 16 * 1024;

export interface UpgradeHooks {
  onAttempt(b: Backend): void;
  /** The connection to `b` failed before anything was written: it is ejected and another is tried. */
  onRefused(b: Backend, code: string): void;
}

export interface TunnelOptions {
  /** Tunnels open at once (each holds two sockets); past it an Upgrade gets 503 + retry-after. */
  max: number;
  /** A tunnel with no byte either way for this long is closed (relays ping every 30 s). */
  idleMs: number;
}

/** Half the open files (two per tunnel), less a reserve for the HTTP side; idle after 90 s (three relay ping periods). */
export const DEFAULT_TUNNELS: TunnelOptions = {
  max: Math.max(16, Math.floor(((openFileLimit().soft ?? 20_000) - 1024) / 2)),
  idleMs: 90_000,
};

/** The proxy's open tunnels: counted against the cap, each closed after its idle timeout. */
export class TunnelLimits {
  private readonly open = new Set<Duplex>();

  constructor(
    readonly opts: TunnelOptions,
    private readonly metrics: Pick<NodeMetricsApi, 'count' | 'gauge'>,
  ) {}

  get size(): number {
    return this.open.size;
  }

  /** Hold a slot for `client` until it closes; false when the cap is reached. */
  take(client: Duplex): boolean {
    if (this.open.size >= this.opts.max) {
      this.metrics.count('tunnel-refused-full');
      return false;
    }
    this.open.add(client);
    this.metrics.gauge('tunnels-open', this.open.size);
    client.once('close', () => {
      this.open.delete(client);
      this.metrics.gauge('tunnels-open', this.open.size);
    });
    return true;
  }

  idle(): void {
    this.metrics.count('tunnel-idle-timeout');
  }

  closeAll(): void {
    for (const c of this.open) c.destroy();
    this.open.clear();
  }
}

/** The upgrade request as the backend gets it: the client's head with X-Forwarded-For/Proto set. */
function requestHead(req: IncomingMessage): string {
  const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1`];
  const raw = req.rawHeaders;
  let xff = '';
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    if (k === 'x-forwarded-for') xff = xff ? `${xff}, ${raw[i + 1]}` : raw[i + 1];
    else if (k !== 'x-forwarded-proto') lines.push(`${raw[i]}: ${raw[i + 1]}`);
  }
  const remote = req.socket.remoteAddress ?? '';
  lines.push(`x-forwarded-for: ${xff ? `${xff}, ${remote}` : remote}`, 'x-forwarded-proto: http');
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function refuse(client: Duplex, status: string, extra = ''): void {
  client.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n${extra}\r\n`);
}

/**
 * Pass a WebSocket (or any HTTP/1.1 Upgrade) through to a backend of the agent pool:
 *
 *   1. Refused up front: an Upgrade with a body (Content-Length, Transfer-Encoding), or with bytes
 *      after its head (a pipelined request, or frames sent before the 101): 400, closed. The cap
 *      on open tunnels: 503 + retry-after, closed.
 *   2. A raw TCP connection to the backend carries the request head only; nothing the client
 *      sends is read until the backend has answered.
 *   3. A 101 opens the tunnel: the answer (with `x-served-by`) goes to the client, then bytes both
 *      ways, until either side closes or neither sends for `idleMs`.
 *      Any other answer is relayed with `connection: close` (its body when declared and small)
 *      and both connections end: a refused upgrade never becomes a raw pipe to the backend.
 *
 * A backend that refuses the connection is ejected and the next one tried.
 */
export function upgradeThrough(req: IncomingMessage, client: Duplex, head: Buffer, pick: (tried: ReadonlySet<Backend>) => Backend | null, limits: TunnelLimits, hooks: UpgradeHooks): void {
  // Nothing from the client is read (or lost) until the backend has said 101.
  client.pause();
  client.on('error', () => client.destroy());
  if (head.length > 0 || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') || req.headers['transfer-encoding'] !== undefined) {
    return refuse(client, '400 Bad Request');
  }
  if (!limits.take(client)) return refuse(client, '503 Service Unavailable', 'retry-after: 1\r\n');
  const tried = new Set<Backend>();
  let clientGone = false;
  client.once('close', () => (clientGone = true));
  const attempt = (): void => {
    if (clientGone) return;
    const b = pick(tried);
    if (!b) return refuse(client, '503 Service Unavailable', 'retry-after: 1\r\n');
    tried.add(b);
    hooks.onAttempt(b);
    const up = connect({ host: b.host, port: b.port });
    let connected = false;
    up.setTimeout(CONNECT_TIMEOUT_MS, () => up.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })));
    up.once('error', (err: NodeJS.ErrnoException) => {
      if (!connected) {
        hooks.onRefused(b, err.code ?? 'ECONNREFUSED');
        attempt();
      } else client.destroy();
    });
    up.once('connect', () => {
      connected = true;
      // Until the answer's head: the node's request timeout stands in for the backend's.
      up.setTimeout(limits.opts.idleMs, () => {
        up.destroy();
        client.destroy();
      });
      if (clientGone) return void up.destroy();
      up.write(requestHead(req));
      relayAnswer(up, client, b.name, limits);
    });
  };
  attempt();
}

/** Read the backend's answer head; 101 → tunnel, anything else → relay it and close both. */
function relayAnswer(up: Socket, client: Duplex, servedBy: string, limits: TunnelLimits): void {
  let buf: Buffer = Buffer.alloc(0);
  const closeBoth = (): void => {
    up.destroy();
    client.destroy();
  };
  const onData = (chunk: Buffer): void => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) {
      if (buf.length > MAX_HEAD_BYTES) closeBoth();
      return;
    }
    up.off('data', onData);
    up.off('end', onEnd);
    const headText = buf.toString('latin1', 0, end);
    const rest = buf.subarray(end + 4);
    const status = /^HTTP\/1\.[01] (\d{3})[ \r]/.exec(`${headText}\r`)?.[1];
    if (status === '101') return openTunnel(up, client, headText, rest, servedBy, limits);
    refusedUpgrade(up, client, headText, rest, servedBy);
  };
  const onEnd = (): void => closeBoth();
  up.on('data', onData);
  up.once('end', onEnd);
  up.once('close', () => client.destroy());
}

function openTunnel(up: Socket, client: Duplex, headText: string, rest: Buffer, servedBy: string, limits: TunnelLimits): void {
  client.write(`${headText}\r\nx-served-by: ${servedBy}\r\n\r\n`);
  if (rest.length > 0) client.write(rest);
  let timedOut = false;
  const idle = (): void => {
    if (timedOut) return;
    timedOut = true;
    limits.idle();
    up.destroy();
    client.destroy();
  };
  up.setTimeout(limits.opts.idleMs, idle);
  // Both directions count as activity: a socket's timer resets on its own reads and writes.
  const sock = client as Partial<Socket>;
  if (typeof sock.setTimeout === 'function') sock.setTimeout(limits.opts.idleMs, idle);
  up.pipe(client);
  client.pipe(up);
  client.resume();
  client.once('close', () => up.destroy());
}

/**
 * Relay a non-101 answer to an Upgrade and end both connections: its status line and end-to-end
 * headers, `connection: close`, and its body when declared (Content-Length, up to
 * MAX_REFUSAL_BODY_BYTES), else none. The client's socket is never read.
 */
function refusedUpgrade(up: Socket, client: Duplex, headText: string, rest: Buffer, servedBy: string): void {
  const lines = headText.split('\r\n');
  const keep: string[] = [lines[0]];
  let length = 0;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = (colon > 0 ? line.slice(0, colon) : '').trim().toLowerCase();
    if (name === 'content-length') {
      const n = Number(line.slice(colon + 1).trim());
      length = Number.isInteger(n) && n >= 0 && n <= MAX_REFUSAL_BODY_BYTES ? n : 0;
      continue;
    }
    if (!name || ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer'].includes(name)) continue;
    keep.push(line);
  }
  let done = false;
  const finish = (body: Buffer): void => {
    if (done) return;
    done = true;
    const b = body.subarray(0, length);
    client.end(Buffer.concat([Buffer.from(`${keep.join('\r\n')}\r\nx-served-by: ${servedBy}\r\nconnection: close\r\ncontent-length: ${b.length}\r\n\r\n`, 'latin1'), b]));
    // The client's socket closes once the answer is flushed, not when the backend's does.
    up.removeAllListeners('close');
    up.destroy();
  };
  if (rest.length >= length) return finish(rest);
  let body = rest;
  up.on('data', (chunk: Buffer) => {
    body = Buffer.concat([body, chunk]);
    if (body.length >= length) finish(body);
  });
  up.once('end', () => {
    length = Math.min(length, body.length);
    finish(body);
  });
}
