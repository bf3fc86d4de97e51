import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { CheckinRequest, CommandResult, PendingCommand } from '../core/protocol.js';

/**
 * Contracts inside the reference stacks. The launcher turns a topology into NodeSpecs; each spec
 * runs as its own OS process (src/stack/node-main.ts), whose runtime serves the admin surface
 * (/healthz, /metrics, /admin/hdr), applies the capacity profile, opens the Store, and hands
 * every other request to the role's RoleHandler.
 */

/** Role names as users write them in topology files. */
export const ROLE_NAMES = ['single', 'web', 'app', 'db', 'proxy', 'relay', 'analytics'] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

export type ServiceDist = 'constant' | 'exponential' | 'lognormal';

/** Per-request (or, on a db node, per-query) service time added on top of the real work. */
export interface ServiceTime {
  dist: ServiceDist;
  meanMs: number;
  /** Lognormal only: the p99 that fixes the shape (sigma). */
  p99Ms?: number;
}

/**
 * A node's modelled capacity: `workers` requests in service at once, each holding its worker for a
 * sampled service time on top of the real work; up to `queue` more wait; beyond that, 503.
 */
export interface CapacityProfile {
  workers: number;
  queue: number;
  service: ServiceTime;
}

export type DbSpec =
  | { kind: 'sqlite'; path: string }
  | { kind: 'postgres'; url: string }
  /** A `db` node reached over HTTP: the db tier as its own process. */
  | { kind: 'remote'; url: string };

/** What `web` nodes serve: agent paths, user/integration paths, or both. */
export type WebServes = 'agent' | 'user' | 'both';

export interface NodeSpec {
  /** Unique within the stack: `web-agent-1`, `db`, `proxy`. Shown in X-Served-By. */
  name: string;
  role: RoleName;
  /** Tier name used in results: single | proxy | web-agent | web-user | app | db | relay. */
  tier: string;
  host: string;
  /** 0 picks a free port; the runtime reports the real one when ready. */
  port: number;
  /**
   * Agent tokens, user tokens and the control-plane keys (core/identity.ts deriveKey: /admin/*,
   * the db RPC, sibling forwarding) are HMACs under this secret.
   */
  secret: string;
  /** Storage the node works against (absent for the proxy). For the db role: the backing store. */
  db?: DbSpec;
  /** Request-level capacity model (web, single, relay, proxy). */
  profile?: CapacityProfile;
  /** Query-level capacity model: connections × per-query time (db role, or single's embedded DB). */
  dbProfile?: CapacityProfile;
  web?: { serves: WebServes };
  proxy?: {
    agentPool: string[];
    userPool: string[];
    names: Record<string, string>;
    /** Requests that may wait per backend beyond its connections (default 1024); then 503. */
    queuePerBackend?: number;
    /** Raw tunnels (Upgrade → 101): at most `max` at once (then 503), closed after `idleMs` without a byte either way. */
    tunnels?: { max?: number; idleMs?: number };
  };
  /**
   * siblingCaFiles: the certificates (PEM files) a relay trusts when it forwards to a TLS sibling;
   * without them it forwards only over http.
   */
  /**
   * relay only. auditSpoolFile: where session audit records wait while the database is unreachable
   * (the launcher keeps it in the stack's data folder, so a restarted relay drains it; absent, a
   * file in a fresh temp folder of this process). auditSpoolMax: records it may hold (default 100,000).
   * analyticsUrl: the analytics node, where telemetry goes (absent: into the store).
   * telemetrySpoolDir: with an analytics node, where acked telemetry waits to be forwarded to it
   * (relay/telemetry-spool.ts; the launcher keeps it in the stack's data folder). telemetrySpoolMax:
   * samples it may hold (default 200,000).
   */
  relay?: { siblings: string[]; tls?: { certFile: string; keyFile: string }; siblingCaFiles?: string[]; auditSpoolFile?: string; auditSpoolMax?: number; analyticsUrl?: string; telemetrySpoolDir?: string; telemetrySpoolMax?: number };
  /** analytics role: its own SQLite file (the analytics plane's store, apart from the control plane's database). */
  analytics?: { path: string };
  /** Test hooks: scale the DBAgent's loop periods; shorten its lease (defaults 15 s, renewed every 5 s). */
  app?: { loopScale?: number; leaseTtlMs?: number; renewMs?: number };
  /**
   * HTTP limits enforced by the node runtime (defaults: 10 s headers, 30 s request, 1 MiB body;
   * connections and in-flight requests: runtime/admission.ts).
   */
  limits?: { headersTimeoutMs?: number; requestTimeoutMs?: number; maxBodyBytes?: number; maxConnections?: number; maxInflight?: number };
}

