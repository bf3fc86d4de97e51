import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createRole } from '../../src/stack/roles/proxy.js';
import { NodeMetrics } from '../../src/stack/runtime/node-metrics.js';
import { NodeServer } from '../../src/stack/runtime/node-server.js';
import type { NodeSpec, RoleContext } from '../../src/stack/types.js';

const BACKEND = fileURLToPath(new URL('../fixtures/proxy-backend.mjs', import.meta.url));

/** A fixture backend in its own process (test/fixtures/proxy-backend.mjs). */
export interface TestBackend {
  name: string;
  url: string;
  proc: ChildProcess;
  stats(): Promise<{ requests: Record<string, number>; holding: number }>;
  kill(): Promise<void>;
}

/** `plain`: no WebSocket support, so an Upgrade is answered as a plain keep-alive request. */
export async function startBackend(name: string, port = 0, mode: 'ws' | 'plain' = 'ws'): Promise<TestBackend> {
  const proc = fork(BACKEND, [name, String(port), mode], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const ready = await new Promise<number>((resolve, reject) => {
    proc.once('message', (m) => resolve((m as { port: number }).port));
    proc.once('exit', (code) => reject(new Error(`backend ${name} exited (${code}) before it listened`)));
  });
  const url = `http://127.0.0.1:${ready}`;
  return {
    name,
    url,
    proc,
    stats: async () => (await (await fetch(`${url}/__stats`)).json()) as { requests: Record<string, number>; holding: number },
    kill: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** The proxy role behind the real node runtime, in this process, on 127.0.0.1:0. */
export interface TestProxy {
  url: string;
  metrics: NodeMetrics;
  logs: string[];
  close(): Promise<void>;
}

export async function startProxy(agent: TestBackend[], user: TestBackend[], limits?: NodeSpec['limits'], options: Partial<Pick<NonNullable<NodeSpec['proxy']>, 'queuePerBackend' | 'tunnels'>> = {}): Promise<TestProxy> {
  const names = Object.fromEntries([...agent, ...user].map((b) => [b.url, b.name]));
  const spec: NodeSpec = {
    name: 'proxy',
    role: 'proxy',
    tier: 'proxy',
    host: '127.0.0.1',
    port: 0,
    secret: 'proxy-test',
    proxy: { agentPool: agent.map((b) => b.url), userPool: user.map((b) => b.url), names, ...options },
    limits,
  };
  const metrics = new NodeMetrics(spec);
  const logs: string[] = [];
  const ctx: RoleContext = { spec, store: null, metrics, log: (m) => logs.push(m) };
  const server = new NodeServer(spec, await createRole(ctx), metrics);
  const { url } = await server.listen();
  return { url, metrics, logs, close: () => server.close() };
}

/** Wait until `probe` returns true, checking every 20 ms; false at the deadline. */
export async function until(probe: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}
