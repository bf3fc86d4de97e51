import { Client, Pool, type Dispatcher } from 'undici';
import type { AgentIdentity } from '../../core/identity.js';
import { AGENT_ROUTES, HEADER_AGENT_ID, type MessageKind, type PendingCommand } from '../../core/protocol.js';
import type { ConnectionPolicy } from '../config.js';
import type { SwarmRecorder } from '../recorder.js';

/**
 * Agent HTTP(S) traffic through undici, with three connection policies:
 * - `per-checkin` (default): a fresh TCP (and TLS) connection for every request, closed after the
 *   response, as polling agents behind NAT do. Pools exist only to cap concurrency per address.
 * - `keepalive`: one connection per agent, reused while the server keeps it open.
 * - `pool`: a few shared keep-alive connections per worker, for maximum-throughput tests.
 *
 * Sockets are spread over loopback source addresses (127.0.0.2, …) so that one destination can
 * take more than the ~28k sockets one source address allows.
 */

export interface HttpTransportOptions {
  baseUrl: string;
  connection: ConnectionPolicy;
  poolConnections: number;
  localAddresses: string[];
  timeoutMs: number;
  tls: { ca?: Buffer; insecure: boolean };
  /** Requests in flight at once in this worker; beyond it a due send is dropped, never queued. */
  maxInflight: number;
  recorder: SwarmRecorder;
  now: () => number;
}

const PATHS: Record<MessageKind, string> = {
  checkin: AGENT_ROUTES.checkin,
  heartbeat: AGENT_ROUTES.heartbeat,
  inventory: AGENT_ROUTES.inventory,
  'command-result': AGENT_ROUTES.commandResults,
};

export type CommandsCallback = (commands: PendingCommand[], doneMs: number) => void;

export class HttpTransport {
  private readonly opts: HttpTransportOptions;
  private readonly origin: string;
  private readonly pathPrefix: string;
  private readonly pools: Pool[] = [];
  private readonly clients = new Map<number, Client>();
  private closed = false;
  inflight = 0;

  constructor(opts: HttpTransportOptions) {
    this.opts = opts;
    const url = new URL(opts.baseUrl);
    this.origin = url.origin;
    this.pathPrefix = url.pathname.replace(/\/$/, '');
    const addrs = opts.localAddresses.length > 0 ? opts.localAddresses : [undefined];
    if (opts.connection !== 'keepalive') {
      const perAddr =
        opts.connection === 'pool'
          ? Math.max(1, Math.ceil(opts.poolConnections / addrs.length))
          : Math.max(1, Math.ceil(opts.maxInflight / addrs.length));
      for (const localAddress of addrs) this.pools.push(new Pool(this.origin, this.clientOptions(localAddress, perAddr)));
    }
  }

  private clientOptions(localAddress: string | undefined, connections: number): Pool.Options {
    return {
      connections,
      pipelining: 1,
      localAddress,
      headersTimeout: this.opts.timeoutMs,
      bodyTimeout: this.opts.timeoutMs,
      connectTimeout: Math.min(this.opts.timeoutMs, 10_000),
      keepAliveTimeout: 60_000,
      keepAliveMaxTimeout: 600_000,
      connect: { rejectUnauthorized: !this.opts.tls.insecure, ca: this.opts.tls.ca },
    };
  }

  private dispatcherFor(slot: number): Dispatcher {
    if (this.opts.connection !== 'keepalive') return this.pools[slot % this.pools.length];
    let c = this.clients.get(slot);
    if (!c) {
      const addrs = this.opts.localAddresses;
      const { connections: _c, ...clientOpts } = this.clientOptions(addrs.length > 0 ? addrs[slot % addrs.length] : undefined, 1);
      c = new Client(this.origin, clientOpts);
      this.clients.set(slot, c);
    }
    return c;
  }

  /**
   * Send one agent message now. `intendedMs` is when it should have gone out: latency is measured
   * from there. The caller has already recorded the send as scheduled and sent.
   */
  send(slot: number, agent: AgentIdentity, kind: MessageKind, body: string, intendedMs: number, onCommands?: CommandsCallback): void {
    const rec = this.opts.recorder;
    if (this.closed) return;
    if (this.inflight >= this.opts.maxInflight) {
      rec.drop('inflight-cap');
      return;
    }
    const sentMs = this.opts.now();
    rec.sent(sentMs - intendedMs);
    this.inflight++;
    this.dispatcherFor(slot)
      .request({
        method: 'POST',
        path: this.pathPrefix + PATHS[kind],
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${agent.token}`,
          [HEADER_AGENT_ID]: agent.id,
        },
        body,
        reset: this.opts.connection === 'per-checkin',
      })
      .then(
        async (res) => {
          let commands: PendingCommand[] | null = null;
          if (res.statusCode === 200 && kind === 'checkin' && onCommands) {
            const text = await res.body.text();
            commands = parseCommands(text);
          } else {
            await res.body.dump();
          }
          const doneMs = this.opts.now();
          this.inflight--;
          const ok = res.statusCode >= 200 && res.statusCode < 300;
          rec.done(kind, intendedMs, sentMs, doneMs, ok, ok ? undefined : `http-${res.statusCode}`);
          if (commands && commands.length > 0 && onCommands) onCommands(commands, doneMs);
        },
        (err: NodeJS.ErrnoException) => {
          this.inflight--;
          rec.done(kind, intendedMs, sentMs, this.opts.now(), false, err.code ?? err.name ?? 'error');
        },
      );
  }

  async close(): Promise<void> {
    this.closed = true;
    const all: Dispatcher[] = [...this.pools, ...this.clients.values()];
    await Promise.all(all.map((d) => d.destroy().catch(() => undefined)));
  }
}

function parseCommands(text: string): PendingCommand[] {
  try {
    const doc = JSON.parse(text) as { commands?: unknown };
    return Array.isArray(doc.commands) ? (doc.commands as PendingCommand[]) : [];
  } catch {
    return [];
  }
}
