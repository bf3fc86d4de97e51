import { InvalidArgumentError } from '../core/errors.js';
import type { RoleName, WebServes } from './types.js';

/**
 * Named topologies. A topology lists nodes by role and tier, in start order (dependencies first);
 * the launcher turns it into NodeSpecs with ports, the secret, storage and profiles.
 *
 *   single   one process: web (agent + user paths) + DBAgent + embedded SQLite
 *   splitN   the article's split: a reverse proxy in front of N−1 agent web nodes and one user web
 *            node, one app node (the DBAgent), one db node (owns the database). split3 is the
 *            article's layout; split4 adds a third agent web node.
 */
export interface TopologyNode {
  name: string;
  role: RoleName;
  tier: string;
  serves?: WebServes;
}

export interface Topology {
  name: string;
  nodes: TopologyNode[];
}

export const TOPOLOGY_NAMES = 'single, split2 … split16 (split3 is the article\'s layout)';

export function namedTopology(name: string): Topology {
  if (name === 'single') return { name, nodes: [{ name: 'single', role: 'single', tier: 'single' }] };
  const m = /^split(\d+)$/.exec(name);
  const webs = m ? Number(m[1]) : NaN;
  if (m && webs >= 2 && webs <= 16) {
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
  throw new InvalidArgumentError('TOPOLOGY', name, TOPOLOGY_NAMES);
}