/** What a node process sends its launcher over IPC once it listens. */
export interface NodeReadyMessage {
  type: 'ready';
  name: string;
  role: RoleName;
  url: string;
  metricsUrl: string;
  pid: number;
}

/**
 * Launcher → node, after every sibling listens: the siblings' real URLs. Nodes bind port 0 and
 * learn each other's URLs this way, so no port is picked in advance (and raced for).
 */
export interface NodeSiblingsMessage {
  type: 'siblings';
  urls: string[];
}

/** Node → launcher: the siblings were taken (error null) or refused. */
export interface NodeSiblingsSetMessage {
  type: 'siblings-set';
  name: string;
  error: string | null;
}

/** Launcher → node: a `slow` fault, added latency on every query of the node's store for a while. */
export interface NodeSlowMessage {
  type: 'slow';
  byMs: number;
  /** `by: 10x`: every request (or query) takes this many times as long; 1 with the ms form. */
  factor?: number;
  forMs: number;
}

/** Node → launcher: the slow fault is set (error: the node has no store). */
export interface NodeSlowSetMessage {
  type: 'slow-set';
  name: string;
  error: string | null;
}

export interface NodeFailedMessage {
  type: 'failed';
  name: string;
  error: string;
  code: string;
}

export interface NodeMetricsApi {
  /** Count an event that is not a request (a DBAgent loop run, a telemetry batch). */
  count(name: string, by?: number): void;
  /** Set a gauge (tunnels open, pending sessions). */
  gauge(name: string, value: number): void;
  /** Record a duration in µs into the node's exact HDR histogram under `op`. */
  observeUs(op: string, valueUs: number): void;
  /** Record one request the node served that did not come through HTTP (a tunnel frame): rate, status and latency, as an HTTP route is. */
  request(route: string, status: number, latencyUs: number): void;
}

export interface RoleContext {
  spec: NodeSpec;
  /** Null for roles without storage (proxy). */
  store: Store | null;
  metrics: NodeMetricsApi;
  log(message: string): void;
}

