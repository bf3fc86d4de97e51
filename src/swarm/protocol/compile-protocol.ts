import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { compileJsonPath, type JsonPath } from './json-path.js';
import { compileTemplate, TemplateError, type CompiledTemplate, type Escape, type RenderState, type TemplateScope } from './template.js';
import { RESERVED_OP_NAMES, type ProtocolSpec, type StepDoc } from './types.js';

/**
 * A protocol compiled for sending: every template split into static text and slots once, every
 * JSON path parsed once, and for each step whether its response must be read at all (only when a
 * check, an extraction or the next step needs it). The loader (load-protocol.ts) runs this with a
 * `report` callback to collect every problem with its path; workers run it on a spec that already
 * passed, and any problem there throws.
 */

export type Segment = string | number;

export interface CompiledStep {
  /** The operation name: its histogram in the result and its thresholds (`enroll.p99`). */
  name: string;
  method: string;
  path: CompiledTemplate;
  headers: Array<[string, CompiledTemplate]>;
  body: CompiledTemplate | null;
  /** Accepted statuses; null = any 2xx. */
  statuses: readonly number[] | null;
  exists: JsonPath | null;
  extract: Array<{ index: number; path: JsonPath }>;
  when: JsonPath | null;
  /** The response body is parsed (a check, an extraction, or the next step reads it). */
  readsBody: boolean;
}

/** A step's headers for one send, as undici takes them flat: [name0, value0, name1, value1, …]. */
export function renderHeaders(step: CompiledStep, st: RenderState): string[] {
  const hs = step.headers;
  const out: string[] = new Array(hs.length * 2);
  for (let h = 0; h < hs.length; h++) {
    out[2 * h] = hs[h][0];
    out[2 * h + 1] = hs[h][1].render(st);
  }
  return out;
}

export interface CompiledFlow {
  name: string;
  weight: number;
  steps: CompiledStep[];
}

export interface CompiledMatch {
  path: JsonPath;
  equals: string | number | boolean;
}

export interface CompiledTunnel {
  path: CompiledTemplate;
  headers: Array<[string, CompiledTemplate]>;
  frame: { name: string; send: CompiledTemplate; reply: CompiledMatch | null };
  replies: Array<{ name: string; when: CompiledMatch; send: CompiledTemplate }>;
}

export interface CompiledProtocol {
  name: string;
  /** WebSocket agents: set instead of flows (which is then empty). */
  tunnel: CompiledTunnel | null;
  /** Enrolment variables, in AgentVarStore order. */
  agentVars: string[];
  enroll: CompiledStep[];
  flows: CompiledFlow[];
  weights: number[];
  signModule: string | null;
  clientCert: { caFile: string; caKeyFile: string; commonName: CompiledTemplate } | null;
}

export type Report = (at: Segment[], detail: string) => void;

const throwing: Report = (at, detail) => {
  throw new TemplateError(`${at.join('.')}: ${detail}`);
};

function path(report: Report, at: Segment[], text: string | undefined): JsonPath | null {
  if (text === undefined) return null;
  try {
    return compileJsonPath(text);
  } catch (err) {
    report(at, `expected ${(err as Error).message}, got ${JSON.stringify(text)}`);
    return null;
  }
}

function template(report: Report, at: Segment[], source: string, esc: Escape, scope: TemplateScope): CompiledTemplate | null {
  try {
    return compileTemplate(source, esc, scope);
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    report(at, err.detail);
    return null;
  }
}

const EMPTY: CompiledTemplate = { source: '', isStatic: true, usesPrevious: false, render: () => '' };

