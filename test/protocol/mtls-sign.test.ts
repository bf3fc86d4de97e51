import { execFileSync } from 'node:child_process';
import { createHmac, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSwarmConfig } from '../../src/swarm/config.js';
import { runSwarm } from '../../src/swarm/coordinator.js';
import { agentKey, ClientCertFactory } from '../../src/swarm/protocol/x509.js';

let dir = '';
let server: Server;
let url = '';
const seen = { ok: 0, badCert: 0, badSignature: 0, commonNames: new Set<string>() };

const SIGN_MODULE = `import { createHmac } from 'node:crypto';
export default function sign(req) {
  const mac = createHmac('sha256', 'sign-key').update(req.method + '\\n' + req.path + '\\n' + (req.body ?? '')).digest('hex');
  return { 'X-Signature': mac, 'x-signed-by': req.agentId };
}
`;

const PROTOCOL = `name: mtls-signed
tls:
  clientCert: { ca: ca.pem, caKey: ca.key, commonName: 'host-{{agent.hostname}}' }
sign: ./sign.mjs
flows:
  - name: ping
    steps:
      - name: ping
        path: /ping?id={{agent.id}}
        body: '{"id":"{{agent.id}}","seq":{{seq}}}'
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rmmscale-mtls-'));
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=rmmscale test CA', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'));
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.pem'));
  writeFileSync(join(dir, 'sign.mjs'), SIGN_MODULE);
  writeFileSync(join(dir, 'p.yaml'), PROTOCOL);
  server = createServer(
    { key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.pem')), ca: readFileSync(join(dir, 'ca.pem')), requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const cn = (req.socket as TLSSocket).getPeerCertificate().subject?.CN;
        const mac = createHmac('sha256', 'sign-key').update(`${req.method}\n${req.url}\n${body}`).digest('hex');
        const id = (JSON.parse(body) as { id: string }).id;
        if (req.headers['x-signature'] !== mac || req.headers['x-signed-by'] !== id) seen.badSignature++;
        else if (typeof cn !== 'string' || !cn.startsWith('host-')) seen.badCert++;
        else {
          seen.ok++;
          seen.commonNames.add(cn);
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('per-agent client certificates and request signing', () => {
  it('a certificate per agent, from the seed, signed by the given CA', () => {
    const factory = new ClientCertFactory(readFileSync(join(dir, 'ca.pem'), 'utf8'), readFileSync(join(dir, 'ca.key'), 'utf8'));
    const key = agentKey('seed-a', 3);
    expect(agentKey('seed-a', 3).export({ type: 'pkcs8', format: 'pem' })).toBe(key.export({ type: 'pkcs8', format: 'pem' }));
    expect(agentKey('seed-b', 3).export({ type: 'pkcs8', format: 'pem' })).not.toBe(key.export({ type: 'pkcs8', format: 'pem' }));
    const cert = new X509Certificate(factory.issue(key, 'agent-3', Buffer.from([7, 7])));
    const ca = new X509Certificate(readFileSync(join(dir, 'ca.pem')));
    expect(cert.subject).toBe('CN=agent-3');
    expect(cert.issuer).toBe('CN=rmmscale test CA');
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkPrivateKey(key)).toBe(true);
    expect(cert.serialNumber).toBe('010707');
  });

  it('a swarm presents each agent\'s certificate to an mTLS server and signs every request', async () => {
    const config = resolveSwarmConfig({ target: url, ca: join(dir, 'server.pem'), agents: 8, checkinInterval: '1s', duration: '2s', workers: 1, protocol: join(dir, 'p.yaml') });
    const { result } = await runSwarm({ config });
    expect(result.summary.failed).toBe(0);
    expect(seen.badCert + seen.badSignature).toBe(0);
    expect(seen.ok).toBe(result.ops.ping.completed);
    expect(seen.ok + result.summary.dropped).toBe(16);
    expect(seen.commonNames.size).toBe(8);
  });
});
