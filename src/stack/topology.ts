import { InvalidArgumentError } from '../core/errors.js';
import type { RoleName, WebServes } from './types.js';

/**
 * Named topologies. A topology lists nodes by role and tier; the launcher turns it into NodeSpecs
 * with ports, the secret, storage and profiles.
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

export function namedTopology(name: string): Topology {
  if (name === 'single') return { name, nodes: [{ name: 'single', role: 'single', tier: 'single' }] };
  throw new InvalidArgumentError('TOPOLOGY', name, 'single (split3, splitN and relays are not built yet)');
}
