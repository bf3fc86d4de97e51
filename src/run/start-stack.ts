import { checkTarget } from '../core/loopback.js';
import { AGENT_ROUTES } from '../core/protocol.js';
import { startStack } from '../stack/launcher.js';
import { resolveProfileSet } from '../stack/profiles.js';
import { loadTopology } from '../stack/topology.js';
import { NodeCollector, type CollectedNode, type ScrapeSchedule } from './collector.js';
import type { RunContext } from './run-context.js';

/**
 * The run's first phase: the scenario's stack started and healthy, every node scraped each second
 * from now on; or, for an external target, only where to send. Fills in `ctx` as it goes, so that
 * a stack that started is stopped even if a later step here throws.
 */
export async function startRunStack(ctx: RunContext, scrapeSchedule: ScrapeSchedule | undefined): Promise<void> {
  const sc = ctx.sc;
  if (sc.stack.target) {
    ctx.entryUrl = sc.stack.target;
    ctx.wsTargets = sc.stack.target.split(',').map((t) => t.trim());
    startExternalCollector(ctx, scrapeSchedule);
    return;
  }
  const topology = loadTopology(sc.stack.topology ?? 'single');
  const profileSet = resolveProfileSet(sc.stack.profile);
  ctx.emit({ type: 'stack-starting', topology: topology.name, nodes: topology.nodes.length, profile: profileSet.name, proxy: sc.stack.proxy, db: sc.stack.db });
  const dbUrl = sc.stack.db === 'postgres' ? (sc.stack.dbUrl ?? process.env.DATABASE_URL) : undefined;
  const stack = await startStack(topology, { secret: ctx.secret, profile: profileSet, proxy: sc.stack.proxy, db: sc.stack.db, dbUrl, portBase: sc.stack.portBase ?? undefined });
  ctx.stack = stack;
  for (const n of topology.nodes) ctx.profileOf.set(n.name, n.profile ?? profileSet.tiers[n.tier]);
  ctx.entryUrl = stack.entryUrl;
  // Agents open their tunnels on each relay's tunnel path, ws:// or wss:// as the relay serves.
  ctx.wsTargets = stack.nodes.filter((n) => n.role === 'relay').map((n) => `${n.url.replace(/^http/, 'ws')}${AGENT_ROUTES.tunnel}`);
  // A node a fault stopped is part of the scenario. One that died by itself makes every later
  // window a measurement of a different stack: the run ends there, incomplete, claiming no ceiling.
  stack.on('event', (e: { event: string; node?: string; signal?: string | null; code?: number | null }) => {
    if (e.event !== 'node-exit' || !e.node) return;
    const how = e.signal ?? `code ${e.code}`;
    if (ctx.faults?.expectsExit(e.node)) return;
    ctx.fail(`node ${e.node} exited during the run (${how}) and no fault named it; nothing measured after that is claimed`);
  });
  const collected: CollectedNode[] = stack.nodes.map((n) => ({ name: n.name, role: n.role, tier: n.tier, url: n.url, metricsUrl: n.metricsUrl }));
  ctx.collector = new NodeCollector(collected, ctx.runStartMs, stack.adminKey);
  ctx.collector.start(scrapeSchedule);
  ctx.emit({ type: 'stack-healthy', nodes: stack.nodes.map((n) => ({ name: n.name, url: n.url, metricsUrl: n.metricsUrl, pid: n.pid })) });
}

/**
 * An external stack: nothing to start; its listed nodes (`stack.nodes`) scraped every second at
 * their /metrics, each read through its mapping. Off loopback only with --allow-remote (the CLI
 * checks first; this holds for any caller).
 */
function startExternalCollector(ctx: RunContext, scrapeSchedule: ScrapeSchedule | undefined): void {
  const nodes = ctx.sc.stack.nodes;
  if (nodes.length === 0) return;
  nodes.forEach((n, i) => checkTarget(`stack.nodes[${i}].metrics`, n.metricsUrl, ['http:', 'https:'], ctx.allowRemote));
  const collected: CollectedNode[] = nodes.map((n) => ({ name: n.name, role: n.role, tier: n.tier, url: n.metricsUrl, metricsUrl: n.metricsUrl, mapped: { signals: n.signals, mapping: n.mapping } }));
  ctx.collector = new NodeCollector(collected, ctx.runStartMs);
  ctx.collector.start(scrapeSchedule);
}