export function compileProtocol(spec: ProtocolSpec, report: Report = throwing): CompiledProtocol {
  const doc = spec.doc;
  const constants = new Map(Object.entries(spec.values));
  const agentVars: string[] = [];
  const names = new Map<string, string>();

  const step = (s: StepDoc, at: Segment[], first: boolean, enrolling: boolean): CompiledStep => {
    if (typeof s.name === 'string') {
      if ((RESERVED_OP_NAMES as readonly string[]).includes(s.name)) {
        report([...at, 'name'], `expected an operation name other than ${RESERVED_OP_NAMES.join(', ')} (the gate keeps those), got ${JSON.stringify(s.name)}`);
      } else if (names.has(s.name)) {
        report([...at, 'name'], `expected a step name not used before (${names.get(s.name)} has it), got ${JSON.stringify(s.name)}`);
      } else names.set(s.name, at.join('.').replace(/\.(\d+)/g, '[$1]'));
    }
    const scope: TemplateScope = { constants, agentVars: [...agentVars], hasPrevious: !first };
    const format = s.format ?? 'json';
    const headers: Array<[string, CompiledTemplate]> = [];
    for (const [k, v] of Object.entries(s.headers ?? {})) {
      headers.push([k.toLowerCase(), template(report, [...at, 'headers', k], v, 'raw', scope) ?? EMPTY]);
    }
    const body = s.body === undefined ? null : (template(report, [...at, 'body'], s.body, format === 'json' ? 'json' : 'raw', scope) ?? EMPTY);
    if (body && !headers.some(([k]) => k === 'content-type')) headers.push(['content-type', { ...EMPTY, render: () => (format === 'json' ? 'application/json' : 'text/plain') }]);
    if (s.when !== undefined && first) report([...at, 'when'], `expected "when" only on a step after another (the first step has no previous response), got ${JSON.stringify(s.when)}`);
    const extract: CompiledStep['extract'] = [];
    for (const [name, p] of Object.entries(s.extract ?? {})) {
      const where = [...at, 'extract', name];
      if (!enrolling) report(where, `expected extract only in enroll steps (flows read the previous response with {{prev PATH}}), got ${JSON.stringify(name)}`);
      else if (constants.has(name) || agentVars.includes(name)) report(where, `expected a variable name not declared or extracted before, got ${JSON.stringify(name)}`);
      const jp = path(report, where, p);
      // A bad path still declares the variable: its uses get no second, misleading problem.
      if (enrolling && !constants.has(name) && !agentVars.includes(name)) {
        if (jp) extract.push({ index: agentVars.length, path: jp });
        agentVars.push(name);
      }
    }
    const status = s.check?.status;
    return {
      name: s.name,
      method: s.method ?? (s.body === undefined ? 'GET' : 'POST'),
      path: template(report, [...at, 'path'], s.path, 'url', scope) ?? EMPTY,
      headers,
      body,
      statuses: status === undefined ? null : Array.isArray(status) ? status : [status],
      exists: path(report, [...at, 'check', 'exists'], s.check?.exists),
      extract,
      when: first ? null : path(report, [...at, 'when'], s.when),
      readsBody: s.check?.exists !== undefined || extract.length > 0,
    };
  };

  /** A step's response is read when the next step uses it. */
  const chain = (steps: CompiledStep[]): CompiledStep[] => {
    for (let i = 0; i + 1 < steps.length; i++) {
      const next = steps[i + 1];
      if (next.when || next.body?.usesPrevious || next.path.usesPrevious || next.headers.some(([, t]) => t.usesPrevious)) steps[i].readsBody = true;
    }
    return steps;
  };

  const enroll = chain((doc.enroll ?? []).map((s, i) => step(s, ['enroll', i], i === 0, true)));
  const flows = (doc.flows ?? []).map((f, fi) => ({
    name: f.name,
    weight: f.weight ?? 1,
    steps: chain((f.steps ?? []).map((s, i) => step(s, ['flows', fi, 'steps', i], i === 0, false))),
  }));
  const weights = flows.map((f) => f.weight);
  if (flows.length > 0 && weights.every((w) => !(w > 0))) report(['flows'], `expected a flow with a weight above 0, got weights ${JSON.stringify(weights)}`);
  if (doc.flows === undefined && doc.tunnel === undefined) report(['flows'], 'expected flows (HTTP agents) or tunnel (WebSocket agents), got neither');
  if (doc.flows !== undefined && doc.tunnel !== undefined) report(['tunnel'], 'expected flows (HTTP agents) or tunnel (WebSocket agents), got both');
  if (doc.tunnel !== undefined && doc.enroll !== undefined) report(['enroll'], 'expected enroll only with flows (a tunnel protocol connects with its headers), got enroll beside tunnel');
  const tunnel = doc.tunnel === undefined ? null : compileTunnel(doc.tunnel, constants, report, names);

  const fileAt = (at: Segment[], rel: string | undefined, what: string): string | null => {
    if (rel === undefined) return null;
    const abs = resolve(spec.baseDir, rel);
    if (!existsSync(abs)) report(at, `expected ${what} (relative to ${spec.file ? 'the protocol file' : "the scenario's folder"}), got ${JSON.stringify(rel)} (no such file)`);
    return abs;
  };
  const signModule = fileAt(['sign'], doc.sign, 'a JavaScript module file');
  const cc = doc.tls?.clientCert;
  let clientCert: CompiledProtocol['clientCert'] = null;
  if (cc) {
    const caFile = fileAt(['tls', 'clientCert', 'ca'], cc.ca, 'a CA certificate file (PEM)');
    const caKeyFile = fileAt(['tls', 'clientCert', 'caKey'], cc.caKey, "the CA's private key file (PEM)");
    const cn = template(report, ['tls', 'clientCert', 'commonName'], cc.commonName ?? '{{agent.id}}', 'raw', { constants, agentVars: [], hasPrevious: false });
    if (caFile && caKeyFile && cn) clientCert = { caFile, caKeyFile, commonName: cn };
  }
  return { name: doc.name, tunnel, agentVars, enroll, flows, weights, signModule, clientCert };
}

