import { Client, Pool, type Dispatcher } from 'undici';
import type { ConnectionPolicy } from '../config.js';
import { RawPool, type RawExchange } from '../transports/raw-pool.js';
import { agentPoolOptions } from '../transports/undici-options.js';

/**
 * The HTTP side of a template protocol: one request at a time per call, through undici's dispatch
 * (no promise chain, no body stream), with the connection policies of the fixed path
 * (transports/http.ts): `per-checkin` closes each connection after its response, `keepalive`
 * keeps one per agent, `pool` shares `poolConnections` keep-alive connections (on the fixed path's
 * RawPool, one prebuilt string per request, for the same reason: a throughput generator must cost
 * less per request than what it measures). An agent with a client certificate (mTLS) always has
 * its own undici connection, since the certificate is per agent.
 */

export interface ProtocolHttpOptions {
  baseUrl: string;
  connection: ConnectionPolicy;
  poolConnections: number;
  localAddresses: string[];
  timeoutMs: number;
  tls: { ca?: Buffer; insecure: boolean };
  maxInflight: number;
  /** mTLS: the agent's key and certificate, asked once per agent (when its connection is made). */
  credentials: ((slot: number) => ClientCredentials) | null;
}

/** status 0 with an error code when the request failed before a response. */
export type ExchangeDone = (status: number, body: string | null, errorCode: string | null) => void;

export interface ClientCredentials {
  key: string;
  cert: string;
}

export class ProtocolHttp {
  private readonly origin: string;
  readonly pathPrefix: string;
  private readonly pools: Pool[] = [];
  private readonly clients = new Map<number, Client>();
  private readonly raw: RawPool | null = null;
  private readonly host: string;
  private closed = false;

  constructor(private readonly opts: ProtocolHttpOptions) {
    const url = new URL(opts.baseUrl);
    this.origin = url.origin;
    this.pathPrefix = url.pathname.replace(/\/$/, '');
    this.host = url.host;
    if (opts.connection === 'pool' && !opts.credentials) {
      this.raw = new RawPool({ origin: url, connections: opts.poolConnections, localAddresses: opts.localAddresses, timeoutMs: opts.timeoutMs, tls: opts.tls });
    } else if (opts.connection !== 'keepalive' && !opts.credentials) {
      const addrs = opts.localAddresses.length > 0 ? opts.localAddresses : [undefined];
      const total = opts.connection === 'pool' ? opts.poolConnections : opts.maxInflight;
      const perAddr = Math.max(1, Math.ceil(total / addrs.length));
      for (const localAddress of addrs) this.pools.push(new Pool(this.origin, this.clientOptions(localAddress, perAddr, null)));
    }
  }

  private clientOptions(localAddress: string | undefined, connections: number, creds: ClientCredentials | null): Pool.Options {
    return agentPoolOptions({ localAddress, connections, timeoutMs: this.opts.timeoutMs, tls: this.opts.tls, creds });
  }

  private dispatcherFor(slot: number): Dispatcher {
    const creds = this.opts.credentials;
    if (this.opts.connection !== 'keepalive' && !creds) return this.pools[slot % this.pools.length];
    let c = this.clients.get(slot);
    if (!c) {
      const addrs = this.opts.localAddresses;
      const { connections: _c, ...clientOpts } = this.clientOptions(addrs.length > 0 ? addrs[slot % addrs.length] : undefined, 1, creds ? creds(slot) : null);
      c = new Client(this.origin, clientOpts);
      this.clients.set(slot, c);
    }
    return c;
  }

  /** Pool mode: connect ahead of t = 0. */
  warm(): void {
    this.raw?.warm();
  }

  /**
   * Flows that may run at once. A flow has one request in flight at a time, so in pool mode at most
   * one flow per connection guarantees every later step of a running flow an idle connection.
   */
  get flowCapacity(): number {
    return this.raw === null ? Infinity : this.opts.poolConnections;
  }

  request(slot: number, method: string, path: string, headers: string[], body: string | null, readBody: boolean, done: ExchangeDone): void {
    if (this.closed) return done(0, null, 'closed');
    if (this.raw) {
      let head = `${method} ${this.pathPrefix}${path} HTTP/1.1\r\nhost: ${this.host}\r\n`;
      for (let h = 0; h < headers.length; h += 2) head += `${headers[h]}: ${headers[h + 1]}\r\n`;
      const request = body === null ? head + '\r\n' : `${head}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      if (!this.raw.send(request, new RawDone(readBody, done))) done(0, null, 'pool-busy');
      return;
    }
    this.dispatcherFor(slot).dispatch(
      { method: method as Dispatcher.HttpMethod, path: this.pathPrefix + path, headers, body, reset: this.opts.connection === 'per-checkin' },
      new Exchange(readBody, done),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    this.raw?.close();
    const all: Dispatcher[] = [...this.pools, ...this.clients.values()];
    await Promise.all(all.map((d) => d.destroy().catch(() => undefined)));
  }
}

class RawDone implements RawExchange {
  constructor(
    readonly wantBody: boolean,
    private readonly cb: ExchangeDone,
  ) {}

  done(status: number, body: Buffer | null, errorCode: string | null): void {
    this.cb(status, body ? body.toString('utf8') : null, errorCode);
  }
}

class Exchange implements Dispatcher.DispatchHandler {
  private status = 0;
  private chunks: Buffer[] | null = null;
  private settled = false;

  constructor(
    private readonly readBody: boolean,
    private readonly done: ExchangeDone,
  ) {}

  // undici adapts handlers of this (v7) shape only when onRequestStart exists.
  onRequestStart(): void {}

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode;
    if (this.readBody) this.chunks = [];
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.chunks?.push(chunk);
  }

  onResponseEnd(): void {
    if (this.settled) return;
    this.settled = true;
    this.done(this.status, this.chunks ? Buffer.concat(this.chunks).toString('utf8') : null, null);
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.done(0, null, (err as NodeJS.ErrnoException).code ?? err.name ?? 'error');
  }
}
