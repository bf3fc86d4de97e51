import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHaproxy } from './proxy/haproxy.js';
import { Agent as UndiciAgent, request as undiciRequest } from 'undici';
import { StackError } from '../core/errors.js';
import { deriveKey, generateSecret } from '../core/identity.js';
import { runnableModulePath } from '../core/module-path.js';
import { PROFILES, type ProfileSet } from './profiles.js';
import { startPhase, type Topology, type TopologyNode } from './topology.js';
import type { DbSpec, NodeFailedMessage, RoleName, NodeReadyMessage, NodeSiblingsMessage, NodeSiblingsSetMessage, NodeSlowMessage, NodeSlowSetMessage, NodeSpec } from './types.js';

/**
 * Starts a topology: one OS process per node (dist/src/stack/node-main.js), each on its own port
 * with its own /metrics, in dependency order: the db node, then app/web/relay/single nodes (in
 * parallel), then the proxy (it needs the backends' URLs). Waits until every node answers
 * /healthz. stop() ends every process it started, by PID (SIGTERM, then SIGKILL after a grace
 * period), in the reverse order: the entry (proxy) first, then app/web/relay/single, the db node
 * last, each phase after the previous one has exited; also after a node crashed.
 *
 * Nodes run detached, each in its own process group, so the Ctrl-C a terminal sends to its
 * foreground group reaches only the launcher, which then stops them in that order. Nodes exit by
 * themselves if the launcher dies (their IPC channel closes, or their parent changes), so a
 * SIGKILLed launcher leaves no orphans.
 *
 * Without opts.secret the stack generates a random secret (RunningStack.secret).
 */

export const DB_KINDS = ['sqlite', 'postgres'] as const;
export const PROXY_KINDS = ['builtin', 'haproxy'] as const;

export interface StackOptions {
  secret?: string;
  profile?: ProfileSet;
  /** First port; nodes take consecutive ports in topology order. 0/absent: free ports. */
  portBase?: number;
  /** Where SQLite lives; default a temporary folder removed on stop(). */
  dataDir?: string;
  /** sqlite (default: a file owned by the db node, or by the single node) or postgres (dbUrl). */
  db?: (typeof DB_KINDS)[number];
  dbUrl?: string;
  proxy?: (typeof PROXY_KINDS)[number];
  /** Test hook: scale the DBAgent's loop periods. */
  loopScale?: number;
  /** Test hook: the DBAgent lease's TTL and renewal period on every app/single node (default 15 s and 5 s). */
  lease?: { ttlMs: number; renewMs: number };
  /** HTTP limits for every node (header/request timeouts, body size). */
  limits?: NodeSpec['limits'];
  startTimeoutMs?: number;
  /** Grace between SIGTERM and SIGKILL in stop() (default 5 s). */
  stopGraceMs?: number;
}

export interface NodeInfo {
  name: string;
  role: string;
  tier: string;
  url: string;
  metricsUrl: string;
  /** The node's process now (a restart changes it). */
  pid: number;
}

/** Start a stopped node again on its port with its spec; the new process and its pid. */
type Relaunch = (name: string) => Promise<{ proc: ChildProcess; pid: number }>;

/** One line each with --json; every event carries the entry URL and the nodes it concerns. */
export type StackEvent =
  | { event: 'ready'; entry: string; nodes: NodeInfo[]; stateFile?: string }
  | { event: 'node-exit'; entry: string; nodes: NodeInfo[]; node: string; pid: number; code: number | null; signal: string | null }
  | { event: 'stopped'; entry: string; nodes: NodeInfo[] };

const NODE_MAIN = runnableModulePath(import.meta.url, './node-main.js');
const STOP_GRACE_MS = 5000;

export class RunningStack extends EventEmitter {
  readonly entryUrl: string;
  readonly nodes: NodeInfo[];
  /** The stack's secret: agent and user tokens and every control-plane key derive from it. */
  readonly secret: string;
  /** True when the stack generated its secret (no opts.secret). */
  readonly secretGenerated: boolean;
  /**
   * Where the stack's data is, as its web nodes reach it: the db node (authenticated with the db key
   * derived from the secret), or the single node's own SQLite file. The run's ledger reads it.
   */
  storage: DbSpec | null = null;
  /** The analytics node (telemetry and alerts, its own store), when the topology has one: the run's ledger and alert delay read it. */
  analyticsUrl: string | null = null;
  private readonly procs: Map<string, ChildProcess>;
  private readonly cleanup: () => Promise<void>;
  private readonly graceMs: number;
  private readonly relaunch: Relaunch | null;
  private stopping: Promise<void> | null = null;

