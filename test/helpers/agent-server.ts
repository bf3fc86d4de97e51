import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { verifyAgentToken } from '../../src/core/identity.js';

/**
 * A small real agent-API server for swarm tests: validates tokens like a stack would, counts what it
 * receives per path, per agent and per socket, can hand out commands and can stall on demand.
 */
export interface TestAgentServer {
  url: string;
  counts: Map<string, number>;
  rejected: number;
  agents: Set<string>;
  /** Sockets that carried at least one request (a bare TCP probe does not count). */
  sockets: number;
  remoteAddresses: Set<string>;
  /** Every Nth check-in gets one command back (0 = never). */
  commandEvery: number;
  /** Added delay per response, ms. */
  delayMs: number;
  close(): Promise<void>;
}

export async function startAgentServer(secret: string, opts: { commandEvery?: number; delayMs?: number } = {}): Promise<TestAgentServer> {
  const open = new Set<Socket>();
  let checkins = 0;
  const state: Omit<TestAgentServer, 'url' | 'close'> = {
    counts: new Map(),
    rejected: 0,
    agents: new Set(),
    sockets: 0,
    remoteAddresses: new Set(),
    commandEvery: opts.commandEvery ?? 0,
    delayMs: opts.delayMs ?? 0,
  };
  const seen = new WeakSet<Socket>();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (!seen.has(req.socket)) {
      seen.add(req.socket);
      state.sockets++;
      state.remoteAddresses.add(req.socket.remoteAddress ?? '');
    }
    const id = String(req.headers['x-agent-id'] ?? '');
    const token = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (!verifyAgentToken(secret, id, token)) {
        state.rejected++;
        res.writeHead(401).end();
        return;
      }
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const path = req.url ?? '';
      state.counts.set(path, (state.counts.get(path) ?? 0) + 1);
      state.agents.add(id);
      let body = '{"ok":true,"commands":[],"nextCheckinSec":60}';
      if (path.endsWith('/checkin') && state.commandEvery > 0 && ++checkins % state.commandEvery === 0) {
        body = `{"ok":true,"commands":[{"id":"cmd-${checkins}","kind":"script","args":{}}],"nextCheckinSec":60}`;
      }
      const reply = (): void => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      };
      if (state.delayMs > 0) setTimeout(reply, state.delayMs);
      else reply();
    });
  };
  const server: Server = createServer(handler);
  server.on('connection', (s: Socket) => {
    open.add(s);
    s.on('close', () => open.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  }) as TestAgentServer;
}
