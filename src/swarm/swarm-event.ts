/**
 * What a running swarm reports besides its progress. The coordinator never prints: a caller that
 * wants these on a terminal formats them (src/cli/run-events.ts).
 */
export type SwarmEvent = { type: 'worker-error'; worker: number; message: string; code: string };
