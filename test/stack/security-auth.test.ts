import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveAgent, deriveKey, userToken } from '../../src/core/identity.js';
import { startStack, type NodeInfo, type RunningStack } from '../../src/stack/launcher.js';
import { HEADER_RELAY_HOP, HEADER_RELAY_KEY, SiblingForwarder } from '../../src/stack/relay/sibling-forward.js';
import type { Topology } from '../../src/stack/topology.js';
import type { NodeMetricsApi, Store } from '../../src/stack/types.js';

/**
 * Every control surface, tried without its credential and with the wrong ones: /admin/* on every
 * node (401 unless the admin key), the db node's RPC (401 unless the db key), a forwarded session
 * (401 unless the siblings' key); /metrics and /healthz stay open on loopback. The DBAgent's lease
 * cannot be released or taken by another process, and a TLS sibling whose certificate does not
 * verify never sees the operator's token.
 */

const SECRET = 'auth-test-secret-4f1c2a';
const KEYS = { admin: deriveKey(SECRET, 'admin'), db: deriveKey(SECRET, 'db-rpc'), forward: deriveKey(SECRET, 'relay-forward') };
const agent = deriveAgent('auth-test', SECRET, 1);
const OPS = userToken(SECRET, 'ops', '*');

/** Credentials that are not the one asked for: nothing, garbage, and every other kind the stack issues. */
const WRONG: Array<[string, Record<string, string>]> = [
  ['no credentials', {}],
  ['a garbage bearer', { authorization: 'Bearer nope' }],
  ['the secret itself', { authorization: `Bearer ${SECRET}` }],
  ['an agent token', { authorization: `Bearer ${agent.token}`, 'x-agent-id': agent.id }],
  ['a user token with every scope', { authorization: `Bearer ${OPS}` }],
  ['a key under another secret', { authorization: `Bearer ${deriveKey('another-secret', 'admin')}` }],
];

const TOPOLOGY: Topology = {
  name: 'auth',
  nodes: [
    { name: 'db', role: 'db', tier: 'db' },
    { name: 'app', role: 'app', tier: 'app' },
    { name: 'web-agent-1', role: 'web', tier: 'web-agent', serves: 'both' },
    { name: 'relay-1', role: 'relay', tier: 'relay' },
    { name: 'relay-2', role: 'relay', tier: 'relay' },
    { name: 'proxy', role: 'proxy', tier: 'proxy' },
  ],
};

let stack: RunningStack;
let dataDir: string;
const node = (name: string): NodeInfo => stack.nodes.find((n) => n.name === name)!;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'rmmscale-auth-'));
  stack = await startStack(TOPOLOGY, { secret: SECRET, dataDir, stopGraceMs: 3000 });
}, 60_000);
afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function status(url: string, init: RequestInit = {}): Promise<number> {
  const r = await fetch(url, init);
  await r.arrayBuffer();
  return r.status;
}

