import { basename } from 'node:path';
import { InvalidArgumentError, ValidationError } from '../core/errors.js';
import { normalizeProfile, readConfigFile } from './profiles.js';
import { schemaProblems } from './schema-validate.js';
import type { CapacityProfile, RoleName, WebServes } from './types.js';

/**
 * Topologies: which nodes a stack has, by role and tier. Named ones are built here; YAML/JSON
 * files use the same shape (schemas/topology.schema.json) and are validated once, at load, with
 * every problem listed by its path. The launcher turns a topology into NodeSpecs (ports, secret,
 * storage, profiles) and starts the nodes in dependency order (startPhase).
 *
 *   single    one process: web (agent + user paths) + DBAgent + embedded SQLite
 *   splitN    the article's split: a reverse proxy in front of N−1 agent web nodes and one user web
 *             node, one app node (the DBAgent), one db node (owns the database). split3 is the
 *             article's layout; split4 adds a third agent web node.
 *   relaysN   N relays holding agent tunnels (agents pick one by hash and fail over to a sibling),
 *             an app node, a db node and an analytics node (telemetry and alerts, its own store);
 *             `relays` is relays3.
 */
export interface TopologyNode {
  name: string;
  role: RoleName;
  tier: string;
  serves?: WebServes;
  /** Overrides the profile set's profile for this node's tier. */
  profile?: CapacityProfile;
  /** db or single only: the per-query model. */
  dbProfile?: CapacityProfile;
  /** relay only: serve tunnels over TLS. */
  tls?: { certFile: string; keyFile: string };
}

export interface Topology {
  name: string;
  nodes: TopologyNode[];
}

export const TOPOLOGY_NAMES = "single, split2 … split16 (split3 is the article's layout), relays1 … relays16 (relays = relays3), or a .yaml/.json topology file";

const MAX_NODES_NAMED = 16;

/**
 * Start order: the stores first (the db node, the analytics node), then what needs them, then the
 * proxy (it needs backend URLs). Stop order is the reverse, so relays drain into a live analytics node.
 */
export function startPhase(role: RoleName): 0 | 1 | 2 {
  return role === 'db' || role === 'analytics' ? 0 : role === 'proxy' ? 2 : 1;
}

/** The tier a node gets when its file does not name one. */
export function defaultTier(role: RoleName, serves: WebServes | undefined): string {
  if (role === 'web') return serves === 'user' ? 'web-user' : 'web-agent';
  return role;
}

export function namedTopology(name: string): Topology {
  if (name === 'single') return { name, nodes: [{ name: 'single', role: 'single', tier: 'single' }] };
  const split = /^split(\d+)$/.exec(name);
  const webs = split ? Number(split[1]) : NaN;
  if (webs >= 2 && webs <= MAX_NODES_NAMED) {
    const nodes: TopologyNode[] = [
      { name: 'db', role: 'db', tier: 'db' },
      { name: 'app', role: 'app', tier: 'app' },
    ];
    // Agent web nodes are full web servers (the proxy falls back to them for user traffic when the
    // user node is down); only the proxy's routing keeps user traffic off them normally.
    for (let i = 1; i < webs; i++) nodes.push({ name: `web-agent-${i}`, role: 'web', tier: 'web-agent', serves: 'both' });
    nodes.push({ name: 'web-user-1', role: 'web', tier: 'web-user', serves: 'user' });
    nodes.push({ name: 'proxy', role: 'proxy', tier: 'proxy' });
    return { name, nodes };
  }
  const relays = /^relays(\d*)$/.exec(name);
  const count = relays ? (relays[1] === '' ? 3 : Number(relays[1])) : NaN;
  if (count >= 1 && count <= MAX_NODES_NAMED) {
    // The article's three planes: relays (data), db + app (control), analytics (telemetry, alerts).
    const nodes: TopologyNode[] = [
      { name: 'db', role: 'db', tier: 'db' },
      { name: 'analytics', role: 'analytics', tier: 'analytics' },
      { name: 'app', role: 'app', tier: 'app' },
    ];
    for (let i = 1; i <= count; i++) nodes.push({ name: `relay-${i}`, role: 'relay', tier: 'relay' });
    return { name, nodes };
  }
  throw new InvalidArgumentError('TOPOLOGY', name, TOPOLOGY_NAMES);
}

