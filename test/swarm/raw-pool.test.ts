import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RawPool } from '../../src/swarm/transports/raw-pool.js';

let servers: Array<Server | NetServer> = [];
let pools: RawPool[] = [];
const sockets = new Set<Socket>();

afterEach(async () => {
  for (const p of pools) p.close();
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  servers = [];
  pools = [];
  sockets.clear();
});

async function listen<T extends Server | NetServer>(s: T): Promise<URL> {
  s.on('connection', (c: Socket) => {
    sockets.add(c);
    c.on('close', () => sockets.delete(c));
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return new URL(`http://127.0.0.1:${(s.address() as AddressInfo).port}`);
}

function exchange(pool: RawPool, request: string): Promise<{ status: number; body: string | null; error: string | null }> {
  return new Promise((resolve) => {
    const sent = pool.send(request, {
      wantBody: true,
      done: (status, body, error) => resolve({ status, body: body ? body.toString() : null, error }),
    });
    if (!sent) resolve({ status: 0, body: null, error: 'no-connection' });
  });
}

const GET = (path: string): string => `GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`;

describe('RawPool (the shared-pool transport)', () => {
  it('reads content-length and chunked bodies, in order, on one kept-alive connection', async () => {
    const seen = new Set<number>();
    const url = await listen(
      createServer((req, res) => {
        seen.add(req.socket.remotePort ?? 0);
        if (req.url === '/chunked') {
          res.write('{"a":');
          setTimeout(() => res.end('[1,2,3]}'), 5);
        } else res.writeHead(201, { 'content-length': '7' }).end('{"b":2}');
      }),
    );
    const pool = new RawPool({ origin: url, connections: 1, localAddresses: [], timeoutMs: 5000, tls: { insecure: false } });
    pools.push(pool);
    expect(await exchange(pool, GET('/chunked'))).toEqual({ status: 200, body: '{"a":[1,2,3]}', error: null });
    expect(await exchange(pool, GET('/cl'))).toEqual({ status: 201, body: '{"b":2}', error: null });
    expect(await exchange(pool, GET('/chunked'))).toEqual({ status: 200, body: '{"a":[1,2,3]}', error: null });
    expect(seen.size).toBe(1);
  });

  it('handles a response head split across TCP segments, and Connection: close', async () => {
    let conns = 0;
    const url = await listen(
      createNetServer((c) => {
        conns++;
        c.once('data', () => {
          c.write('HTTP/1.1 503 Service Unavai');
          setTimeout(() => c.end('lable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy'), 10);
        });
      }),
    );
    const pool = new RawPool({ origin: url, connections: 1, localAddresses: [], timeoutMs: 5000, tls: { insecure: false } });
    pools.push(pool);
    expect(await exchange(pool, GET('/'))).toEqual({ status: 503, body: 'busy', error: null });
    expect(await exchange(pool, GET('/'))).toEqual({ status: 503, body: 'busy', error: null });
    expect(conns).toBe(2); // reconnected after the server said close
  });

  it('reports a reset mid-response as an error, and a refused connection by its code', async () => {
    const url = await listen(createNetServer((c) => c.once('data', () => c.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort'))));
    const pool = new RawPool({ origin: url, connections: 1, localAddresses: [], timeoutMs: 5000, tls: { insecure: false } });
    pools.push(pool);
    expect((await exchange(pool, GET('/'))).error).toBe('UND_ERR_SOCKET');
    const dead = new RawPool({ origin: new URL('http://127.0.0.1:9'), connections: 1, localAddresses: [], timeoutMs: 5000, tls: { insecure: false } });
    pools.push(dead);
    expect((await exchange(dead, GET('/'))).error).toBe('ECONNREFUSED');
  });

  it('never queues: with every connection busy, send() refuses', async () => {
    const url = await listen(createServer((_req, res) => setTimeout(() => res.end('ok'), 50)));
    const pool = new RawPool({ origin: url, connections: 2, localAddresses: [], timeoutMs: 5000, tls: { insecure: false } });
    pools.push(pool);
    const a = exchange(pool, GET('/'));
    const b = exchange(pool, GET('/'));
    expect(pool.available).toBe(0);
    expect(await exchange(pool, GET('/'))).toEqual({ status: 0, body: null, error: 'no-connection' });
    expect((await a).status).toBe(200);
    expect((await b).status).toBe(200);
    expect(pool.available).toBe(2);
  });

  it('binds the given loopback source addresses round-robin', async () => {
    const from = new Set<string>();
    const url = await listen(
      createServer((req, res) => {
        from.add(req.socket.remoteAddress ?? '');
        res.end('ok');
      }),
    );
    const pool = new RawPool({ origin: url, connections: 3, localAddresses: ['127.0.0.7', '127.0.0.8', '127.0.0.9'], timeoutMs: 5000, tls: { insecure: false } });
    pools.push(pool);
    await Promise.all([exchange(pool, GET('/')), exchange(pool, GET('/')), exchange(pool, GET('/'))]);
    expect([...from].sort()).toEqual(['127.0.0.7', '127.0.0.8', '127.0.0.9']);
  });
});
