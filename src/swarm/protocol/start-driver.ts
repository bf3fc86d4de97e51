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
import { ProtocolDriver, type Signer } from './protocol-driver.js';
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
  /** Keep enrolment across swarms in this folder (enrolled-state.ts), for the agents of `share`; null: none kept. */
  enrolledState: { dir: string; share: FleetShare } | null;
}

export interface StartedDriver {
  driver: ProtocolDriver;
  http: ProtocolHttp;
  /** Agents whose enrolment an earlier swarm left (they do not enrol again). */
  restored: number;
  /** Save the enrolled agents for the next swarm (at the end); null when nothing is kept. */
  save: ((savedAtMs: number) => void) | null;
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
  });
  const kept = o.enrolledState && protocol.enroll.length > 0 ? { dir: o.enrolledState.dir, share: { ...o.enrolledState.share, count: o.agents.count } } : null;
  if (!kept) return { driver, http, restored: 0, save: null };
  const restored = loadEnrolled(kept.dir, kept.share, driver);
  return { driver, http, restored, save: (savedAtMs) => void saveEnrolled(kept.dir, kept.share, driver, savedAtMs) };
}
