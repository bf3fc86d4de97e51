import { connect, createServer, type Socket } from 'node:net';

/**
 * The floor of a Node proxy's socket I/O, for bench/proxy.ts: a bare TCP relay with no HTTP work.
 * Each client connection gets its own upstream connection, and bytes are written through as they
 * arrive (upstream reads into one reused buffer, net's `onread`, as the built-in proxy's own
 * upstream side does). The same reads and writes per request as the proxy; no parsing, routing,
 * balancing, health checks or metrics. Forked with the upstream port; answers {port} over IPC.
 *
 *   node dist/bench/node-relay.js UPSTREAM_PORT
 */

const upstreamPort = Number(process.argv[2]);
const READ = Buffer.alloc(64 * 1024);

const server = createServer({ noDelay: true }, (client: Socket) => {
  const upstream = connect({
    host: '127.0.0.1',
    port: upstreamPort,
    noDelay: true,
    onread: {
      buffer: READ,
      callback: (n: number, buf: Uint8Array): boolean => {
        client.write(Buffer.from(buf.subarray(0, n)));
        return true; // keep reading (false would pause the socket)
      },
    },
  });
  client.on('data', (d: Buffer) => upstream.write(d));
  const cut = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', cut);
  upstream.on('error', cut);
  client.on('close', cut);
  upstream.on('close', cut);
});

server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.send?.({ port: typeof a === 'object' && a ? a.port : 0 });
});
process.on('SIGTERM', () => process.exit(0));