export interface RoleHandler {
  /** A metrics label for a request: `checkin`, `dashboard`, `proxy:agent`… Bounded cardinality. */
  routeOf(method: string, path: string): string;
  /** Whether the capacity profile applies to this request (false for e.g. CORS preflight). */
  limited?(method: string, path: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse): void | Promise<void>;
  upgrade?(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /**
   * A `slow` fault on a role that slows itself (the analytics node has no control-plane store):
   * `byMs` added, and the work `factor` times as long, for `forMs`.
   */
  slow?(byMs: number, factor: number, forMs: number): void;
  /** Sibling URLs learned after start (relays); throws a StackError for a URL it refuses. */
  setSiblings?(urls: string[]): void;
  /**
   * A role's own front for a strict subset of requests, read from the raw socket before node:http
   * (the proxy's fast path). Used only without TLS and without a capacity profile.
   */
  rawFront?: RawFront;
  close(): Promise<void>;
}

/** See RoleHandler.rawFront. */
export interface RawFront {
  /** Serve an admitted connection; requests outside the subset go to `runtime.handoff`. */
  accept(socket: Socket, runtime: RawFrontRuntime): void;
  /** The node is stopping: close the connections with nothing in flight. */
  closeIdle(): void;
  close(): void;
}

/** What the node runtime gives a raw front. */
export interface RawFrontRuntime {
  /** Count a request in; false: hand it over instead (the node is closing, or at its in-flight bound). */
  begin(): boolean;
  /** The request is answered (or its client left): count and time it. */
  end(route: string, status: number, startNs: bigint): void;
  /** node:http takes the connection from here on, `unread` first. */
  handoff(socket: Socket, unread: Buffer | null): void;
  readonly closing: boolean;
}

export type RoleFactory = (ctx: RoleContext) => Promise<RoleHandler>;

/* ------------------------------------------------------------------------------------------------
 * Storage. Domain operations, not SQL, so that SQLite, PostgreSQL and the remote db node are
 * interchangeable. Every method resolves only after its writes are durable (committed).
 * ---------------------------------------------------------------------------------------------- */

export interface AgentRow {
  id: string;
  hostname: string;
  os: string;
  agentVersion: string;
  client: string;
  lastSeenMs: number;
  online: boolean;
  groupName: string | null;
}

export interface AgentFilter {
  status?: 'online' | 'offline';
  client?: string;
  os?: string;
  limit: number;
}

export interface TelemetrySample {
  agentId: string;
  relay: string;
  atMs: number;
  cpuPct: number;
  memPct: number;
  /** The frame's sequence number: with the agent id, its idempotency key (the analytics store keeps a key once). */
  seq?: number;
  /** When the agent sent the frame (epoch ms, the agent's clock), if it said: alerts' delay counts from here. */
  sentMs?: number;
}

/**
 * One operator session in the audit stream. Written with outcome 'open' (endedMs null) before
 * the command goes down the tunnel, and again with the same id when it ends.
 */
export interface SessionAuditRecord {
  id: string;
  user: string;
  agentId: string;
  protocol: string;
  /** The relay that decided (brokered or refused) the session. */
  relay: string;
  startedMs: number;
  endedMs: number | null;
  /** open, answered, timeout, tunnel-closed, refused-scope, not-connected, agent-busy, relay-full, sibling-unreachable… */
  outcome: string;
  /** The HTTP status the operator got (null while open). */
  status: number | null;
}

/**
 * A DBAgent write's lease term: the store commits it only while `token` is still the lease's term
 * (LeaseFencedError otherwise), checked in the write's own transaction.
 */
/** A stored agent write (store/schema.ts). */
export interface LedgerRow {
  agentId: string;
  seq: number;
  /** Rows stored under this key (1; above 1 would be a duplicate). */
  copies: number;
}

export interface CommandState {
  id: string;
  delivered: boolean;
  hasResult: boolean;
}

export interface LeaseFence {
  name: string;
  token: number;
}

export interface Store {
  readonly kind: DbSpec['kind'];
  /** Create the schema if missing. Idempotent; safe for several nodes at once. */
  init(): Promise<void>;
  /**
   * Upsert the agent row, insert a check-in record, return the agent's pending commands. At least
   * once: a command stays pending until commandResults acknowledges it, never marked delivered by the
   * check-in that carries it (whose response may be lost).
   */
  checkin(req: CheckinRequest, atMs: number): Promise<PendingCommand[]>;
  heartbeat(agentId: string, atMs: number): Promise<void>;
  /**
   * `seq`: the write's idempotency key with the agent id (null: an agent that sends none). A key
   * already stored (a retry, a late commit) changes nothing. The same holds for commandResults and
   * for a check-in's `req.seq`.
   */
  inventory(agentId: string, doc: unknown, atMs: number, seq?: number | null): Promise<void>;
  commandResults(agentId: string, results: CommandResult[], atMs: number, seq?: number | null): Promise<void>;
  /** Queue a command for a known agent; null when the agent id is unknown. */
  createCommand(agentId: string, kind: string, args: Record<string, unknown>, createdBy: string): Promise<string | null>;
  listAgents(filter: AgentFilter, nowMs: number): Promise<AgentRow[]>;
  statsBy(field: 'os' | 'client'): Promise<Array<{ key: string; agents: number; online: number }>>;
  syncAgents(afterId: string | null, limit: number): Promise<{ agents: AgentRow[]; next: string | null }>;
  countCheckins(): Promise<number>;
  /**
   * The ledger's read: stored agent writes (check-ins, inventories, command results) with keys from
   * `fromSeq` up, in (agentId, seq) order after `after`, at most `limit` (LEDGER_PAGE_MAX).
   */
  ledgerKeys(fromSeq: number, after: { agentId: string; seq: number } | null, limit: number): Promise<LedgerRow[]>;
  /** The commands among `ids` the database holds: delivered (acknowledged) or not, with a result or not. */
  commandStates(ids: string[]): Promise<CommandState[]>;
  /** Relay telemetry, written in batches. */
  telemetry(samples: TelemetrySample[]): Promise<void>;
  /** Which relay holds an agent's tunnel (null: none). */
  setPresence(agentId: string, relay: string | null, atMs: number): Promise<void>;
  getPresence(agentId: string): Promise<string | null>;
  /**
   * DBAgent singleton lease: the lease's term (fencing token) when `holder` now holds `name` until
   * atMs + ttlMs, null when another holds it. A renewal keeps the term; a new holder gets the next.
   * Release expires the lease without forgetting its term.
   */
  acquireLease(name: string, holder: string, ttlMs: number, atMs: number): Promise<number | null>;
  releaseLease(name: string, holder: string): Promise<void>;
  /** Who holds a lease and until when (for a clear refusal message). */
  leaseHolder(name: string): Promise<{ holder: string; untilMs: number } | null>;
  /** DBAgent loops; each returns the rows it touched. */
  rebuildGroups(atMs: number, fence: LeaseFence): Promise<number>;
  approvePatches(atMs: number, fence: LeaseFence): Promise<number>;
  detectOffline(offlineAfterMs: number, atMs: number, fence: LeaseFence): Promise<number>;
  queueEmail(atMs: number, fence: LeaseFence): Promise<number>;
  /** Write (or complete, by id) an operator session's audit record. */
  auditSession(record: SessionAuditRecord): Promise<void>;
  /** The groups an agent belongs to: its client and its dynamic group (empty: unknown agent). */
  agentGroups(agentId: string): Promise<string[]>;
  close(): Promise<void>;
}
