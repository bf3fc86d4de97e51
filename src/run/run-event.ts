import type { SwarmEvent } from '../swarm/swarm-event.js';

/**
 * What a run reports as it goes. The runner never prints: src/cli/run-events.ts turns each event
 * into the line a terminal shows.
 */
export type RunEvent = SwarmEvent;
