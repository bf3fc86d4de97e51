import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StackError } from '../core/errors.js';
import { DEFAULT_SECRET } from '../core/identity.js';
import { runnableModulePath } from '../core/module-path.js';
import type { ProfileSet } from './profiles.js';
import { PROFILES } from './profiles.js';
import type { Topology } from './topology.js';
import type { NodeFailedMessage, NodeReadyMessage, NodeSpec } from './types.js';

/**
 * Starts a topology: one OS process per node, in dependency order, each on its own port with its
 * own /metrics. Waits until every node answers /healthz. stop() ends every process it started, by
 * PID (SIGTERM, then SIGKILL after a grace period), including after a node crashed; nodes also
 * exit by themselves if the launcher dies (their IPC channel closes).
 */

export interface StackOptions {
  secret?: string;
  profile?: ProfileSet;
  /** First port; nodes take consecutive ports. 0 (default): free ports. */
  portBase?: number;
  /** Where SQLite lives; default a temporary folder removed on stop(). */
  dataDir?: string;
  /** Test hook: scale the DBAgent's loop periods. */
  loopScale?: number;
  /** HTTP limits for every node (header/request timeouts, body size). */
  limits?: NodeSpec['limits'];
  startTimeoutMs?: number;
}

export interface NodeInfo {
  name: string;
  role: string;
  tier: string;
  url: string;
  metricsUrl: string;
  pid: number;
}

export type StackEvent =
  | { event: 'ready'; entry: string; nodes: NodeInfo[] }
  | { event: 'node-exit'; node: string; pid: number; code: number | null; signal: string | null }
  | { event: 'stopped'; nodes: number };

const NODE_MAIN = runnableModulePath(import.meta.url, './node-main.js');
const STOP_GRACE_MS = 5000;

export class RunningStack extends EventEmitter {
  readonly entryUrl: string;
  readonly nodes: NodeInfo[];
  private readonly procs: Map<string, ChildProcess>;
  private readonly tempDir: string | null;
  private stopping: Promise<void> | null = null;

  constructor(entryUrl: string, nodes: NodeInfo[], procs: Map<string, ChildProcess>, tempDir: string | null) {
    super();
    this.entryUrl = entryUrl;
    this.nodes = nodes;
    this.procs = procs;
    this.tempDir = tempDir;
    for (const [name, p] of procs) {
      p.once('exit', (code, signal) => {
        if (!this.stopping) this.emit('event', { event: 'node-exit', node: name, pid: p.pid ?? -1, code, signal } satisfies StackEvent);
      });
    }
  }

  /** Send a signal to one node (tests: SIGKILL a web node under load). */
  kill(name: string, signal: NodeJS.Signals): void {
    const p = this.procs.get(name);
    if (!p) throw new StackError(`no node named ${name}`);
    p.kill(signal);
  }

  stop(): Promise<void> {
    this.stopping ??= stopAll([...this.procs.values()]).then(() => {
      if (this.tempDir) rmSync(this.tempDir, { recursive: true, force: true });
      this.emit('event', { event: 'stopped', nodes: this.procs.size } satisfies StackEvent);
    });
    return this.stopping;
  }
}

async function stopAll(procs: ChildProcess[]): Promise<void> {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          const hard = setTimeout(() => p.kill('SIGKILL'), STOP_GRACE_MS);
          p.once('exit', () => {
            clearTimeout(hard);
            resolve();
          });
          p.kill('SIGTERM');
        }),
    ),
  );
}

function startNode(spec: NodeSpec, timeoutMs: number): Promise<{ proc: ChildProcess; ready: NodeReadyMessage }> {
  const proc = fork(NODE_MAIN, [], {
    env: { ...process.env, RMMSCALE_NODE_SPEC: JSON.stringify(spec) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new StackError(`node ${spec.name} did not become ready within ${timeoutMs} ms`));
    }, timeoutMs);
    proc.on('message', (m: NodeReadyMessage | NodeFailedMessage) => {
      clearTimeout(timer);
      if (m.type === 'ready') resolve({ proc, ready: m });
      else reject(new StackError(`node ${spec.name} failed to start: ${m.error}`));
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new StackError(`node ${spec.name} exited with code ${code} before it was ready`));
    });
  });
}

async function waitHealthy(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new StackError(`${url}/healthz did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The proxy's pools: web nodes by tier, named for X-Served-By. */
function proxyPools(started: NodeInfo[]): NonNullable<NodeSpec['proxy']> {
  const webs = started.filter((n) => n.role === 'web');
  return {
    agentPool: webs.filter((n) => n.tier === 'web-agent').map((n) => n.url),
    userPool: webs.filter((n) => n.tier === 'web-user').map((n) => n.url),
    names: Object.fromEntries(webs.map((n) => [n.url, n.name])),
  };
}

export async function startStack(topology: Topology, opts: StackOptions = {}): Promise<RunningStack> {
  const secret = opts.secret ?? DEFAULT_SECRET;
  const profile = opts.profile ?? PROFILES.none;
  const tempDir = opts.dataDir ? null : mkdtempSync(join(tmpdir(), `rmmscale-${topology.name}-`));
  const dataDir = opts.dataDir ?? tempDir!;
  const timeoutMs = opts.startTimeoutMs ?? 30_000;
  const procs = new Map<string, ChildProcess>();
  const nodes: NodeInfo[] = [];
  let port = opts.portBase ?? 0;
  const sqlite = { kind: 'sqlite', path: join(dataDir, 'rmmscale.sqlite') } as const;
  try {
    for (const n of topology.nodes) {
      // Storage: the db node owns the database; with a db node the others reach it over HTTP.
      const dbNode = nodes.find((x) => x.role === 'db');
      const db: NodeSpec['db'] = n.role === 'proxy' ? undefined : n.role === 'db' || !dbNode ? sqlite : { kind: 'remote', url: dbNode.url };
      const spec: NodeSpec = {
        name: n.name,
        role: n.role,
        tier: n.tier,
        host: '127.0.0.1',
        port: opts.portBase ? port++ : 0,
        secret,
        db,
        profile: profile.tiers[n.tier],
        // The database's per-query model applies where the database lives.
        dbProfile: n.role === 'db' || (n.role === 'single' && !dbNode) ? profile.db : undefined,
        web: n.serves ? { serves: n.serves } : undefined,
        app: opts.loopScale ? { loopScale: opts.loopScale } : undefined,
        proxy: n.role === 'proxy' ? proxyPools(nodes) : undefined,
        limits: opts.limits,
      };
      const { proc, ready } = await startNode(spec, timeoutMs);
      procs.set(n.name, proc);
      await waitHealthy(ready.url, timeoutMs);
      nodes.push({ name: n.name, role: n.role, tier: n.tier, url: ready.url, metricsUrl: ready.metricsUrl, pid: ready.pid });
    }
  } catch (err) {
    await stopAll([...procs.values()]);
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    throw err;
  }
  const entry = nodes.find((n) => n.role === 'proxy') ?? nodes.find((n) => n.role === 'single' || n.role === 'web') ?? nodes[0];
  return new RunningStack(entry.url, nodes, procs, tempDir);
}
