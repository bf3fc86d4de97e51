import { agentId, agentToken, deriveAgent, readIdentityFile, type AgentIdentity } from '../core/identity.js';
import { shareCount, type FleetShare } from './schedule.js';

/**
 * A worker's share of the fleet: local slot s is global agent first + s·stride (the worker's stripe
 * of its shard's stripe, shard.ts), so the fleet is the same whatever the worker and shard counts.
 *
 * HTTP workers read an agent's identity on every send, so they keep every identity as an object.
 * Tunnel workers need only the id and token, to open a tunnel, while holding ~11,000 sockets each,
 * so they keep those two as 40 raw bytes per agent (the strings and object would be ~300 bytes).
 * The bytes are computed up front: deriving them at connect time instead made three short-lived
 * native hash objects per connect, and collecting those among 11,000 live sockets kept the
 * workers busy for seconds after the fleet was up. The rest of an identity (hostname, for a
 * command's output) is derived when asked.
 */
export interface LocalAgents {
  readonly count: number;
  at(slot: number): AgentIdentity;
  idAt(slot: number): string;
  tokenAt(slot: number): string;
}

export interface LocalAgentsSpec {
  seed: string;
  secret: string;
  /** Agents in the whole fleet. */
  agents: number;
  share: FleetShare;
  identitiesFile: string | null;
}

/** The fleet-wide index of a worker's local slot. */
function globalIndex(spec: LocalAgentsSpec, slot: number): number {
  return spec.share.first + slot * spec.share.stride;
}

class HeldAgents implements LocalAgents {
  constructor(private readonly list: AgentIdentity[]) {}
  get count(): number {
    return this.list.length;
  }
  at(slot: number): AgentIdentity {
    return this.list[slot];
  }
  idAt(slot: number): string {
    return this.list[slot].id;
  }
  tokenAt(slot: number): string {
    return this.list[slot].token;
  }
}

const ID_PREFIX = 'agt-';
const ID_BYTES = 8; // 16 hex digits
const TOKEN_BYTES = 32; // HMAC-SHA256, base64url in the token

class CompactAgents implements LocalAgents {
  readonly count: number;
  private readonly ids: Buffer;
  private readonly tokens: Buffer;
  constructor(private readonly spec: LocalAgentsSpec) {
    this.count = shareCount(spec.agents, spec.share);
    this.ids = Buffer.alloc(this.count * ID_BYTES);
    this.tokens = Buffer.alloc(this.count * TOKEN_BYTES);
    for (let s = 0; s < this.count; s++) {
      const id = agentId(spec.seed, globalIndex(spec, s));
      this.ids.write(id.slice(ID_PREFIX.length), s * ID_BYTES, ID_BYTES, 'hex');
      this.tokens.write(agentToken(spec.secret, id), s * TOKEN_BYTES, TOKEN_BYTES, 'base64url');
    }
  }
  at(slot: number): AgentIdentity {
    return deriveAgent(this.spec.seed, this.spec.secret, globalIndex(this.spec, slot));
  }
  idAt(slot: number): string {
    return ID_PREFIX + this.ids.toString('hex', slot * ID_BYTES, (slot + 1) * ID_BYTES);
  }
  tokenAt(slot: number): string {
    return this.tokens.toString('base64url', slot * TOKEN_BYTES, (slot + 1) * TOKEN_BYTES);
  }
}

/**
 * `held`: every identity built now and kept as objects (HTTP). Otherwise ids and tokens as bytes
 * (tunnels). An identity file is always held: its identities cannot be derived again.
 */
export function localAgents(spec: LocalAgentsSpec, held: boolean): LocalAgents {
  const count = shareCount(spec.agents, spec.share);
  const global = (s: number): number => globalIndex(spec, s);
  if (spec.identitiesFile) {
    const file = readIdentityFile('--identities', spec.identitiesFile);
    const out: AgentIdentity[] = new Array(count);
    for (let s = 0; s < count; s++) out[s] = file.agents[global(s)] ?? deriveAgent(spec.seed, spec.secret, global(s));
    return new HeldAgents(out);
  }
  if (!held) return new CompactAgents(spec);
  const out: AgentIdentity[] = new Array(count);
  for (let s = 0; s < count; s++) out[s] = deriveAgent(spec.seed, spec.secret, global(s));
  return new HeldAgents(out);
}
