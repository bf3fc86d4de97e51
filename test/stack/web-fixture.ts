import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { deriveAgent, userToken, type AgentIdentity } from '../../src/core/identity.js';
import type { CheckinRequest } from '../../src/core/protocol.js';
import { SqliteStore } from '../../src/stack/store/sqlite.js';

/** Shared pieces of the web and security tests: a temp SQLite store, agents, users, requests. */
export const SECRET = 'web-test-secret';
export const agent = deriveAgent('web-test', SECRET, 1);
export const other = deriveAgent('web-test', SECRET, 2);
export const alice = userToken(SECRET, 'alice');

export function checkinOf(a: AgentIdentity, seq = 1): CheckinRequest {
  return {
    agentId: a.id,
    hostname: a.hostname,
    os: a.os,
    agentVersion: a.agentVersion,
    client: a.client,
    seq,
    status: { cpuPct: 5, memPct: 40, diskFreePct: 60, uptimeSec: 100, loggedOnUser: null },
  };
}

export const asAgent = (a: AgentIdentity = agent): Record<string, string> => ({ authorization: `Bearer ${a.token}`, 'x-agent-id': a.id });
export const asUser = (token = alice): Record<string, string> => ({ authorization: `Bearer ${token}` });

export async function tempStore(): Promise<{ store: SqliteStore; path: string; count(table: string): number; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'rmmscale-web-'));
  const path = join(dir, 'db.sqlite');
  const store = new SqliteStore(path);
  await store.init();
  return {
    store,
    path,
    count: (table) => {
      const db = new Database(path, { readonly: true });
      try {
        return Number((db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n);
      } finally {
        db.close();
      }
    },
    close: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function call(base: string, method: string, path: string, body: unknown, headers: Record<string, string>): Promise<{ status: number; json: unknown; headers: Headers }> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  const r = await fetch(base + path, init);
  const text = await r.text();
  let json: unknown = null;
  try {
    json = text ? (JSON.parse(text) as unknown) : null;
  } catch {
    json = text;
  }
  return { status: r.status, json, headers: r.headers };
}