const rpc = (method: string, args: unknown[], headers: Record<string, string>): Promise<Response> =>
  fetch(`${node('db').url}/db/v1/${method}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(args) });

describe('/admin/* on every node', () => {
  it.each(WRONG)('%s → 401 on every node, for every admin path', async (_name, headers) => {
    for (const n of stack.nodes) {
      for (const path of ['/admin/hdr', '/admin/anything']) expect([n.name, path, await status(`${n.url}${path}`, { headers })]).toEqual([n.name, path, 401]);
    }
  });

  it('the admin key → 200 (404 for an unknown admin path); /metrics and /healthz stay open on loopback', async () => {
    const headers = { authorization: `Bearer ${KEYS.admin}` };
    for (const n of stack.nodes) {
      expect([n.name, await status(`${n.url}/admin/hdr`, { headers })]).toEqual([n.name, 200]);
      expect([n.name, await status(`${n.url}/admin/anything`, { headers })]).toEqual([n.name, 404]);
      expect([n.name, await status(n.metricsUrl)]).toEqual([n.name, 200]);
      expect([n.name, await status(`${n.url}/healthz`)]).toEqual([n.name, 200]);
    }
    // Another purpose's key is not the admin key.
    expect(await status(`${node('db').url}/admin/hdr`, { headers: { authorization: `Bearer ${KEYS.db}` } })).toBe(401);
  });

  it('the proxy never forwards /admin/ to a backend, with or without the key', async () => {
    const r = await fetch(`${node('proxy').url}/admin/hdr`);
    expect(r.status).toBe(401);
    expect(r.headers.get('x-served-by')).toBeNull();
  });
});

describe('the db RPC', () => {
  const methods: Array<[string, unknown[]]> = [
    ['leaseHolder', ['dbagent']],
    ['releaseLease', ['dbagent', 'app']],
    ['acquireLease', ['dbagent', 'intruder', 60_000, Date.now()]],
    ['countCheckins', []],
    ['auditSession', [{ id: 'x', user: 'u', agentId: agent.id, protocol: 'shell', relay: 'r', startedMs: 1, endedMs: 2, outcome: 'forged', status: 200 }]],
  ];

  it.each(WRONG)('%s → 401 for every operation, and nothing runs', async (_name, headers) => {
    for (const [m, args] of methods) {
      const r = await rpc(m, args, headers);
      expect([m, r.status]).toEqual([m, 401]);
      expect(r.headers.get('www-authenticate')).toBe('Bearer realm="rmmscale-db"');
      await r.arrayBuffer();
    }
    const admin = await rpc('countCheckins', [], { authorization: `Bearer ${KEYS.admin}` });
    expect(admin.status).toBe(401);
    const ok = await rpc('countCheckins', [], { authorization: `Bearer ${KEYS.db}` });
    expect(ok.status).toBe(200);
  });

  it("releaseLease cannot stop the DBAgent: the lease's holder is never shown in full, so nobody else can release or take it", async () => {
    const key = { authorization: `Bearer ${KEYS.db}` };
    const before = ((await (await rpc('leaseHolder', ['dbagent'], key)).json()) as { result: { holder: string; untilMs: number } }).result;
    expect(before.holder).toMatch(/^app:\d+$/); // without its private part
    expect((await rpc('releaseLease', ['dbagent', before.holder], key)).status).toBe(200);
    expect((await rpc('releaseLease', ['dbagent', `${before.holder}#guess`], key)).status).toBe(200);
    const taken = ((await (await rpc('acquireLease', ['dbagent', 'intruder', 600_000, Date.now()], key)).json()) as { result: number | null }).result;
    expect(taken).toBeNull();
    const after = ((await (await rpc('leaseHolder', ['dbagent'], key)).json()) as { result: { holder: string; untilMs: number } }).result;
    expect(after.holder).toBe(before.holder);
    expect(after.untilMs).toBeGreaterThanOrEqual(before.untilMs);
    const m = await (await fetch(node('app').metricsUrl)).text();
    expect(m).toMatch(/rmmscale_role_gauge\{[^}]*gauge="dbagent:leader"\} 1\n/);
  });
});

describe('sibling forwarding', () => {
  const session = (headers: Record<string, string>): Promise<number> =>
    status(`${node('relay-1').url}/api/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${OPS}`, ...headers },
      body: JSON.stringify({ agentId: agent.id, protocol: 'shell', command: 'whoami' }),
    });

  it('a request marked as forwarded needs the siblings key: none, the admin key or a guess → 401', async () => {
    expect(await session({ [HEADER_RELAY_HOP]: 'relay-2' })).toBe(401);
    expect(await session({ [HEADER_RELAY_HOP]: 'relay-2', [HEADER_RELAY_KEY]: KEYS.admin })).toBe(401);
    expect(await session({ [HEADER_RELAY_HOP]: 'relay-2', [HEADER_RELAY_KEY]: deriveKey('guess', 'relay-forward') })).toBe(401);
    // With the key it is a forwarded session like any other: this agent has no tunnel here.
    expect(await session({ [HEADER_RELAY_HOP]: 'relay-2', [HEADER_RELAY_KEY]: KEYS.forward })).toBe(404);
  });
});

