import { createServer, type Server } from 'node:http';
import { InvalidArgumentError } from '../core/errors.js';

/**
 * A Prometheus scrape endpoint on loopback only: GET /metrics answers `render()` as exposition
 * text (format 0.0.4); anything else is 404 (405 for another method). Port 0 takes a free port.
 */

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const METRICS_HOST = '127.0.0.1';

export interface MetricsServer {
  port: number;
  /** http://127.0.0.1:PORT/metrics */
  url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(flag: string, port: number, render: () => string): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    const body = render();
    res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' || err.code === 'EACCES' ? new InvalidArgumentError(flag, port, `a free port on ${METRICS_HOST} (${err.code})`) : err);
    });
    server.listen(port, METRICS_HOST, () => resolve());
  });
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  return {
    port: bound,
    url: `http://${METRICS_HOST}:${bound}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
