import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAgentToken } from '../../src/core/identity.js';
import { resolveSwarmConfig } from '../../src/swarm/config.js';
import { runSwarm } from '../../src/swarm/coordinator.js';

let dir = '';
let server: Server;
let url = '';
let served = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rmmscale-tls-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
  ], { stdio: 'ignore' });
  server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (req, res) => {
    req.resume();
    req.on('end', () => {
      const ok = verifyAgentToken('tls-secret', String(req.headers['x-agent-id']), String(req.headers.authorization).replace('Bearer ', ''));
      if (ok) served++;
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end('{"ok":true,"commands":[]}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const base = { agents: 100, rate: '50/s', duration: '1s', secret: 'tls-secret', workers: 1 } as const;

describe('swarm over TLS', () => {
  it.each(['per-checkin', 'pool'])('%s: refuses an unverified self-signed certificate', async (connection) => {
    const { result } = await runSwarm({ config: resolveSwarmConfig({ ...base, target: url, connection }) });
    expect(result.summary.completed).toBe(0);
    expect(Object.keys(result.errors).join(',')).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO/);
  });

  it.each(['per-checkin', 'keepalive', 'pool'])('%s: accepts it with --ca, and with --insecure', async (connection) => {
    const before = served;
    const withCa = await runSwarm({ config: resolveSwarmConfig({ ...base, target: url, connection, ca: join(dir, 'cert.pem') }) });
    expect(withCa.result.summary.failed).toBe(0);
    expect(withCa.result.summary.completed).toBeGreaterThanOrEqual(45);
    const insecure = await runSwarm({ config: resolveSwarmConfig({ ...base, target: url, connection, insecure: true }) });
    expect(insecure.result.summary.failed).toBe(0);
    expect(served - before).toBe(withCa.result.summary.completed + insecure.result.summary.completed);
  });
});
