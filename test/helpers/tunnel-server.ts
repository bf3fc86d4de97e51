import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { verifyAgentToken } from '../../src/core/identity.js';
import type { TunnelFrame } from '../../src/core/protocol.js';

/** A real WebSocket tunnel endpoint for swarm tests: checks tokens, acks telemetry, sends commands. */
export interface TestTunnelServer {
  url: string;
  tunnels: Map<string, WebSocket>;
  telemetry: number;
  results: number;
  rejected: number;
  connects: number;
  /** The close code of every tunnel that ended (1006: no close frame, the connection just went). */
  closeCodes: number[];
  sendCommandToAll(): number;
  /** Close every tunnel (a relay restart as agents see it). */
  closeAll(): void;
  /** Stop reading from every connection (a wedged relay): close frames go unanswered. */
  freeze(): void;
  close(): Promise<void>;
}

/** `port`: listen there (a relay restarted on its port); default a free one. */
export async function startTunnelServer(secret: string, port = 0): Promise<TestTunnelServer> {
  const http: Server = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const raw = new Set<Socket>();
  http.on('connection', (s: Socket) => {
    raw.add(s);
    s.on('close', () => raw.delete(s));
  });
  let cmd = 0;
  const state = {
    tunnels: new Map<string, WebSocket>(),
    telemetry: 0,
    results: 0,
    rejected: 0,
    connects: 0,
    closeCodes: [] as number[],
  };
  http.on('upgrade', (req, socket, head) => {
    const id = String(req.headers['x-agent-id'] ?? '');
    const token = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
    if (!verifyAgentToken(secret, id, token)) {
      state.rejected++;
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      state.connects++;
      state.tunnels.set(id, ws);
      ws.on('message', (data) => {
        const f = JSON.parse(data.toString()) as TunnelFrame;
        if (f.t === 'tel') {
          state.telemetry++;
          ws.send(JSON.stringify({ t: 'ack', seq: f.seq } satisfies TunnelFrame));
        } else if (f.t === 'res') state.results++;
      });
      ws.on('close', (code: number) => {
        state.closeCodes.push(code);
        if (state.tunnels.get(id) === ws) state.tunnels.delete(id);
      });
    });
  });
  await new Promise<void>((r) => http.listen(port, '127.0.0.1', r));
  const bound = (http.address() as AddressInfo).port;
  return Object.assign(state, {
    url: `ws://127.0.0.1:${bound}/agent/v1/tunnel`,
    sendCommandToAll: () => {
      for (const ws of state.tunnels.values()) ws.send(JSON.stringify({ t: 'cmd', id: `c${++cmd}`, kind: 'shell', args: {} } satisfies TunnelFrame));
      return state.tunnels.size;
    },
    closeAll: () => {
      for (const ws of state.tunnels.values()) ws.close(1012, 'relay restart');
    },
    freeze: () => {
      for (const s of raw) s.pause();
    },
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      for (const s of raw) s.destroy();
      wss.close();
      await new Promise<void>((r) => http.close(() => r()));
    },
  });
}
