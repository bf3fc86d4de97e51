import type { RunEvent } from '../run/run-event.js';
import type { SwarmEvent } from '../swarm/swarm-event.js';

/** The line (no newline) a terminal shows for each thing a run or a swarm reports. */

export function formatSwarmEvent(e: SwarmEvent): string {
  return `rmmscale: worker ${e.worker}: ${e.message}`;
}

export function formatRunEvent(e: RunEvent): string {
  switch (e.type) {
    case 'worker-error':
      return formatSwarmEvent(e);
  }
}

/** A worker's error straight to stderr, as the swarm has always shown it; every other event is left to the caller. */
export function printWorkerErrors(e: RunEvent): void {
  if (e.type === 'worker-error') process.stderr.write(`${formatSwarmEvent(e)}\n`);
}
