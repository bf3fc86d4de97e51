import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic-write.js';
import { InvalidArgumentError, formatValue } from './errors.js';
import { Rng } from './random.js';

/**
 * Deterministic agent identities. The same (seed, index) always gives the same agent, on any
 * machine, so a run can reuse a fleet without re-enrolling it. Tokens are HMAC-SHA256(secret, id):
 * a stack started with the same secret validates them statelessly, and an id it has never seen
 * cannot be paired with another agent's token.
 */

export const DEFAULT_SEED = 'rmmscale';

/**
 * A fresh stack secret: 32 random bytes, base64url. There is no default secret: a stack started
 * without one generates its own (so nobody can mint tokens for it from the source code).
 */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Control-plane credentials, one per purpose, derived from the stack secret so that nodes share
 * them without another file: HMAC-SHA256(secret, "key\0" + purpose). A key for one purpose is
 * useless for another, and none of them is an agent or user token. 'control' is `stack up`'s own
 * fault endpoint (src/stack/control.ts), not a node's; 'shard-coordinator' is a sharded run's
 * coordinator (src/run/shard-coordinator.ts).
 */
export type KeyPurpose = 'admin' | 'db-rpc' | 'relay-forward' | 'control' | 'shard-coordinator' | 'analytics-rpc';

export function deriveKey(secret: string, purpose: KeyPurpose): string {
  return createHmac('sha256', secret).update(`key\0${purpose}`).digest('base64url');
}

