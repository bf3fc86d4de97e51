import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { InvalidArgumentError } from '../../core/errors.js';
import type { Rng } from '../../core/random.js';
import type { LocalAgents } from '../local-agents.js';
import type { SwarmRecorder } from '../recorder.js';
import type { FleetShare } from '../schedule.js';
import { compileProtocol } from './compile-protocol.js';
import { loadEnrolled, saveEnrolled } from './enrolled-state.js';
import { newVarStore, ProtocolDriver, type RestoredEnrolment, type Signer } from './protocol-driver.js';
import { ProtocolHttp, type ClientCredentials, type ProtocolHttpOptions } from './protocol-http.js';
import { RenderState } from './template.js';
import type { ProtocolSpec } from './types.js';
import { agentKey, ClientCertFactory } from './x509.js';

/**
 * A worker's protocol driver, ready to fire: the protocol compiled, the signing module imported,
 * and (mTLS) a certificate factory that makes each agent's key and certificate when its first
 * connection opens.
 */

export interface StartDriverOptions {
  spec: ProtocolSpec;
  seed: string;
  agents: LocalAgents;
  http: Omit<ProtocolHttpOptions, 'credentials'>;
  recorder: SwarmRecorder;
  rng: Rng;
  now: () => number;
  /**
   * Keep enrolment across swarms in this folder (enrolled-state.ts), for the agents of `share`:
   * `restored` is what restoreEnrolment loaded before the start; null: none kept.
   */
  enrolledState: { dir: string; share: FleetShare; restored: RestoredEnrolment | null } | null;
}

export interface StartedDriver {
  driver: ProtocolDriver;
  http: ProtocolHttp;
  /** Save the enrolled agents for the next swarm (at the end): null, or why it could not; null when nothing is kept. */
  save: ((savedAtMs: number) => string | null) | null;
}

/**
 * An earlier swarm's enrolment of `count` agents of `share` (enrolled-state.ts), loaded while the
 * worker prepares, so that reading it costs nothing after the shared start. Null when the
 * protocol has no enrolment.
 */
export function restoreEnrolment(spec: ProtocolSpec, dir: string, share: FleetShare, count: number): RestoredEnrolment | null {
  const protocol = compileProtocol(spec);
  if (protocol.enroll.length === 0) return null;
  const vars = newVarStore(count, protocol.agentVars);
  const enrolled = new Uint8Array(count);
  const n = loadEnrolled(dir, { ...share, count }, { vars, isEnrolled: (s) => enrolled[s] === 1, restoreEnrolled: (s) => void (enrolled[s] = 1) });
  return { vars, enrolled, count: n };
}

/** The default export of a signing module, checked. */
export async function loadSigner(file: string): Promise<Signer> {
  const mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  if (typeof mod.default !== 'function') throw new InvalidArgumentError('sign', file, 'a module whose default export is a function (request) => headers');
  return mod.default as Signer;
}

export async function startProtocolDriver(o: StartDriverOptions): Promise<StartedDriver> {
  const protocol = compileProtocol(o.spec);
  const signer = protocol.signModule ? await loadSigner(protocol.signModule) : null;
  let credentials: ((slot: number) => ClientCredentials) | null = null;
  if (protocol.clientCert) {
    const cc = protocol.clientCert;
    const factory = new ClientCertFactory(readFileSync(cc.caFile, 'utf8'), readFileSync(cc.caKeyFile, 'utf8'));
    const st = new RenderState();
    credentials = (slot) => {
      const agent = o.agents.at(slot);
      st.agent = agent;
      const key = agentKey(o.seed, agent.index);
      const serial = createHash('sha256').update(`${o.seed}\0serial\0${agent.index}`).digest().subarray(0, 15);
      return { key: key.export({ type: 'pkcs8', format: 'pem' }) as string, cert: factory.issue(key, cc.commonName.render(st), serial) };
    };
  }
  const http = new ProtocolHttp({ ...o.http, credentials });
  const driver = new ProtocolDriver({
    protocol,
    agents: o.agents,
    http,
    recorder: o.recorder,
    rng: o.rng,
    now: o.now,
    epochMs: Date.now,
    maxInflight: o.http.maxInflight,
    signer,
    restored: o.enrolledState?.restored ?? null,
  });
  const kept = o.enrolledState && protocol.enroll.length > 0 ? { dir: o.enrolledState.dir, share: { ...o.enrolledState.share, count: o.agents.count } } : null;
  if (!kept) return { driver, http, save: null };
  const save = (savedAtMs: number): string | null => {
    try {
      saveEnrolled(kept.dir, kept.share, driver, savedAtMs);
      return null;
    } catch (err) {
      return `could not keep the agents' enrolment for the next window: ${(err as Error).message}`;
    }
  };
  return { driver, http, save };
}
