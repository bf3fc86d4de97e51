import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { InvalidArgumentError, formatValue } from './errors.js';
import { Rng } from './random.js';

/**
 * Deterministic agent identities. The same (seed, index) always gives the same agent, on any
 * machine, so a run can reuse a fleet without re-enrolling it. Tokens are HMAC-SHA256(secret, id):
 * a stack started with the same secret validates them statelessly, and an id it has never seen
 * cannot be paired with another agent's token.
 */

export const DEFAULT_SEED = 'rmmscale';
export const DEFAULT_SECRET = 'rmmscale-dev-secret';

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

/** Users and integrations authenticate with their own keys, never with agent tokens. */
export function userToken(secret: string, user: string): string {
  return `u.${user}.${createHmac('sha256', secret).update(`user\0${user}`).digest('base64url')}`;
}

/** Returns the user name for a valid user token, or null. */
export function verifyUserToken(secret: string, token: string): string | null {
  const m = /^u\.([A-Za-z0-9_-]{1,64})\.[A-Za-z0-9_-]{43}$/.exec(token);
  if (!m) return null;
  const expected = Buffer.from(userToken(secret, m[1]));
  const given = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected) ? m[1] : null;
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
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(doc));
  renameSync(tmp, path);
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