/** Constant-time comparison of a presented credential with the expected one. */
export function sameCredential(given: string | null | undefined, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export type OsFamily = 'windows' | 'macos' | 'linux';

export interface AgentIdentity {
  readonly index: number;
  readonly id: string;
  readonly token: string;
  readonly hostname: string;
  readonly os: OsFamily;
  readonly agentVersion: string;
  /** The MSP client (tenant) the agent belongs to: what dashboards group by. */
  readonly client: string;
}

/** OS share of a typical MSP fleet: mostly Windows endpoints. */
export const OS_MIX: ReadonlyArray<readonly [OsFamily, number]> = [
  ['windows', 0.82],
  ['macos', 0.1],
  ['linux', 0.08],
];

/** Agent versions in the field: most on current, a tail on older builds. */
export const VERSION_MIX: ReadonlyArray<readonly [string, number]> = [
  ['2025.3.1', 0.62],
  ['2025.2.4', 0.27],
  ['2024.4.9', 0.11],
];

const CLIENTS = 250;

export function agentId(seed: string, index: number): string {
  const h = createHash('sha256').update(`${seed}\0${index}`).digest('hex');
  return `agt-${h.slice(0, 16)}`;
}

export function agentToken(secret: string, id: string): string {
  return createHmac('sha256', secret).update(`agent\0${id}`).digest('base64url');
}

/** Constant-time check of an agent's bearer token against the stack secret. */
export function verifyAgentToken(secret: string, id: string, token: string): boolean {
  if (!/^agt-[0-9a-f]{16}$/.test(id)) return false;
  const expected = Buffer.from(agentToken(secret, id));
  const given = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Users and integrations authenticate with their own keys, never with agent tokens:
 * `u.<user>.<HMAC>` (the user API), or with a session scope, `u.<user>.<scope, base64url>.<HMAC>`.
 * The scope says which agents the user's operator sessions may reach (SessionScope).
 */
export function userToken(secret: string, user: string, scope?: string): string {
  if (scope === undefined) return `u.${user}.${createHmac('sha256', secret).update(`user\0${user}`).digest('base64url')}`;
  const mac = createHmac('sha256', secret).update(`user\0${user}\0${scope}`).digest('base64url');
  return `u.${user}.${Buffer.from(scope).toString('base64url')}.${mac}`;
}

/** A valid user token's user name and session scope (null: a token without one), or null. */
export function verifyUserTokenScope(secret: string, token: string): { user: string; scope: string | null } | null {
  const m = /^u\.([A-Za-z0-9_-]{1,64})\.(?:([A-Za-z0-9_-]{1,8192})\.)?[A-Za-z0-9_-]{43}$/.exec(token);
  if (!m) return null;
  const scope = m[2] === undefined ? null : Buffer.from(m[2], 'base64url').toString();
  return sameCredential(token, userToken(secret, m[1], scope ?? undefined)) ? { user: m[1], scope } : null;
}

/** Returns the user name for a valid user token, or null. */
export function verifyUserToken(secret: string, token: string): string | null {
  return verifyUserTokenScope(secret, token)?.user ?? null;
}

/**
 * Which agents and protocols a user token's operator sessions may reach:
 *
 *   *                          every agent
 *   agents:ID[,ID…]            these agents
 *   group:NAME                 agents whose client (tenant) or dynamic group (client/os) is NAME
 *   …@PROTO[,PROTO…]           and only these protocols (default: any)
 *
 * e.g. `group:client-007@shell`, `agents:agt-0123456789abcdef@shell,files`.
 */
export interface SessionScope {
  readonly agents: 'all' | ReadonlySet<string> | { readonly group: string };
  /** null: any protocol. */
  readonly protocols: ReadonlySet<string> | null;
}

/** Parse a scope string; a malformed one is an InvalidArgumentError naming `field`. */
export function parseSessionScope(field: string, text: string): SessionScope {
  const allowed = 'a session scope: *, agents:ID[,ID…] or group:NAME, optionally @PROTOCOL[,PROTOCOL…]';
  const at = text.lastIndexOf('@');
  const who = at < 0 ? text : text.slice(0, at);
  const protoText = at < 0 ? null : text.slice(at + 1);
  const list = (t: string, re: RegExp): string[] | null => {
    const items = t.split(',');
    return items.length > 0 && items.every((x) => re.test(x)) ? items : null;
  };
  const protocols = protoText === null ? null : list(protoText, /^[A-Za-z0-9_-]{1,64}$/);
  if (protoText !== null && !protocols) throw new InvalidArgumentError(field, text, allowed);
  let agents: SessionScope['agents'];
  if (who === '*') agents = 'all';
  else if (who.startsWith('agents:')) {
    const ids = list(who.slice(7), /^agt-[0-9a-f]{16}$/);
    if (!ids) throw new InvalidArgumentError(field, text, allowed);
    agents = new Set(ids);
  } else if (who.startsWith('group:') && /^[A-Za-z0-9_./-]{1,128}$/.test(who.slice(6))) agents = { group: who.slice(6) };
  else throw new InvalidArgumentError(field, text, allowed);
  return { agents, protocols: protocols ? new Set(protocols) : null };
}

function pick<T>(mix: ReadonlyArray<readonly [T, number]>, rng: Rng): T {
  return mix[rng.weighted(mix.map((e) => e[1]))][0];
}

export function deriveAgent(seed: string, secret: string, index: number): AgentIdentity {
  const id = agentId(seed, index);
  const rng = new Rng(`${seed}\0identity\0${index}`);
  const os = pick(OS_MIX, rng);
  const client = `client-${String(rng.int(CLIENTS)).padStart(3, '0')}`;
  const tag = id.slice(4, 11).toUpperCase();
  const hostname = os === 'windows' ? `DESKTOP-${tag}` : os === 'macos' ? `MBP-${tag}` : `lnx-${tag.toLowerCase()}`;
  return { index, id, token: agentToken(secret, id), hostname, os, agentVersion: pick(VERSION_MIX, rng), client };
}

export function deriveFleet(seed: string, secret: string, count: number, start = 0): AgentIdentity[] {
  const out: AgentIdentity[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = deriveAgent(seed, secret, start + i);
  return out;
}

/**
 * The identity file: a fleet written once and reused later (same ids, same tokens), so a run can
 * resume against a stack that already knows the agents.
 */
export interface IdentityFile {
  readonly format: 'rmmscale.identities/1';
  readonly seed: string;
  readonly agents: AgentIdentity[];
}

export function writeIdentityFile(path: string, seed: string, agents: AgentIdentity[]): void {
  const doc: IdentityFile = { format: 'rmmscale.identities/1', seed, agents };
  // The tokens are credentials: only this user may read the file.
  writeFileAtomic(path, JSON.stringify(doc), { mode: 0o600 });
}

export function readIdentityFile(field: string, path: string): IdentityFile {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new InvalidArgumentError(field, path, `a readable identity file (${(err as Error).message.split('\n')[0]})`);
  }
  const d = doc as Partial<IdentityFile>;
  if (d?.format !== 'rmmscale.identities/1' || !Array.isArray(d.agents) || typeof d.seed !== 'string') {
    throw new InvalidArgumentError(field, path, `a file with format "rmmscale.identities/1", got format ${formatValue(d?.format)}`);
  }
  return d as IdentityFile;
}