describe('TLS siblings are verified before the operator token is sent', () => {
  let dir: string;
  let server: Server;
  let seen: Array<Record<string, string | string[] | undefined>>;
  let url: string;

  function cert(name: string): { cert: string; key: string } {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.pem`)], {
      stdio: 'ignore',
    });
    return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rmmscale-sibling-tls-'));
    const real = cert('sibling');
    cert('other');
    seen = [];
    // A stand-in for relay-2: /healthz names it, sessions are answered 200.
    server = createHttpsServer({ cert: readFileSync(real.cert), key: readFileSync(real.key) }, (req: IncomingMessage, res: ServerResponse) => {
      seen.push(req.headers);
      req.resume();
      if (req.url === '/healthz') res.writeHead(200, { 'content-type': 'application/json' }).end('{"node":"relay-2"}');
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"answered":true}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  const metrics: NodeMetricsApi = { count: () => undefined, gauge: () => undefined, observeUs: () => undefined, request: () => undefined };
  const store = { getPresence: async () => 'relay-2' } as unknown as Store;

  async function forwardWith(caFiles: string[] | undefined): Promise<{ status: number; reached: boolean }> {
    const f = new SiblingForwarder('relay-1', [url], store, metrics, { secret: SECRET, caFiles });
    let status = 0;
    const res = {
      headersSent: false,
      setHeader: () => undefined,
      writeHead(s: number) {
        status = s;
        return this;
      },
      end: () => undefined,
      once: () => undefined,
    } as unknown as ServerResponse;
    const req = { headers: { authorization: `Bearer ${OPS}` }, complete: true, resume: () => undefined } as unknown as IncomingMessage;
    try {
      const r = await f.forward(req, res, { agentId: agent.id, protocol: 'shell', command: 'whoami', args: {}, timeoutMs: 1000 });
      return { status: r.status || status, reached: r.reachedSibling };
    } finally {
      await f.close();
    }
  }

  it('an untrusted certificate: no request reaches the sibling, the operator gets no answer from it', async () => {
    for (const ca of [[join(dir, 'other.pem')], undefined]) {
      seen = [];
      const r = await forwardWith(ca);
      expect(r.reached).toBe(false);
      expect(r.status).not.toBe(200);
      expect(seen).toEqual([]); // the TLS handshake failed: no header, no token, was ever sent
    }
  });

  it('stack up refuses a relay whose certificate does not name 127.0.0.1, in one line naming why', async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=relay.example', '-keyout', join(dir, 'nosan.key'), '-out', join(dir, 'nosan.pem')], { stdio: 'ignore' });
    const topology: Topology = {
      name: 'tls-nosan',
      nodes: [
        { name: 'db', role: 'db', tier: 'db' },
        { name: 'app', role: 'app', tier: 'app' },
        { name: 'relay-1', role: 'relay', tier: 'relay', tls: { certFile: join(dir, 'nosan.pem'), keyFile: join(dir, 'nosan.key') } },
      ],
    };
    const data = mkdtempSync(join(tmpdir(), 'rmmscale-nosan-'));
    try {
      await expect(startStack(topology, { secret: SECRET, dataDir: data, stopGraceMs: 3000, startTimeoutMs: 20_000 })).rejects.toThrow(
        /^https:\/\/127\.0\.0\.1:\d+: its TLS certificate does not verify against its tls\.certFile \(ERR_TLS_CERT_ALTNAME_INVALID\); it must name 127\.0\.0\.1/,
      );
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  }, 30_000);

  it("the sibling's own certificate: forwarded, with the siblings key and the operator's token", async () => {
    seen = [];
    const r = await forwardWith([join(dir, 'sibling.pem')]);
    expect(r).toEqual({ status: 200, reached: true });
    const forwarded = seen.find((h) => h[HEADER_RELAY_HOP] !== undefined)!;
    expect(forwarded[HEADER_RELAY_KEY]).toBe(KEYS.forward);
    expect(forwarded.authorization).toBe(`Bearer ${OPS}`);
  });
});