/** What a schema cannot check: unique names, singletons, fields that only fit some roles. */
function semanticProblems(t: Topology, source: string): string[] {
  const out: string[] = [];
  const seen = new Map<string, number>();
  const only = (i: number, field: string, roles: RoleName[], n: TopologyNode): void => {
    if (n[field as keyof TopologyNode] !== undefined && !roles.includes(n.role)) out.push(`${source}: nodes[${i}].${field}: only for role ${roles.join(' or ')}, got role ${JSON.stringify(n.role)}`);
  };
  t.nodes.forEach((n, i) => {
    const first = seen.get(n.name);
    if (first !== undefined) out.push(`${source}: nodes[${i}].name: ${JSON.stringify(n.name)} is already the name of nodes[${first}]`);
    else seen.set(n.name, i);
    only(i, 'serves', ['web'], n);
    only(i, 'dbProfile', ['db', 'single'], n);
    only(i, 'tls', ['relay'], n);
  });
  const singleton = (role: RoleName, why: string): void => {
    const idx = t.nodes.flatMap((n, i) => (n.role === role ? [i] : []));
    for (const i of idx.slice(1)) out.push(`${source}: nodes[${i}].role: at most one ${role} node (${why}), nodes[${idx[0]}] is one already`);
  };
  singleton('db', 'it owns the database');
  singleton('analytics', 'it owns the analytics store');
  // Several app nodes are allowed: the DBAgent lease makes one the leader, the others stand by.
  singleton('proxy', 'one entry point');
  const proxy = t.nodes.findIndex((n) => n.role === 'proxy');
  if (proxy >= 0 && !t.nodes.some((n) => n.role === 'web' && n.tier === 'web-agent')) {
    out.push(`${source}: nodes[${proxy}]: a proxy needs at least one web node in tier web-agent (its agent pool)`);
  }
  if (t.nodes.every((n) => n.role === 'proxy' || n.role === 'db' || n.role === 'analytics')) out.push(`${source}: nodes: no node serves requests (add a single, web or relay node)`);
  return out;
}

/** Validate parsed file data as a topology; throws ValidationError listing every problem. */
export function topologyFromData(data: unknown, source: string): Topology {
  const problems = schemaProblems('topology', data, source);
  if (problems.length) throw new ValidationError(problems);
  const raw = data as { name?: string; nodes: Array<Omit<TopologyNode, 'tier'> & { tier?: string }> };
  const nodes: TopologyNode[] = raw.nodes.map((n, i) => ({
    ...n,
    tier: n.tier ?? defaultTier(n.role, n.serves),
    profile: n.profile ? normalizeProfile(n.profile, `${source}: nodes[${i}].profile`, problems) : undefined,
    dbProfile: n.dbProfile ? normalizeProfile(n.dbProfile, `${source}: nodes[${i}].dbProfile`, problems) : undefined,
  }));
  const t: Topology = { name: raw.name ?? basename(source).replace(/\.(ya?ml|json)$/i, ''), nodes };
  problems.push(...semanticProblems(t, source));
  if (problems.length) throw new ValidationError(problems);
  return t;
}

/** A named topology, or a YAML/JSON topology file (anything ending in .yaml, .yml or .json). */
export function loadTopology(arg: string): Topology {
  if (!/\.(ya?ml|json)$/i.test(arg)) return namedTopology(arg);
  return topologyFromData(readConfigFile('TOPOLOGY', arg, `a readable topology file, or a topology name: ${TOPOLOGY_NAMES}`), arg);
}
