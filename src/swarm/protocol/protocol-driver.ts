import type { Rng } from '../../core/random.js';
import type { LocalAgents } from '../local-agents.js';
import type { SwarmRecorder } from '../recorder.js';
import { AgentVarStore } from './agent-vars.js';
import { renderHeaders, type CompiledProtocol, type CompiledStep } from './compile-protocol.js';
import { isPresent, readJsonPath } from './json-path.js';
import type { ProtocolHttp } from './protocol-http.js';
import { RenderState } from './template.js';

/**
 * Runs a compiled protocol for a worker's agents. Each scheduled fire runs one flow, picked by
 * weight; an agent not yet enrolled runs the enrolment steps first (once: a failed enrolment is
 * tried again at the agent's next fire). Steps of a flow go one after another, each seeing the
 * previous response; a step whose `when` finds nothing there is skipped.
 *
 * Every step is an operation in the recorder under its own name (its own histogram, `NAME.p99`).
 * The first step's latency counts from the fire's intended time, a later step's from the moment
 * the step before it ended. A failed check (status, `exists`) is a failure of that operation and
 * ends the flow. An agent whose previous flow is still running when it is due again drops the
 * send (counted as `dropped:agent-busy`), as the fixed path drops at its in-flight cap.
 *
 * Per agent: the enrolment variables (AgentVarStore), a flow count and two flags, in typed arrays.
 */

/** A request-signing hook's view of one request; it returns headers to add. */
export interface SignRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | null;
  agentId: string;
  agentIndex: number;
}
export type Signer = (req: SignRequest) => Record<string, string>;

export interface ProtocolDriverOptions {
  protocol: CompiledProtocol;
  agents: LocalAgents;
  http: ProtocolHttp;
  recorder: SwarmRecorder;
  rng: Rng;
  /** ms on the profile's clock. */
  now: () => number;
  /** Wall clock, epoch ms ({{now}}): read once, at the start; each send adds its own `now()` to it. */
  epochMs: () => number;
  maxInflight: number;
  signer: Signer | null;
  /** An earlier swarm's enrolment of these agents (enrolled-state.ts), loaded before the start: adopted as is. */
  restored?: RestoredEnrolment | null;
}

/** Enrolment variables and flags loaded for a worker's agents before its driver exists. */
export interface RestoredEnrolment {
  vars: AgentVarStore;
  /** 1 for each local slot that enrolled before. */
  enrolled: Uint8Array;
  /** How many slots that is. */
  count: number;
}

/** A store sized for `count` agents' enrolment variables (about 48 bytes a value to start, at most 64 MB). */
export function newVarStore(count: number, names: readonly string[]): AgentVarStore {
  return new AgentVarStore(count, names, Math.min(64 * 1024 * 1024, Math.max(4096, count * 48 * names.length)));
}

const enum Flag {
  Enrolled = 1,
  Busy = 2,
}

export class ProtocolDriver {
  readonly vars: AgentVarStore;
  private readonly flags: Uint8Array;
  private readonly seq: Uint32Array;
  private readonly st = new RenderState();
  /** Epoch ms at now() = 0: {{now}} is this plus the send's own clock reading, one clock read per send, not two. */
  private readonly epochAtZeroMs: number;
  private closed = false;
  inflight = 0;
  /** Flows (with their enrolment) started and not yet ended. */
  private activeFlows = 0;
  /** Enrolments that completed (every step passed its checks). */
  enrolled = 0;

  constructor(private readonly o: ProtocolDriverOptions) {
    const n = o.agents.count;
    this.vars = o.restored?.vars ?? newVarStore(n, o.protocol.agentVars);
    this.flags = new Uint8Array(n);
    if (o.restored) for (let s = 0; s < n; s++) if (o.restored.enrolled[s]) this.flags[s] |= Flag.Enrolled;
    this.seq = new Uint32Array(n);
    this.st.store = this.vars;
    this.st.rng = o.rng;
    this.epochAtZeroMs = o.epochMs() - o.now();
  }

  /** Whether local slot `slot` has enrolled (in this swarm, or restored from an earlier one). */
  isEnrolled(slot: number): boolean {
    return (this.flags[slot] & Flag.Enrolled) !== 0;
  }

  /**
   * Mark `slot` enrolled with the variables already put in `vars` (an earlier window's enrolment,
   * enrolled-state.ts): its next fire runs a flow, not the enrolment. Not counted in `enrolled`.
   */
  restoreEnrolled(slot: number): void {
    this.flags[slot] |= Flag.Enrolled;
  }