function compileTunnel(t: NonNullable<ProtocolSpec['doc']['tunnel']>, constants: ReadonlyMap<string, string>, report: Report, names: Map<string, string>): CompiledTunnel | null {
  const first: TemplateScope = { constants, agentVars: [], hasPrevious: false };
  const answering: TemplateScope = { ...first, hasPrevious: true };
  const at: Segment[] = ['tunnel'];
  const opName = (where: Segment[], name: string): void => {
    if ((RESERVED_OP_NAMES as readonly string[]).includes(name)) report(where, `expected an operation name other than ${RESERVED_OP_NAMES.join(', ')} (the gate keeps those), got ${JSON.stringify(name)}`);
    else if (names.has(name)) report(where, `expected a name not used before (${names.get(name)} has it), got ${JSON.stringify(name)}`);
    else names.set(name, where.slice(0, -1).join('.').replace(/\.(\d+)/g, '[$1]'));
  };
  const match = (where: Segment[], m: { path: string; equals: string | number | boolean } | undefined): CompiledMatch | null => {
    if (m === undefined) return null;
    const jp = path(report, [...where, 'path'], m.path);
    return jp ? { path: jp, equals: m.equals } : null;
  };
  const headers: Array<[string, CompiledTemplate]> = Object.entries(t.headers ?? {}).map(([k, v]) => [k.toLowerCase(), template(report, [...at, 'headers', k], v, 'raw', first) ?? EMPTY]);
  opName([...at, 'frame', 'name'], t.frame.name);
  const frame = { name: t.frame.name, send: template(report, [...at, 'frame', 'send'], t.frame.send, 'json', first) ?? EMPTY, reply: match([...at, 'frame', 'reply'], t.frame.reply) };
  const replies: CompiledTunnel['replies'] = [];
  (t.replies ?? []).forEach((r, i) => {
    const where = [...at, 'replies', i];
    opName([...where, 'name'], r.name);
    const when = match([...where, 'when'], r.when);
    const send = template(report, [...where, 'send'], r.send, 'json', answering);
    if (when && send) replies.push({ name: r.name, when, send });
  });
  return { path: template(report, [...at, 'path'], t.path ?? '', 'url', first) ?? EMPTY, headers, frame, replies };
}
