import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { NodeFailedMessage, NodeReadyMessage, NodeSpec } from '../../src/stack/types.js';

export const NODE_MAIN = fileURLToPath(new URL('../../dist/src/stack/node-main.js', import.meta.url));
export const ECHO_ROLE = fileURLToPath(new URL('../fixtures/echo-role.mjs', import.meta.url));

export interface ForkedNode {
  proc: ChildProcess;
  /** The first IPC message (ready or failed). */
  first: Promise<NodeReadyMessage | NodeFailedMessage>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

/** Fork dist/src/stack/node-main.js with a spec (and, for runtime tests, the echo role). */
export function forkNode(spec: NodeSpec, opts: { roleModule?: string } = {}): ForkedNode {
  const env: NodeJS.ProcessEnv = { ...process.env, RMMSCALE_NODE_SPEC: JSON.stringify(spec) };
  if (opts.roleModule) env.RMMSCALE_TEST_ROLE_MODULE = opts.roleModule;
  else delete env.RMMSCALE_TEST_ROLE_MODULE;
  const proc = fork(NODE_MAIN, [], { env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  const first = new Promise<NodeReadyMessage | NodeFailedMessage>((resolve, reject) => {
    proc.once('message', (m) => resolve(m as NodeReadyMessage | NodeFailedMessage));
    void exited.then(({ code }) => reject(new Error(`node exited (${code}) before a message: ${err}`)));
  });
  first.catch(() => undefined);
  return { proc, first, exited, stderr: () => err };
}

/** True while a process with this PID exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stop a forked node by PID: SIGTERM, then SIGKILL after 3 s. */
export async function stopNode(n: ForkedNode | null): Promise<void> {
  if (!n || n.proc.exitCode !== null || n.proc.signalCode !== null) return;
  const hard = setTimeout(() => n.proc.kill('SIGKILL'), 3000);
  n.proc.kill('SIGTERM');
  await n.exited;
  clearTimeout(hard);
}