  /** One scheduled fire for local slot `slot`, intended at `intendedMs`. The caller counted it as scheduled. */
  fire(slot: number, intendedMs: number, onDone?: () => void): void {
    const rec = this.o.recorder;
    if (this.closed) return onDone?.();
    if (this.flags[slot] & Flag.Busy) {
      rec.drop('agent-busy');
      return onDone?.();
    }
    if (this.inflight >= this.o.maxInflight || this.activeFlows >= this.o.http.flowCapacity) {
      rec.drop('inflight-cap');
      return onDone?.();
    }
    this.flags[slot] |= Flag.Busy;
    this.activeFlows++;
    this.seq[slot]++;
    const p = this.o.protocol;
    const flow = p.flows[p.weights.length === 1 ? 0 : this.o.rng.weighted(p.weights)];
    const end = (): void => {
      this.flags[slot] &= ~Flag.Busy;
      this.activeFlows--;
      onDone?.();
    };
    if (this.flags[slot] & Flag.Enrolled || p.enroll.length === 0) {
      this.run(slot, flow.steps, 0, undefined, intendedMs, true, end);
      return;
    }
    this.run(slot, p.enroll, 0, undefined, intendedMs, true, (ok) => {
      if (!ok) return end();
      this.flags[slot] |= Flag.Enrolled;
      this.enrolled++;
      this.run(slot, flow.steps, 0, undefined, this.o.now(), false, end);
    });
  }

  /** Steps[i…] in order; `first`: the fire's own send (already counted as scheduled). */
  private run(slot: number, steps: readonly CompiledStep[], i: number, prev: unknown, intendedMs: number, first: boolean, done: (ok: boolean) => void): void {
    while (i < steps.length && steps[i].when && !isPresent(readJsonPath(prev, steps[i].when!))) i++;
    if (i >= steps.length || this.closed) return done(true);
    const step = steps[i];
    const rec = this.o.recorder;
    if (!first) rec.scheduled();
    const st = this.st;
    st.agent = this.o.agents.at(slot);
    st.slot = slot;
    st.seq = this.seq[slot];
    // The send's one clock reading: its lag (sent - intended) and its {{now}}; building the request
    // in between costs well under a microsecond (bench/protocol.ts).
    const sentMs = this.o.now();
    st.nowMs = this.epochAtZeroMs + sentMs;
    st.prev = prev;
    const path = step.path.render(st);
    const headers = renderHeaders(step, st);
    const body = step.body ? step.body.render(st) : null;
    if (this.o.signer) this.sign(step, path, headers, body);
    rec.sent(sentMs - intendedMs);
    this.inflight++;
    this.o.http.request(slot, step.method, path, headers, body, step.readsBody, (status, text, errorCode) => {
      this.inflight--;
      const doneMs = this.o.now();
      const outcome = errorCode ? { ok: false, code: `${step.name}:${errorCode}`, doc: undefined } : this.check(step, slot, status, text);
      rec.done(step.name, intendedMs, sentMs, doneMs, outcome.ok, outcome.code);
      if (!outcome.ok) return done(false);
      this.run(slot, steps, i + 1, outcome.doc, doneMs, false, done);
    });
  }

  /** The signing hook sees the request's headers as a map and adds its own to the flat list. */
  private sign(step: CompiledStep, path: string, headers: string[], body: string | null): void {
    const map: Record<string, string> = {};
    for (let h = 0; h < headers.length; h += 2) map[headers[h]] = headers[h + 1];
    const extra = this.o.signer!({ method: step.method, path, headers: map, body, agentId: this.st.agent.id, agentIndex: this.st.agent.index });
    for (const k in extra) headers.push(k.toLowerCase(), extra[k]);
  }

  /** The step's checks and extractions on a response. */
  private check(step: CompiledStep, slot: number, status: number, text: string | null): { ok: boolean; code?: string; doc: unknown } {
    const okStatus = step.statuses ? step.statuses.includes(status) : status >= 200 && status < 300;
    if (!okStatus) return { ok: false, code: `${step.name}:http-${status}`, doc: undefined };
    if (!step.readsBody) return { ok: true, doc: undefined };
    let doc: unknown;
    try {
      doc = text ? JSON.parse(text) : undefined;
    } catch {
      if (step.exists || step.extract.length > 0) return { ok: false, code: `${step.name}:not-json`, doc: undefined };
    }
    if (step.exists) {
      const v = readJsonPath(doc, step.exists);
      if (v === undefined || v === null) return { ok: false, code: `${step.name}:missing-${step.exists.text}`, doc };
    }
    for (const x of step.extract) {
      const v = readJsonPath(doc, x.path);
      if (v === undefined || v === null) return { ok: false, code: `${step.name}:missing-${x.path.text}`, doc };
      this.vars.set(slot, x.index, typeof v === 'string' ? v : JSON.stringify(v));
    }
    return { ok: true, doc };
  }

  close(): void {
    this.closed = true;
  }
}