  constructor(
    entryUrl: string,
    nodes: NodeInfo[],
    procs: Map<string, ChildProcess>,
    cleanup: () => Promise<void>,
    graceMs: number,
    secret: { value: string; generated: boolean },
    relaunch: Relaunch | null = null,
  ) {
    super();
    this.entryUrl = entryUrl;
    this.nodes = nodes;
    this.secret = secret.value;
    this.secretGenerated = secret.generated;
    this.procs = procs;
    this.cleanup = cleanup;
    this.graceMs = graceMs;
    this.relaunch = relaunch;
    for (const [name, p] of procs) this.watch(name, p);
  }

  /** A node process that exits while the stack is not stopping is reported as `node-exit`. */
  private watch(name: string, p: ChildProcess): void {
    p.once('exit', (code, signal) => {
      if (this.stopping) return;
      const info = this.nodes.filter((n) => n.name === name);
      this.emit('event', { event: 'node-exit', entry: this.entryUrl, nodes: info, node: name, pid: p.pid ?? -1, code, signal } satisfies StackEvent);
    });
  }

  /** Whether a node's process is running (a stopped, SIGSTOPped, process still counts). */
  alive(name: string): boolean {
    const p = this.procs.get(name);
    return !!p && p.exitCode === null && p.signalCode === null;
  }

  /**
   * Stop a node (SIGTERM, then SIGKILL after the grace period; nothing when it is already dead) and
   * start it again: the same role, the same port, the same data. Resolves when it answers /healthz
   * (and, for a relay, has taken its siblings again).
   */
  async restart(name: string): Promise<void> {
    const old = this.procs.get(name);
    if (!old) throw new StackError(`no node named ${name}; nodes: ${[...this.procs.keys()].join(', ')}`);
    if (!this.relaunch) throw new StackError(`node ${name} cannot be restarted by this stack`);
    if (this.stopping) throw new StackError(`the stack is stopping; node ${name} is not restarted`);
    if (this.alive(name)) {
      old.kill('SIGCONT'); // a paused node must be able to take its SIGTERM
      await stopAll([old], this.graceMs);
    }
    const { proc, pid } = await this.relaunch(name);
    const info = this.nodes.find((n) => n.name === name);
    if (info) info.pid = pid;
    this.watch(name, proc);
  }

  /**
   * A scenario's `slow` fault for `forMs`: `byMs` added to every query of a node's database, or
   * (factor > 1) every request and query of the node `factor` times as long; the analytics node
   * slows its own ingest.
   */
  slow(name: string, byMs: number, forMs: number, factor = 1, timeoutMs = 5000): Promise<void> {
    const p = this.procs.get(name);
    if (!p) return Promise.reject(new StackError(`no node named ${name}; nodes: ${[...this.procs.keys()].join(', ')}`));
    if (!p.connected) return Promise.reject(new StackError(`node ${name} is not running`));
    return new Promise((resolve, reject) => {
      const done = (err: StackError | null): void => {
        clearTimeout(timer);
        p.off('message', onMessage);
        if (err) reject(err);
        else resolve();
      };
      const onMessage = (m: NodeSlowSetMessage): void => {
        if (m?.type === 'slow-set') done(m.error === null ? null : new StackError(m.error));
      };
      const timer = setTimeout(() => done(new StackError(`node ${name} did not take the slow fault within ${timeoutMs} ms`)), timeoutMs);
      p.on('message', onMessage);
      p.send({ type: 'slow', byMs, forMs, factor } satisfies NodeSlowMessage);
    });
  }

  /** PIDs of every process this stack started (node processes and an external proxy). */
  get pids(): number[] {
    return [...this.procs.values()].map((p) => p.pid ?? -1).filter((pid) => pid > 0);
  }

  /** Send a signal to one node (tests: SIGKILL a web node under load). */
  kill(name: string, signal: NodeJS.Signals): void {
    const p = this.procs.get(name);
    if (!p) throw new StackError(`no node named ${name}; nodes: ${[...this.procs.keys()].join(', ')}`);
    p.kill(signal);
  }

  /** The key `/admin/*` asks for (`authorization: Bearer <key>`). */
  get adminKey(): string {
    return deriveKey(this.secret, 'admin');
  }

