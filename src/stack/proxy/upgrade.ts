import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Backend } from './backend.js';

const CONNECT_TIMEOUT_MS = 1000;
const MAX_HEAD_BYTES = 16 * 1024;

export interface UpgradeHooks {
  onAttempt(b: Backend): void;
  /** The connection to `b` failed before anything was written: it is ejected and another is tried. */
  onRefused(b: Backend, code: string): void;
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

/**
 * Pass a WebSocket (or any HTTP/1.1 Upgrade) through to a backend of the agent pool: a raw TCP
 * connection that carries the client's request head, then bytes both ways. The backend's
 * response head gets `x-served-by`. A backend that refuses the connection is ejected and the next
 * one tried; once the head is written, a failure closes the client's socket.
 */
export function upgradeThrough(req: IncomingMessage, client: Duplex, head: Buffer, pick: (tried: ReadonlySet<Backend>) => Backend | null, hooks: UpgradeHooks): void {
  const tried = new Set<Backend>();
  let clientGone = false;
  client.once('close', () => (clientGone = true));
  client.on('error', () => client.destroy());
  const attempt = (): void => {
    if (clientGone) return;
    const b = pick(tried);
    if (!b) {
      client.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
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
      up.setTimeout(0);
      if (clientGone) return void up.destroy();
      up.write(requestHead(req));
      if (head.length > 0) up.write(head);
      relayResponseHead(up, client, b.name);
    });
  };
  attempt();
}

/** Copy the backend's response head with `x-served-by` added, then pipe both ways. */
function relayResponseHead(up: Duplex, client: Duplex, servedBy: string): void {
  let buf = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk]);
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) {
      if (buf.length > MAX_HEAD_BYTES) {
        up.destroy();
        client.destroy();
      }
      return;
    }
    up.off('data', onData);
    up.pause();
    client.write(Buffer.concat([buf.subarray(0, end + 2), Buffer.from(`x-served-by: ${servedBy}\r\n`), buf.subarray(end + 2)]));
    up.pipe(client);
    client.pipe(up);
    up.once('close', () => client.destroy());
    client.once('close', () => up.destroy());
  };
  up.on('data', onData);
  up.once('end', () => {
    if (buf.indexOf('\r\n\r\n') < 0) client.end();
  });
}
