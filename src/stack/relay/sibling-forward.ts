import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, request } from 'undici';
import { StackError } from '../../core/errors.js';
import { deriveKey } from '../../core/identity.js';
import { isLoopbackHost } from '../../core/loopback.js';
import { USER_ROUTES } from '../../core/protocol.js';
import { refuse } from '../http-errors.js';
import type { NodeMetricsApi, Store } from '../types.js';
import type { SessionRequest } from './session-api.js';

/**
 * An operator session for an agent whose tunnel is not on this relay: the relay reads the agent's
 * presence (which relay holds it) from the database (or, when the database does not answer or has
 * no sibling for it, asks its siblings: GET /relay/v1/holds/AGENT with the siblings' key) and forwards the request once to that
 * sibling, marked with x-rmmscale-relay-hop so the sibling does not forward it again. The
 * sibling's answer is passed through as it is. Nobody holds the agent, or the holder is not a
 * sibling: 404 naming the agent. The sibling is unreachable: 502.
 *
 * Siblings are configured by URL and found by node name from their /healthz, asked again at most
 * once a second after a miss.
 *
 * The forward carries the operator's own token (the sibling authenticates the user and checks
 * the scope again) and the siblings' key (x-rmmscale-relay-key), without which a sibling refuses
 * a request marked as forwarded (401). TLS siblings are verified: against the relays'
 * certificates the launcher names (spec.relay.siblingCaFiles), else the system's CAs; a
 * certificate that does not verify is an unreachable sibling (502), never a silent forward.
 */

export const HEADER_RELAY_HOP = 'x-rmmscale-relay-hop';
export const HEADER_RELAY_KEY = 'x-rmmscale-relay-key';
/** `GET /relay/v1/holds/AGENT` (siblings' key): does this relay hold that agent's tunnel? */
export const RELAY_HOLDS_PREFIX = '/relay/v1/holds/';

/** A presence lookup slower than this counts as the database being unreachable. */
const PRESENCE_DEADLINE_MS = 500;

/** `p`, or a rejection once `ms` passed without an answer (p still runs; its late answer is ignored). */
export function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(t);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** What became of a forward: whether a sibling answered (and so audited it), and what the operator got. */
export interface ForwardResult {
  reachedSibling: boolean;
  status: number;
  outcome: string;
}

/** Time a forward gets on top of the session's own timeout. */
const FORWARD_SLACK_MS = 2000;
const SIBLING_PROBE_MS = 1000;

/** Sibling relay URLs: http(s) on loopback only. */
function checkSiblings(node: string, siblings: readonly string[]): string[] {
  return siblings.map((s, i) => {
    let u: URL | null = null;
    try {
      u = new URL(s);
    } catch {
      // reported below
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || !isLoopbackHost(u.hostname)) {
      throw new StackError(`${node}: relay.siblings[${i}]: expected an http(s) URL on loopback, got ${JSON.stringify(s)}`);
    }
    return u.origin;
  });
}

export class SiblingForwarder {
  private siblings: string[];
  private readonly siblingByName = new Map<string, string>();
  private siblingProbeAtMs = 0;
  private probing: Promise<void> | null = null;
  private dispatcher: Agent | null = null;
  private readonly key: string;
  private readonly ca: Buffer[] | undefined;

