import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { startAgentServer, type TestAgentServer } from './agent-server.js';

/** The agent server's secret: the swarm gets it with --secret (there is no default secret). */
export const SWARM_CLI_SECRET = 'swarm-cli-test-secret';

export interface SwarmCliFixture {
  /** Start this test's agent server (closed after the test). */
  start(opts?: { commandEvery?: number; delayMs?: number }): Promise<TestAgentServer>;
  /** A path in this test's own temporary folder (removed after the test). */
  path(name: string): string;
}

/**
 * For the files that drive the real `rmmscale swarm` binary at a test agent server: a fresh
 * folder per test and a server closed after it, whatever the test's outcome. Call at the top of
 * the file: it registers beforeEach/afterEach hooks.
 */
export function swarmCliFixture(): SwarmCliFixture {
  let server: TestAgentServer | null = null;
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rmmscale-cli-'));
  });
  afterEach(async () => {
    await server?.close();
    server = null;
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    start: async (opts = {}) => (server = await startAgentServer(SWARM_CLI_SECRET, opts)),
    path: (name) => join(dir, name),
  };
}