  stop(): Promise<void> {
    // Reverse start order: the entry first (no new work comes in), then the nodes doing the work,
    // the database last, so the nodes writing to it can finish acknowledged work on shutdown.
    const roleOf = (name: string): RoleName | undefined => this.nodes.find((n) => n.name === name)?.role as RoleName | undefined;
    const phase = (k: 0 | 1 | 2): ChildProcess[] => [...this.procs].filter(([name]) => startPhase(roleOf(name) ?? 'web') === k).map(([, p]) => p);
    this.stopping ??= stopAll(phase(2), this.graceMs)
      .then(() => stopAll(phase(1), this.graceMs))
      .then(() => stopAll(phase(0), this.graceMs))
      .then(() => this.cleanup())
      .then(() => {
        this.emit('event', { event: 'stopped', entry: this.entryUrl, nodes: this.nodes } satisfies StackEvent);
      });
    return this.stopping;
  }
}

/** SIGTERM every live process, SIGKILL what is left after the grace period; resolves when all exited. */
export async function stopAll(procs: ChildProcess[], graceMs = STOP_GRACE_MS): Promise<void> {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          const hard = setTimeout(() => p.kill('SIGKILL'), graceMs);
          p.once('exit', () => {
            clearTimeout(hard);
            resolve();
          });
          p.kill('SIGTERM');
        }),
    ),
  );
}

function startNode(spec: NodeSpec, timeoutMs: number, started: Map<string, ChildProcess>): Promise<NodeReadyMessage> {
  // Detached: its own process group, out of reach of the terminal's Ctrl-C (the launcher stops
  // it, in order). The spec (with the secret) goes by environment, which only this user can read.
  const proc = fork(NODE_MAIN, [], {
    env: { ...process.env, RMMSCALE_NODE_SPEC: JSON.stringify(spec) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    detached: true,
  });
  started.set(spec.name, proc); // tracked at once, so a failed start still stops it
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new StackError(`node ${spec.name} did not become ready within ${timeoutMs} ms`));
    }, timeoutMs);
    proc.once('message', (m: NodeReadyMessage | NodeFailedMessage) => {
      clearTimeout(timer);
      if (m.type === 'ready') resolve(m);
      else reject(new StackError(`node ${spec.name} failed to start: ${m.error}`));
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new StackError(`node ${spec.name} exited (${signal ?? `code ${code}`}) before it was ready`));
    });
  });
}

/** Tell a started node its siblings' URLs and wait until it has taken them. */
function sendSiblings(name: string, proc: ChildProcess, urls: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err: StackError | null): void => {
      clearTimeout(timer);
      proc.off('message', onMessage);
      proc.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    const onMessage = (m: NodeSiblingsSetMessage): void => {
      if (m?.type !== 'siblings-set') return;
      done(m.error === null ? null : new StackError(`node ${name} refused its siblings: ${m.error}`));
    };
    const onExit = (code: number | null, signal: string | null): void => done(new StackError(`node ${name} exited (${signal ?? `code ${code}`}) before it took its siblings`));
    const timer = setTimeout(() => done(new StackError(`node ${name} did not take its siblings within ${timeoutMs} ms`)), timeoutMs);
    proc.on('message', onMessage);
    proc.once('exit', onExit);
    proc.send({ type: 'siblings', urls } satisfies NodeSiblingsMessage);
  });
}

