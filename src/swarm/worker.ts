import { RmmscaleError } from '../core/errors.js';
import { SwarmEngine } from './engine.js';
import type { CoordinatorMessage, WorkerMessage } from './ipc.js';

/**
 * A swarm worker process. The coordinator forks it, sends `prepare` (its plan: which agents, which
 * addresses), then `go` with the shared start instant, and `stop` on Ctrl-C. The worker exits by
 * itself when the coordinator goes away, so a crashed coordinator leaves no orphans.
 */

let engine: SwarmEngine | null = null;
let workerIndex = -1;

function send(m: WorkerMessage): void {
  if (process.connected) process.send?.(m);
}

function fail(err: unknown): void {
  const known = err instanceof RmmscaleError;
  send({
    type: 'error',
    worker: workerIndex,
    message: known ? err.message : ((err as Error)?.stack ?? String(err)),
    code: known ? err.code : 'ERR_WORKER',
  });
  setTimeout(() => process.exit(1), 50);
}

process.on('message', (m: CoordinatorMessage) => {
  try {
    if (m.type === 'prepare') {
      workerIndex = m.plan.workerIndex;
      const e = (engine = new SwarmEngine(m.plan, send));
      e.prepare().then(() => send({ type: 'ready', worker: workerIndex, agents: e.agents.count, pid: process.pid }), fail);
    } else if (m.type === 'go' && engine) {
      const e = engine;
      e.start(m.startAtEpochMs).catch(fail);
      e.done().then(() => setTimeout(() => process.exit(0), 50));
    } else if (m.type === 'disconnect') {
      send({ type: 'disconnected', worker: workerIndex, id: m.id, dropped: engine ? engine.disconnect(m.fraction) : 0 });
    } else if (m.type === 'stop') {
      if (engine) void engine.stop();
      else process.exit(0);
    }
  } catch (err) {
    fail(err);
  }
});

process.on('disconnect', () => process.exit(0));
process.on('SIGINT', () => {
  // The coordinator owns Ctrl-C; it will send `stop`.
});
process.on('uncaughtException', fail);
