import { afterEach, describe, expect, it } from 'vitest';
import { resolveSwarmConfig } from '../../src/swarm/config.js';
import { runSwarm } from '../../src/swarm/coordinator.js';
import { startOsqueryServer, type OsqueryServer } from '../helpers/osquery-tls-server.js';

const SECRET = 'osq-enroll-secret';
let server: OsqueryServer | null = null;

afterEach(async () => {
  await server?.close();
  server = null;
});

describe('protocols/osquery-tls.yaml against an independent osquery TLS server', () => {
  it('enrols every agent once, uses only issued node_keys, answers every distributed query', async () => {
    server = await startOsqueryServer(SECRET, { queryEvery: 3 });
    const agents = 60;
    // Every agent fires once a second for 3 s: 180 flows, the first of each agent after its enrolment.
    const config = resolveSwarmConfig({
      target: server.url,
      agents,
      checkinInterval: '1s',
      duration: '3s',
      workers: 2,
      seed: 'osquery-e2e',
      protocol: 'protocols/osquery-tls.yaml',
      var: [`enroll_secret=${SECRET}`],
    });
    const { result } = await runSwarm({ config });
    expect(server.enrolls).toBe(agents);
    expect(result.config.protocol).toBe('osquery-tls');
    expect(result.ops.enroll.completed).toBe(agents);
    expect(server.invalid).toBe(0);
    expect(server.used.size).toBe(agents);
    for (const key of server.used) expect(server.issued.has(key)).toBe(true);
    // Each agent enrolled under its own hostname.
    expect(new Set(server.issued.values()).size).toBe(agents);
    const flows = (result.ops.config?.completed ?? 0) + (result.ops.distributed_read?.completed ?? 0) + (result.ops.log?.completed ?? 0);
    expect(flows).toBe(server.counts.get('/api/v1/osquery/config')! + server.counts.get('/api/v1/osquery/distributed/read')! + server.counts.get('/api/v1/osquery/log')!);
    // Each agent is due 3 times; a fire that finds its agent still inside the previous flow (a
    // loaded host) is dropped and counted, never queued.
    expect(flows + result.summary.dropped).toBe(agents * 3);
    expect(result.summary.dropped).toBe(result.errors['dropped:agent-busy'] ?? 0);
    // Every read that returned queries was followed by one write answering exactly those.
    expect(server.queriesOut).toBeGreaterThan(0);
    expect(server.queriesAnswered).toBe(server.queriesOut);
    expect(result.ops.distributed_write.completed).toBe(server.counts.get('/api/v1/osquery/distributed/write'));
    expect(result.ops.distributed_write.completed).toBe(server.queriesOut / 2);
    // Log batches are {{records 4kb}}: 40 rows each.
    expect(server.logRecords).toBe((result.ops.log?.completed ?? 0) * 40);
    expect(result.summary.failed).toBe(0);
  });

  it('a wrong enroll secret fails the enrol operation, and no flow runs', async () => {
    server = await startOsqueryServer(SECRET, { queryEvery: 3 });
    const config = resolveSwarmConfig({ target: server.url, agents: 10, checkinInterval: '1s', duration: '2s', workers: 1, protocol: 'protocols/osquery-tls.yaml', var: ['enroll_secret=wrong'] });
    const { result } = await runSwarm({ config });
    expect(server.enrolls).toBe(0);
    expect(result.ops.enroll.failed).toBe(server.invalid);
    expect(result.ops.enroll.failed).toBeGreaterThanOrEqual(10);
    expect(result.errors['enroll:http-401']).toBe(result.ops.enroll.failed);
    expect(server.used.size).toBe(0);
  });

  it('over a shared keep-alive pool (RawPool) the same invariants hold', async () => {
    server = await startOsqueryServer(SECRET, { queryEvery: 2 });
    const config = resolveSwarmConfig({ target: server.url, agents: 30, checkinInterval: '1s', duration: '2s', workers: 1, connection: 'pool', connections: 4, protocol: 'protocols/osquery-tls.yaml', var: [`enroll_secret=${SECRET}`] });
    const { result } = await runSwarm({ config });
    expect(server.enrolls).toBe(30);
    expect(server.invalid).toBe(0);
    for (const key of server.used) expect(server.issued.has(key)).toBe(true);
    expect(server.queriesAnswered).toBe(server.queriesOut);
    expect(result.summary.failed).toBe(0);
  });
});
