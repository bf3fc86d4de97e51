import WebSocket from 'ws';
import { deriveKey, type AgentIdentity } from '../../src/core/identity.js';
import type { TunnelFrame } from '../../src/core/protocol.js';
import type { NodeInfo, RunningStack } from '../../src/stack/launcher.js';

/**
 * What the relay tests do to a running relays stack: plain `ws` agents that answer commands,
 * operator sessions, the db node's RPC, a relay's gauges. Every socket it opens is kept in
 * `open` for the test's afterEach to terminate.
 */

export interface TestTunnel {
  ws: WebSocket;
  acks: number[];
  commands: Array<Extract<TunnelFrame, { t: 'cmd' }>>;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `probe` every 50 ms until it returns true; false after `withinMs`. */
export async function eventually(probe: () => Promise<boolean> | boolean, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
}

export function relayKit(stack: () => RunningStack, secret: string, userAuthorization: string) {
  const open: WebSocket[] = [];
  const node = (name: string): NodeInfo => stack().nodes.find((n) => n.name === name)!;
  const tunnelUrl = (name: string): string => `${node(name).url.replace(/^http/, 'ws')}/agent/v1/tunnel`;

  async function dbCall<T>(method: string, args: unknown[]): Promise<{ status: number; result: T }> {
    const r = await fetch(`${node('db').url}/db/v1/${method}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${deriveKey(secret, 'db-rpc')}` }, body: JSON.stringify(args) });
    return { status: r.status, result: ((await r.json()) as { result: T }).result };
  }

  async function gauge(name: string, g: string): Promise<number> {
    const text = await (await fetch(`${node(name).url}/metrics`)).text();
    const m = new RegExp(`^rmmscale_role_gauge\\{[^}]*gauge="${g}"\\} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : NaN;
  }

  /** A role event counter on a node's /metrics (0 when it has not counted any). */
  async function events(name: string, event: string): Promise<number> {
    const text = await (await fetch(`${node(name).url}/metrics`)).text();
    const m = new RegExp(`^rmmscale_events_total\\{[^}]*event="${event}"\\} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  }

  /** A plain `ws` agent; it answers commands unless told to ignore them. */
  async function connect(relay: string, a: AgentIdentity, answer = true): Promise<TestTunnel> {
    const ws = new WebSocket(tunnelUrl(relay), { headers: { authorization: `Bearer ${a.token}`, 'x-agent-id': a.id }, perMessageDeflate: false });
    open.push(ws);
    const t: TestTunnel = { ws, acks: [], commands: [] };
    ws.on('message', (d) => {
      const f = JSON.parse(d.toString()) as TunnelFrame;
      if (f.t === 'ack') t.acks.push(f.seq);
      if (f.t === 'cmd') {
        t.commands.push(f);
        if (answer) ws.send(JSON.stringify({ t: 'res', id: f.id, exitCode: 3, output: `${a.hostname}: ran ${f.kind} ${String(f.args.command)}` } satisfies TunnelFrame));
      }
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
    return t;
  }

  async function session(relay: string, body: unknown, authorization = userAuthorization): Promise<{ status: number; body: Record<string, unknown> }> {
    const r = await fetch(`${node(relay).url}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization }, body: JSON.stringify(body) });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  }

  /** Terminate every socket opened so far. */
  function closeAll(): void {
    for (const ws of open.splice(0)) ws.terminate();
  }

  return { open, node, tunnelUrl, dbCall, gauge, events, connect, session, closeAll };
}
