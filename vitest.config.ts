import { defineConfig } from 'vitest/config';

/**
 * Two groups. Most files run in parallel, three at a time on 2 cores: integration tests start real
 * servers and child processes and spend much of their time waiting on them (a run with two at a
 * time kept the CPU about 40% busy), so a third file in flight shortens the group by about a third. The files that measure something against a model or a
 * verdict (the generator-health verdict, the CLI's exit on its verdict, a protocol scenario's run
 * judged against its thresholds, and the end-to-end ceiling
 * and fault runs in test/e2e)
 * run afterwards and one at a time: a latency or a ceiling measured while other tests load the
 * host is a measurement of the host (and the run would rightly call itself untrustworthy). The
 * 20k-agent acceptance runs with the parallel group: it counts check-ins (100/s for 60 s, mostly
 * idle time) and asserts no latency, so it overlaps the other files instead of adding a minute.
 */
const shared = { testTimeout: 60_000, hookTimeout: 60_000, pool: 'forks' as const };
const MEASURED = ['test/e2e/**/*.test.ts', 'test/swarm/swarm-http.test.ts', 'test/cli/swarm-cli-verdict.test.ts', 'test/cli/demo-cli.test.ts', 'test/protocol/run-scenario.test.ts'];

export default defineConfig({
  test: {
    projects: [
      { test: { ...shared, name: 'main', include: ['test/**/*.test.ts'], exclude: MEASURED, maxWorkers: 3, fileParallelism: true, sequence: { groupOrder: 0 } } },
      { test: { ...shared, name: 'measured', include: MEASURED, fileParallelism: false, maxWorkers: 1, sequence: { groupOrder: 1 } } },
    ],
  },
});