async function waitHealthy(url: string, timeoutMs: number, caFile?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // A TLS relay is checked against its own certificate (the topology's tls.certFile).
  const dispatcher = url.startsWith('https:') ? new UndiciAgent({ connect: { ca: caFile ? readFileSync(caFile) : undefined } }) : undefined;
  let lastError = '';
  try {
    for (;;) {
      try {
        const r = await undiciRequest(`${url}/healthz`, { dispatcher, headersTimeout: 2000, bodyTimeout: 2000 });
        await r.body.dump();
        if (r.statusCode === 200) return;
      } catch (err) {
        lastError = (err as { code?: string }).code ?? '';
      }
      // A certificate that does not verify (e.g. one that does not name 127.0.0.1) is named.
      if (/CERT|SELF_SIGNED|ALTNAME|UNABLE_TO/.test(lastError)) throw new StackError(`${url}: its TLS certificate does not verify against its tls.certFile (${lastError}); it must name 127.0.0.1 (subjectAltName IP:127.0.0.1)`);
      if (Date.now() > deadline) throw new StackError(`${url}/healthz did not answer within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await dispatcher?.close();
  }
}

/** The proxy's pools: web nodes by tier, named for X-Served-By. */
export function proxyPools(started: NodeInfo[]): NonNullable<NodeSpec['proxy']> {
  const webs = started.filter((n) => n.role === 'web');
  return {
    agentPool: webs.filter((n) => n.tier === 'web-agent').map((n) => n.url),
    userPool: webs.filter((n) => n.tier === 'web-user').map((n) => n.url),
    names: Object.fromEntries(webs.map((n) => [n.url, n.name])),
  };
}

/** Where a node's storage lives: the db node owns it; the others reach the db node over HTTP. */
function storageFor(n: TopologyNode, dbNodeUrl: string | null, primary: DbSpec): DbSpec | undefined {
  if (n.role === 'proxy') return undefined;
  if (n.role === 'db' || dbNodeUrl === null) return primary;
  return { kind: 'remote', url: dbNodeUrl };
}

export async function startStack(topology: Topology, opts: StackOptions = {}): Promise<RunningStack> {
  const secretGenerated = opts.secret === undefined;
  const secret = opts.secret ?? generateSecret();
  const set = opts.profile ?? PROFILES.none;
  const timeoutMs = opts.startTimeoutMs ?? 30_000;
  const usePostgres = opts.db === 'postgres';
  if (usePostgres && !opts.dbUrl) throw new StackError('--db postgres needs --db-url URL (or DATABASE_URL)');
  // The data folder: the SQLite file, the relays' audit spools (with PostgreSQL, only the spools)
  // and the analytics node's own SQLite file.
  const tempDir = opts.dataDir ? null : mkdtempSync(join(tmpdir(), `rmmscale-${topology.name}-`));
  const dataDir = opts.dataDir ?? tempDir ?? '';
  const primary: DbSpec = usePostgres ? { kind: 'postgres', url: opts.dbUrl! } : { kind: 'sqlite', path: join(dataDir, 'rmmscale.sqlite') };
  const procs = new Map<string, ChildProcess>();
  const extraStops: Array<() => Promise<void>> = [];
  const cleanup = async (): Promise<void> => {
    for (const s of extraStops.splice(0)) await s().catch(() => undefined);
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  };
  const byName = new Map<string, NodeInfo>();
  const hasDbNode = topology.nodes.some((n) => n.role === 'db');
  // Ports: consecutive from --port-base in topology order; otherwise each node binds port 0 and
  // reports the port it got. Relays learn their siblings' URLs over IPC once all of them listen,
  // so no port is picked ahead of time (a port picked ahead can be taken before the node binds it).
  const ports = new Map<string, number>();
  for (const [i, n] of topology.nodes.entries()) ports.set(n.name, opts.portBase ? opts.portBase + i : 0);

  // Relays verify their TLS siblings against the siblings' own certificates.
  const siblingCaFiles = [...new Set(topology.nodes.flatMap((n) => (n.role === 'relay' && n.tls ? [n.tls.certFile] : [])))];

  const specFor = (n: TopologyNode): NodeSpec => {
    const dbUrl = hasDbNode ? (byName.get(topology.nodes.find((x) => x.role === 'db')!.name)?.url ?? null) : null;
    const analyticsNode = topology.nodes.find((x) => x.role === 'analytics');
    const analyticsUrl = analyticsNode ? byName.get(analyticsNode.name)?.url : undefined;
    // The database's model lives in one process: the db node, or else the single node.
    const ownsDb = n.role === 'db' || (!hasDbNode && n.role === 'single');
    return {
      name: n.name,
      role: n.role,
      tier: n.tier,
      host: '127.0.0.1',
      port: ports.get(n.name) ?? 0,
      secret,
      // The analytics node has a store of its own (spec.analytics), not the control plane's.
      db: n.role === 'analytics' ? undefined : storageFor(n, dbUrl, primary),
      analytics: n.role === 'analytics' ? { path: join(dataDir, 'analytics.sqlite') } : undefined,
      profile: n.profile ?? set.tiers[n.tier],
      // The database's per-query model applies where the database lives.
      dbProfile: ownsDb ? (n.dbProfile ?? set.db) : undefined,
      web: n.role === 'web' ? { serves: n.serves ?? 'both' } : undefined,
      app:
        (opts.loopScale || opts.lease) && (n.role === 'app' || n.role === 'single')
          ? { loopScale: opts.loopScale, leaseTtlMs: opts.lease?.ttlMs, renewMs: opts.lease?.renewMs }
          : undefined,
      proxy: n.role === 'proxy' ? proxyPools([...byName.values()]) : undefined,
      relay: n.role === 'relay' ? { siblings: [], tls: n.tls, siblingCaFiles: siblingCaFiles.length ? siblingCaFiles : undefined, auditSpoolFile: join(dataDir, `${n.name}-audit.spool`), telemetrySpoolDir: join(dataDir, `${n.name}-telemetry`), analyticsUrl } : undefined,
      limits: opts.limits,
    };
  };

  const launch = async (n: TopologyNode): Promise<void> => {
    const ready = await startNode(specFor(n), timeoutMs, procs);
    await waitHealthy(ready.url, timeoutMs, n.tls?.certFile);
    byName.set(n.name, { name: n.name, role: n.role, tier: n.tier, url: ready.url, metricsUrl: ready.metricsUrl, pid: ready.pid });
  };

  try {
    for (const phase of [0, 1] as const) {
      const batch = topology.nodes.filter((n) => startPhase(n.role) === phase);
      // The first app node listed leads the DBAgent: the others start once it is up (and holds the
      // lease), so they stand by, and a scenario's `kill: app` hits the leader, not a standby.
      const firstApp = batch.find((n) => n.role === 'app');
      let firstAppUp: Promise<void> | null = null;
      const results = await Promise.allSettled(
        batch.map((n) => {
          if (n === firstApp) return (firstAppUp = launch(n));
          return n.role === 'app' && firstAppUp ? firstAppUp.then(() => launch(n)) : launch(n);
        }),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
    const relays = topology.nodes.filter((n) => n.role === 'relay').map((n) => byName.get(n.name)!);
    if (relays.length > 1) {
      await Promise.all(relays.map((r) => sendSiblings(r.name, procs.get(r.name)!, relays.filter((x) => x !== r).map((x) => x.url), timeoutMs)));
    }
    for (const n of topology.nodes.filter((x) => startPhase(x.role) === 2)) {
      if (opts.proxy === 'haproxy') byName.set(n.name, await startExternalProxy(n, [...byName.values()], ports.get(n.name) ?? 0, procs, extraStops, timeoutMs));
      else await launch(n);
    }
  } catch (err) {
    await stopAll([...procs.values()], opts.stopGraceMs);
    await cleanup();
    throw err;
  }
  const nodes = topology.nodes.map((n) => byName.get(n.name)!);
  const entry = nodes.find((n) => n.role === 'proxy') ?? nodes.find((n) => n.role === 'single' || n.role === 'web' || n.role === 'relay') ?? nodes[0];
  // A restart: the node's spec again, on the port it has now; a relay takes its siblings again.
  const relaunch: Relaunch = async (name) => {
    const n = topology.nodes.find((x) => x.name === name);
    const info = byName.get(name);
    if (!n || !info) throw new StackError(`no node named ${name}`);
    if (n.role === 'proxy' && opts.proxy === 'haproxy') throw new StackError(`node ${name} is HAProxy, which rmmscale does not restart`);
    const ready = await startNode({ ...specFor(n), port: Number(new URL(info.url).port) }, timeoutMs, procs);
    await waitHealthy(ready.url, timeoutMs);
    const proc = procs.get(name)!;
    if (n.role === 'relay') {
      const others = topology.nodes.filter((x) => x.role === 'relay' && x.name !== name).map((x) => byName.get(x.name)!.url);
      if (others.length > 0) await sendSiblings(name, proc, others, timeoutMs);
    }
    return { proc, pid: ready.pid };
  };
  const stack = new RunningStack(entry.url, nodes, procs, cleanup, opts.stopGraceMs ?? STOP_GRACE_MS, { value: secret, generated: secretGenerated }, relaunch);
  const dbNode = nodes.find((n) => n.role === 'db');
  stack.storage = dbNode ? { kind: 'remote', url: dbNode.url } : primary;
  stack.analyticsUrl = nodes.find((n) => n.role === 'analytics')?.url ?? null;
  return stack;
}

/** --proxy haproxy: render haproxy.cfg for the started web nodes and run the system's haproxy. */
async function startExternalProxy(
  n: TopologyNode,
  started: NodeInfo[],
  port: number,
  procs: Map<string, ChildProcess>,
  extraStops: Array<() => Promise<void>>,
  timeoutMs: number,
): Promise<NodeInfo> {
  const h = await startHaproxy({ ...proxyPools(started), host: '127.0.0.1', port, readyTimeoutMs: timeoutMs });
  procs.set(n.name, h.child);
  extraStops.push(h.stop);
  return { name: n.name, role: n.role, tier: n.tier, url: h.url, metricsUrl: h.metricsUrl, pid: h.pid };
}
