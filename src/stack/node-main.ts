import { RmmscaleError } from '../core/errors.js';
import { CapacityGate } from './capacity.js';
import { loadRole } from './roles/index.js';
import { NodeMetrics } from './runtime/node-metrics.js';
import { NodeServer } from './runtime/node-server.js';
import { gateStore } from './store/gated.js';
import { openStore } from './store/index.js';
import type { NodeFailedMessage, NodeReadyMessage, NodeSpec, Store } from './types.js';

/**
 * A stack node process. The launcher forks it with its NodeSpec in RMMSCALE_NODE_SPEC; it opens
 * its store, starts its role behind the node runtime, and reports `ready` (or `failed`) over IPC.
 * It exits on SIGTERM/SIGINT after closing everything, and by itself if its launcher disappears.
 */
async function main(): Promise<void> {
  const spec = JSON.parse(process.env.RMMSCALE_NODE_SPEC ?? 'null') as NodeSpec | null;
  if (!spec) throw new Error('RMMSCALE_NODE_SPEC is not set');
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
  process.on('disconnect', () => void shutdown(0));
  try {
    if (spec.db) {
      store = await openStore(spec.db);
      await store.init();
      if (spec.dbProfile) store = gateStore(store, new CapacityGate(spec.dbProfile, { seed: `${spec.name}\0db` }));
    }
    const metrics = new NodeMetrics(spec);
    const role = await (await loadRole(spec.role))({ spec, store, metrics, log: (m) => process.stderr.write(`[${spec.name}] ${m}\n`) });
    server = new NodeServer(spec, role, metrics);
    const { url } = await server.listen();
    const ready: NodeReadyMessage = { type: 'ready', name: spec.name, role: spec.role, url, metricsUrl: `${url}/metrics`, pid: process.pid };
    process.send?.(ready);
  } catch (err) {
    const known = err instanceof RmmscaleError;
    const msg: NodeFailedMessage = { type: 'failed', name: spec.name, error: (err as Error)?.message ?? String(err), code: known ? err.code : 'ERR_NODE_START' };
    process.stderr.write(`[${spec.name}] ${msg.error}\n`);
    process.send?.(msg);
    await store?.close().catch(() => undefined);
    setTimeout(() => process.exit(3), 20);
  }
}

void main();
