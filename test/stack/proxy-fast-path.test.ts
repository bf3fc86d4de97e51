import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startBackend, startProxy, type TestBackend, type TestProxy } from './proxy-backends.js';

/**
 * The built-in proxy's fast path (src/stack/proxy/fast-front.ts): requests it serves from the raw
 * socket are counted like any other, and a stop lets the one in flight finish, marked as the
 * connection's last.
 */

let backend: TestBackend;
let proxy: TestProxy | null;

beforeEach(async () => {
  backend = await startBackend('web-agent-1');
  proxy = await startProxy([backend], []);
});

afterEach(async () => {
  await proxy?.close();
  await backend.kill();
});

/** Write `text` on a fresh connection; resolve with everything read once the proxy closes it (or after waitMs). */
function exchange(url: string, text: string, waitMs: number, whileOpen?: () => void): Promise<{ text: string; closed: boolean }> {
  const { port, hostname } = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(port), hostname, () => {
      s.write(text);
      whileOpen?.();
    });
    let got = '';
    const done = (closed: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ text: got, closed });
    };
    const timer = setTimeout(() => done(false), waitMs);
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('end', () => done(true));
    s.on('error', () => done(true));
  });
}

describe('built-in proxy fast path', () => {
  it('counts fast-path requests under their route, with their status, and relays each answer in full', async () => {
    const req = 'POST /agent/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello';
    const r = await exchange(proxy!.url, req.repeat(3), 1000);
    expect([...r.text.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => m[1])).toEqual(['200', '200', '200']);
    expect(r.text.match(/x-served-by: web-agent-1/g)?.length).toBe(3);
    expect(proxy!.metrics.prometheus()).toMatch(/rmmscale_requests_total\{[^}]*route="proxy:agent",status="200"\} 3\n/);
  });

  it('forwards the end-to-end headers and sets its own: hop-by-hop dropped, X-Forwarded-For appended, values trimmed', async () => {
    const req =
      'POST /agent/echo HTTP/1.1\r\nHost: front:80\r\nX-Agent-Id: a-7\r\nProxy-Authorization: Basic eA==\r\nTE: trailers\r\nKeep-Alive: timeout=9\r\n' +
      'X-Forwarded-For: 203.0.113.5\r\nX-Forwarded-Proto: https\r\nX-Pad:   padded \t\r\nx-forwarded-for: 198.51.100.7\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi';
    const r = await exchange(proxy!.url, req, 1000);
    expect(r.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    const echo = JSON.parse(r.text.slice(r.text.indexOf('{'), r.text.lastIndexOf('}') + 1)) as { headers: Record<string, string>; bodyBytes: number };
    const h = echo.headers;
    expect(echo.bodyBytes).toBe(2);
    expect(h['x-agent-id']).toBe('a-7');
    expect(h['x-pad']).toBe('padded');
    expect(h['x-forwarded-for']).toBe('203.0.113.5, 198.51.100.7, 127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h.host).toBe(new URL(backend.url).host);
    expect(h['content-length']).toBe('2');
    for (const gone of ['proxy-authorization', 'te', 'keep-alive']) expect([gone, h[gone]]).toEqual([gone, undefined]);
  });

  it('a stop lets the request in flight finish; its answer says connection: close and the connection ends', async () => {
    let closing: Promise<void> | null = null;
    const r = await exchange(proxy!.url, 'GET /agent/slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n', 3000, () => {
      setTimeout(() => (closing = proxy!.close()), 100);
    });
    expect(r.closed).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(r.text).toMatch(/\r\nconnection: close\r\n/);
    await closing;
    proxy = null;
  });
});
