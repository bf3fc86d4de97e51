import { pathToFileURL } from 'node:url';
import { RmmscaleError } from '../core/errors.js';
import { CapacityLimiter } from './capacity.js';
import { loadRole } from './roles/index.js';
import { NodeMetrics } from './runtime/node-metrics.js';
import { NodeServer } from './runtime/node-server.js';
import { limitStore } from './store/limited.js';
import { delayStore, StoreDelay } from './store/slowed.js';
import { openStore } from './store/index.js';
import type { NodeFailedMessage, NodeReadyMessage, NodeSiblingsMessage, NodeSiblingsSetMessage, NodeSlowMessage, NodeSlowSetMessage, NodeSpec, RoleFactory, Store } from './types.js';

/**
 * Test hook: a role module (absolute path) to run instead of the registry's role, so the runtime
 * can be tested with a tiny role of the test's own. Never set by the launcher or the CLI.
 */
export const TEST_ROLE_MODULE_ENV = 'RMMSCALE_TEST_ROLE_MODULE';

async function roleFactory(spec: NodeSpec): Promise<RoleFactory> {
  const override = process.env[TEST_ROLE_MODULE_ENV];
  if (override) return ((await import(pathToFileURL(override).href)) as { createRole: RoleFactory }).createRole;
  return loadRole(spec.role);
}

function readSpec(): NodeSpec {
  const raw = process.env.RMMSCALE_NODE_SPEC;
  if (!raw) throw new RmmscaleError('ERR_NODE_SPEC', 'RMMSCALE_NODE_SPEC is not set: stack nodes are started by the launcher', 3);
  try {
    return JSON.parse(raw) as NodeSpec;
  } catch {
    // Not echoed: the spec carries the stack secret.
    throw new RmmscaleError('ERR_NODE_SPEC', `RMMSCALE_NODE_SPEC is not valid JSON (${raw.length} characters)`, 3);
  }
}

/** How often a node checks that its launcher is still its parent. */
const PARENT_CHECK_MS = 500;
/**
 * A db node whose launcher died waits this long before it closes, so the other nodes (which
 * notice the same death) can finish their acknowledged writes first: db last, as in stop().
 */
const ORPHAN_DB_DELAY_MS = 1500;

/**
 * A stack node process. The launcher forks it with its NodeSpec in RMMSCALE_NODE_SPEC; it opens
 * its store, starts its role behind the node runtime, and reports `ready` (or `failed`) over IPC.
 * It exits on SIGTERM/SIGINT after closing everything (requests in flight finish first, up to the
 * runtime's grace), and by itself if its launcher disappears: its IPC channel closes, or its
 * parent PID changes (checked every 0.5 s), whichever it notices first.
 */
async function main(): Promise<void> {
  let spec: NodeSpec;
  try {
    spec = readSpec();
  } catch (err) {
    process.stderr.write(`rmmscale node: ${(err as Error).message}\n`);
    process.exit(3);
  }
  let store: Store | null = null;
  let server: NodeServer | null = null;
  let closing = false;
  const shutdown = async (code: number): Promise<void> => {
    if (closing) return;
    closing = true;
    await server?.close().catch(() => undefined);
    await store?.close().catch(() => undefined);
    process.exit(code);
  };
  process.on('SIGTERM', () => void shutdown(0));
  process.on('SIGINT', () => void shutdown(0));
  const parent = process.ppid;
  let orphaned = false;
  const onOrphaned = (): void => {
    if (orphaned) return;
    orphaned = true;
    clearInterval(parentWatch);
    if (spec.role === 'db') setTimeout(() => void shutdown(0), ORPHAN_DB_DELAY_MS);
    else void shutdown(0);
  };
  const parentWatch = setInterval(() => {
    if (process.ppid !== parent) onOrphaned();
  }, PARENT_CHECK_MS);
  parentWatch.unref();
  if (process.send) process.on('disconnect', onOrphaned);
  try {
    if (spec.db) {
      store = await openStore(spec.db, spec.secret);
      await store.init();
    }
    const metrics = new NodeMetrics(spec);
    if (store && spec.dbProfile) {
      metrics.dbLimiter = new CapacityLimiter(spec.dbProfile, { seed: `${spec.name}\0db` });
      store = limitStore(store, metrics.dbLimiter);
    }
    // A `slow` fault's delay sits in front of the capacity model: the query waits, then queues.
    const delay = store ? new StoreDelay() : null;
    if (store && delay) store = delayStore(store, delay);
    const role = await (await roleFactory(spec))({ spec, store, metrics, log: (m) => process.stderr.write(`[${spec.name}] ${m}\n`) });
    server = new NodeServer(spec, role, metrics);
    process.on('message', (m: NodeSiblingsMessage | NodeSlowMessage) => {
      if (m?.type === 'slow') {
        const factor = m.factor ?? 1;
        // A role that slows itself (analytics) takes the fault; else the store's queries are slowed.
        // `by: Nx` also stretches the modelled service times (the node's, and its database's).
        const slowable = !!role.slow || !!delay;
        if (role.slow) role.slow(m.byMs, factor, m.forMs);
        else if (delay) delay.set(m.byMs, m.forMs, factor);
        if (slowable && factor > 1) {
          metrics.limiter?.slowBy(factor, m.forMs);
          metrics.dbLimiter?.slowBy(factor, m.forMs);
        }
        const reply: NodeSlowSetMessage = { type: 'slow-set', name: spec.name, error: slowable ? null : `node ${spec.name} (${spec.role}) has no database to slow` };
        process.send?.(reply);
        return;
      }
      if (m?.type !== 'siblings') return;
      let error: string | null = null;
      try {
        if (!role.setSiblings) throw new RmmscaleError('ERR_NODE_SIBLINGS', `the ${spec.role} role takes no siblings`, 3);
        role.setSiblings(m.urls);
      } catch (err) {
        error = (err as Error)?.message ?? String(err);
      }
      const reply: NodeSiblingsSetMessage = { type: 'siblings-set', name: spec.name, error };
      process.send?.(reply);
    });
    const { url } = await server.listen();
    const ready: NodeReadyMessage = { type: 'ready', name: spec.name, role: spec.role, url, metricsUrl: `${url}/metrics`, pid: process.pid };
    process.send?.(ready);
  } catch (err) {
    // A known refusal (e.g. a second DBAgent refused by the lease) is one line; a bug keeps its stack.
    const known = err instanceof RmmscaleError;
    const message = ((err as Error)?.message ?? String(err)).replace(/\s*\n\s*/g, '; ');
    const msg: NodeFailedMessage = { type: 'failed', name: spec.name, error: message, code: known ? err.code : 'ERR_NODE_START' };
    process.stderr.write(known ? `[${spec.name}] ${message}\n` : `[${spec.name}] ${(err as Error)?.stack ?? message}\n`);
    closing = true;
    await server?.close().catch(() => undefined);
    await store?.close().catch(() => undefined);
    if (process.send && process.connected) process.send(msg, () => process.exit(3));
    else process.exit(3);
  }
}

void main();