  /** Throws a StackError for a sibling URL that is not http(s) on loopback, or an unreadable CA file. */
  constructor(
    private readonly name: string,
    siblings: readonly string[],
    private readonly store: Store,
    private readonly metrics: NodeMetricsApi,
    opts: { secret: string; caFiles?: readonly string[] },
  ) {
    this.siblings = checkSiblings(name, siblings);
    this.key = deriveKey(opts.secret, 'relay-forward');
    this.ca = opts.caFiles?.map((f, i) => {
      try {
        return readFileSync(f);
      } catch (err) {
        throw new StackError(`${name}: relay.siblingCaFiles[${i}]: cannot read ${JSON.stringify(f)} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
      }
    });
  }

  setSiblings(urls: string[]): void {
    this.siblings = checkSiblings(this.name, urls);
    this.siblingByName.clear();
    this.siblingProbeAtMs = 0;
  }

  /** Not here: ask the database which relay holds the agent and hand the request to it, once. */
  async forward(req: IncomingMessage, res: ServerResponse, s: SessionRequest): Promise<ForwardResult> {
    const holder = await this.holderOf(s.agentId);
    if (holder === null || holder === this.name) {
      refuse(req, res, 404, `agent ${JSON.stringify(s.agentId)} is not connected: no relay holds its tunnel (asked ${this.name})`);
      return { reachedSibling: false, status: 404, outcome: 'not-connected' };
    }
    const url = await this.siblingUrl(holder);
    if (!url) {
      refuse(req, res, 404, `agent ${JSON.stringify(s.agentId)} is held by ${holder}, which is not a sibling of ${this.name}`);
      return { reachedSibling: false, status: 404, outcome: 'not-connected' };
    }
    this.metrics.count('session-forwarded');
    const budgetMs = s.timeoutMs + FORWARD_SLACK_MS;
    try {
      const r = await request(`${url}${USER_ROUTES.sessions}`, {
        method: 'POST',
        dispatcher: this.agent(),
        headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '', [HEADER_RELAY_HOP]: this.name, [HEADER_RELAY_KEY]: this.key },
        body: JSON.stringify({ agentId: s.agentId, protocol: s.protocol, command: s.command, args: s.args, timeoutMs: s.timeoutMs }),
        headersTimeout: budgetMs,
        bodyTimeout: budgetMs,
      });
      const text = await r.body.text();
      const retryAfter = r.headers['retry-after'];
      res.writeHead(r.statusCode, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...(typeof retryAfter === 'string' ? { 'retry-after': retryAfter } : {}) }).end(text);
      return { reachedSibling: true, status: r.statusCode, outcome: 'forwarded' };
    } catch (err) {
      const why = (err as { code?: string }).code ?? (err as Error).message;
      refuse(req, res, 502, `agent ${JSON.stringify(s.agentId)} is held by ${holder} (${url}), which is unreachable (${why}); its agents fail over to a sibling, retry shortly`, { 'retry-after': '1' });
      return { reachedSibling: false, status: 502, outcome: 'sibling-unreachable' };
    }
  }

  /**
   * Which relay holds the agent: the database's presence row, or, when the database does not
   * answer within 500 ms (the control plane down), the siblings themselves, asked in parallel.
   * They are asked too when the row is missing or names this relay: presence is written behind
   * the tunnels' backs, and after a mass connect (a ramp of 2,000 agents against the `automate`
   * db) a sibling's rows lagged its tunnels by up to a minute, in which this relay answered 404
   * for agents that were connected.
   */
  private async holderOf(agentId: string): Promise<string | null> {
    try {
      const holder = await withDeadline(this.store.getPresence(agentId), PRESENCE_DEADLINE_MS);
      if (holder !== null && holder !== this.name) return holder;
      this.metrics.count('session-presence-unknown');
    } catch {
      this.metrics.count('session-presence-from-siblings');
    }
    if (this.siblingByName.size < this.siblings.length) await this.learnSiblings();
    const dispatcher = this.agent();
    const asked = await Promise.all(
      [...this.siblingByName].map(async ([name, url]) => {
        try {
          const r = await request(`${url}${RELAY_HOLDS_PREFIX}${encodeURIComponent(agentId)}`, { dispatcher, headers: { [HEADER_RELAY_KEY]: this.key }, headersTimeout: SIBLING_PROBE_MS, bodyTimeout: SIBLING_PROBE_MS });
          const h = (await r.body.json()) as { holds?: unknown };
          return r.statusCode === 200 && h.holds === true ? name : null;
        } catch {
          return null;
        }
      }),
    );
    return asked.find((n) => n !== null) ?? null;
  }

  /** One keep-alive pool for the siblings, made on first use; TLS siblings' certificates are verified. */
  private agent(): Agent {
    this.dispatcher ??= new Agent({ connections: 16, keepAliveTimeout: 10_000, connect: this.ca ? { ca: this.ca } : {} });
    return this.dispatcher;
  }

  /** A sibling's URL by node name, learned from the siblings' /healthz. */
  private async siblingUrl(name: string): Promise<string | null> {
    const known = this.siblingByName.get(name);
    if (known) return known;
    await this.learnSiblings();
    return this.siblingByName.get(name) ?? null;
  }

  /** Ask every sibling's /healthz for its node name (at most once a second; callers meanwhile share the asking). */
  private learnSiblings(): Promise<void> {
    if (this.probing) return this.probing;
    const now = Date.now();
    if (this.siblings.length === 0 || now - this.siblingProbeAtMs < 1000) return Promise.resolve();
    this.siblingProbeAtMs = now;
    this.probing = this.probeSiblings().finally(() => (this.probing = null));
    return this.probing;
  }

  private async probeSiblings(): Promise<void> {
    const dispatcher = this.agent();
    await Promise.all(
      this.siblings.map(async (url) => {
        try {
          const r = await request(`${url}/healthz`, { dispatcher, headersTimeout: SIBLING_PROBE_MS, bodyTimeout: SIBLING_PROBE_MS });
          const h = (await r.body.json()) as { node?: unknown };
          if (typeof h.node === 'string') this.siblingByName.set(h.node, url);
        } catch {
          // down now; asked again on a later miss
        }
      }),
    );
  }

  async close(): Promise<void> {
    await this.dispatcher?.close().catch(() => undefined);
  }
}
