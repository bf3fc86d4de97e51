import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A small osquery TLS remote-API server, written from osquery's documentation ("Remotely
 * interfacing osquery": the tls enroll, config, logger and distributed plugins) and nothing of
 * rmmscale's: POST JSON to
 *   /api/v1/osquery/enroll            {enroll_secret, host_identifier, …} → {node_key, node_invalid}
 *   /api/v1/osquery/config            {node_key} → the config ({schedule, …}) or {node_invalid: true}
 *   /api/v1/osquery/distributed/read  {node_key} → {queries: {name: sql}}
 *   /api/v1/osquery/distributed/write {node_key, queries: {name: rows}, statuses: {name: code}}
 *   /api/v1/osquery/log               {node_key, log_type, data: [...]}
 * A wrong enroll secret or an unknown node_key gets {node_invalid: true} (status 200 for the
 * config and log endpoints, as osquery expects; 401 for enroll). Counts everything it sees.
 */
export interface OsqueryServer {
  url: string;
  enrolls: number;
  /** node_key → host_identifier, for every key this server issued. */
  issued: Map<string, string>;
  /** Every node_key presented after enrolment, valid or not. */
  used: Set<string>;
  invalid: number;
  counts: Map<string, number>;
  /** Query names handed out by distributed/read, and those answered by distributed/write. */
  queriesOut: number;
  queriesAnswered: number;
  logRecords: number;
  /** Set by a test (a window's label): every key issued and used is recorded under the phase current then. */
  phase: string;
  /** node_key → the phase it was issued in. */
  issuedIn: Map<string, string>;
  /** phase → every node_key presented in it. */
  usedIn: Map<string, Set<string>>;
  close(): Promise<void>;
}

export async function startOsqueryServer(enrollSecret: string, opts: { queryEvery: number }): Promise<OsqueryServer> {
  const sockets = new Set<Socket>();
  const outstanding = new Map<string, Set<string>>();
  let reads = 0;
  const s: Omit<OsqueryServer, 'url' | 'close'> = {
    enrolls: 0,
    issued: new Map(),
    used: new Set(),
    invalid: 0,
    counts: new Map(),
    queriesOut: 0,
    queriesAnswered: 0,
    logRecords: 0,
    phase: '',
    issuedIn: new Map(),
    usedIn: new Map(),
  };
  const reply = (res: ServerResponse, status: number, doc: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(doc));
  };
  const handle = (path: string, body: Record<string, unknown>, res: ServerResponse): void => {
    s.counts.set(path, (s.counts.get(path) ?? 0) + 1);
    if (path === '/api/v1/osquery/enroll') {
      if (body.enroll_secret !== enrollSecret || typeof body.host_identifier !== 'string') {
        s.invalid++;
        return reply(res, 401, { node_invalid: true });
      }
      const key = randomUUID();
      s.enrolls++;
      s.issued.set(key, body.host_identifier);
      s.issuedIn.set(key, s.phase);
      return reply(res, 200, { node_key: key, node_invalid: false });
    }
    const key = String(body.node_key);
    s.used.add(key);
    if (!s.usedIn.has(s.phase)) s.usedIn.set(s.phase, new Set());
    s.usedIn.get(s.phase)!.add(key);
    if (!s.issued.has(key)) {
      s.invalid++;
      return reply(res, 200, { node_invalid: true });
    }
    switch (path) {
      case '/api/v1/osquery/config':
        return reply(res, 200, { schedule: { uptime: { query: 'SELECT * FROM uptime;', interval: 3600 } }, node_invalid: false });
      case '/api/v1/osquery/distributed/read': {
        reads++;
        const queries: Record<string, string> = {};
        if (reads % opts.queryEvery === 0) {
          const names = [`q-${reads}-a`, `q-${reads}-b`];
          for (const n of names) queries[n] = 'SELECT version FROM osquery_info;';
          outstanding.set(key, new Set([...(outstanding.get(key) ?? []), ...names]));
          s.queriesOut += names.length;
        }
        return reply(res, 200, { queries, node_invalid: false });
      }
      case '/api/v1/osquery/distributed/write': {
        const mine = outstanding.get(key) ?? new Set<string>();
        const answered = body.queries && typeof body.queries === 'object' ? Object.keys(body.queries) : [];
        const statuses = body.statuses && typeof body.statuses === 'object' ? (body.statuses as Record<string, unknown>) : {};
        for (const name of answered) {
          if (mine.delete(name) && statuses[name] === 0) s.queriesAnswered++;
        }
        return reply(res, 200, { node_invalid: false });
      }
      case '/api/v1/osquery/log':
        if (Array.isArray(body.data)) s.logRecords += body.data.length;
        return reply(res, 200, { node_invalid: false });
      default:
        return reply(res, 404, { error: 'not found' });
    }
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        return reply(res, 400, { error: 'bad json' });
      }
      handle(req.url ?? '', body, res);
    });
  });
  server.on('connection', (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(s, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const sock of sockets) sock.destroy();
        server.close(() => r());
      }),
  });
}
