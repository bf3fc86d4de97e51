import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { coordinationOf } from '../../src/cli/commands/run.js';
import { readResultFile } from '../../src/run/result-file.js';
import { runScenario } from '../../src/run/run.js';
import { CoordinatorClient, runFingerprint, type CoordinationTimeouts } from '../../src/run/shard-coordinator.js';
import { loadScenario } from '../../src/scenario/load.js';
import { startAgentServer, type TestAgentServer } from '../helpers/agent-server.js';

/**
 * A coordinated run whose follower never comes, or goes away mid-window: the coordinator's run
 * fails in one line naming the shard, within its bounds, and still writes its result. And the
 * coordination flags, each refused in one line where it does not belong.
 */

const SECRET = 'coordinated-run-secret';
const FAST: CoordinationTimeouts = { joinMs: 1500, barrierMs: 1500, resultMs: 1500, unreachableMs: 1500, leadMs: 300 };
let server: TestAgentServer | null = null;
let dir = '';
afterEach(async () => {
  await server?.close();
  server = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

async function scenarioFile(): Promise<string> {
  server = await startAgentServer(SECRET);
  dir = mkdtempSync(join(tmpdir(), 'rmmscale-coordinated-run-'));
  const file = join(dir, 'two.yaml');
  writeFileSync(file, [`name: two`, `stack: { target: ${server.url} }`, `fleet: { agents: 20, secret: ${SECRET}, seed: two, checkin: 20/s }`, 'stages:', '  - { duration: 1s, agents: 20 }', '  - { duration: 1s, agents: 20 }', ''].join('\n'));
  return file;
}

describe('a coordinated run that loses a shard', () => {
  it('a follower that never joins: the run fails in one line naming it, and its result is written', async () => {
    const sc = loadScenario(await scenarioFile());
    const t0 = Date.now();
    const { result, resultFile } = await runScenario({ scenario: { ...sc, shard: { index: 0, count: 2 } }, outDir: join(dir, 'out'), allowRemote: false, coordination: { role: 'coordinator', host: '127.0.0.1', port: 0, timeouts: FAST } });
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(result.error).toMatch(/^shard 1\/2 did not join the coordinator at http:\/\/127\.0\.0\.1:\d+ and get ready within 1\.5 s \(are they running with --coordinator-url and the same secret\?\)$/);
    expect(result.complete).toBe(false);
    expect(existsSync(resultFile)).toBe(true);
    expect(readResultFile(resultFile).mergedFrom?.map((s) => s.index)).toEqual([0, 1]);
  }, 30_000);

  it('a follower that goes away after a window started: the window is not judged, the run fails naming it', async () => {
    const sc = loadScenario(await scenarioFile());
    let url = '';
    const run = runScenario({
      scenario: { ...sc, shard: { index: 0, count: 2 } },
      outDir: join(dir, 'out'),
      allowRemote: false,
      coordination: { role: 'coordinator', host: '127.0.0.1', port: 0, timeouts: FAST },
      onEvent: (e) => {
        if (e.type === 'coordinator-listening') url = e.url;
      },
    });
    while (!url) await new Promise((r) => setTimeout(r, 20));
    // A follower that joins, hears window 0, passes the barrier, and is never heard from again.
    const ghost = new CoordinatorClient(url, { index: 1, count: 2 }, SECRET, runFingerprint(sc, 2), FAST);
    await ghost.join();
    expect(await ghost.next(0)).toMatchObject({ action: 'measure', window: 0 });
    await ghost.start(0);
    const { result } = await run;
    expect(result.error).toBe("shard 1/2 did not post window 0's result within 1.5 s of its end: it disappeared");
    expect(result.complete).toBe(false);
    expect(result.windows).toEqual([]);
  }, 30_000);
});

describe('the coordination flags', () => {
  const two = { index: 0, count: 2 };
  const one = { index: 0, count: 1 };
  it.each([
    [{ coordinator: true }, one, false, '--coordinator: expected a sharded run (--shard i/n with n > 1, or the scenario\'s shard:), got true'],
    [{ coordinatorUrl: 'http://127.0.0.1:7470' }, one, false, '--coordinator-url: expected a sharded run (--shard i/n with n > 1, or the scenario\'s shard:), got "http://127.0.0.1:7470"'],
    [{ coordinator: true, coordinatorUrl: 'http://127.0.0.1:7470' }, two, true, '--coordinator-url: expected nothing on the coordinator itself (--coordinator): the other shards follow it with --coordinator-url, got "http://127.0.0.1:7470"'],
    [{ coordinatorPort: 7471 }, two, false, '--coordinator-port: expected a port for --coordinator (a follower takes the port in --coordinator-url), got 7471'],
    [{ coordinatorHost: '0.0.0.0' }, two, false, '--coordinator-host: expected an address for --coordinator (a follower takes it in --coordinator-url), got "0.0.0.0"'],
    [{}, two, true, '--shard: expected a staged scenario, or a ceiling search with a coordinator: --coordinator on one shard, --coordinator-url URL on the others, got "0/2"'],
    [{ coordinator: true, coordinatorPort: 70000 }, two, true, '--coordinator-port: expected a TCP port, 0–65535 (0: a free one), got 70000'],
    [{ coordinatorUrl: 'http://10.1.2.3:7470' }, two, true, /^--coordinator-url: .*--allow-remote/],
    [{ coordinator: true, startAt: '2026-12-06T01:00:00Z' }, two, true, '--start-at: expected nothing with a coordinator: its barrier starts every window on every shard together, got "2026-12-06T01:00:00Z"'],
  ])('%j on shard %j (search %s) is refused in one line', (flags, shard, ceiling, line) => {
    expect(() => coordinationOf({ scenario: 's.yaml', ...flags }, shard, ceiling)).toThrow(line);
  });

  it('takes a coordinator on loopback by default, and a follower of a loopback URL', () => {
    expect(coordinationOf({ scenario: 's.yaml', coordinator: true }, { index: 0, count: 3 }, true)).toEqual({ role: 'coordinator', host: '127.0.0.1', port: 7470 });
    expect(coordinationOf({ scenario: 's.yaml', coordinatorUrl: 'http://127.0.0.1:7470/' }, { index: 2, count: 3 }, true)).toEqual({ role: 'follower', url: 'http://127.0.0.1:7470' });
    // A staged run needs no coordinator.
    expect(coordinationOf({ scenario: 's.yaml' }, { index: 1, count: 3 }, false)).toBeNull();
  });
});
