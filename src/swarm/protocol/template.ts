import type { AgentIdentity } from '../../core/identity.js';
import type { Rng } from '../../core/random.js';
import type { AgentVarStore } from './agent-vars.js';
import { fill, parseSize, records } from './generators.js';
import { compileJsonPath, readJsonPath, type JsonPath } from './json-path.js';

/**
 * Templates in protocol files, compiled once into a list of parts: static text (declared `vars`
 * are constants, folded into it at compile time) and a few dynamic slots. Rendering walks the
 * list and concatenates; there is no parsing or regular expression per send.
 *
 *   {{agent.id}} {{agent.hostname}} {{agent.os}} {{agent.index}} {{agent.token}}
 *   {{agent.client}} {{agent.version}}                the agent's identity
 *   {{vars.NAME}}                                     a declared variable, or one enrolment extracted
 *   {{seq}}                                           the agent's flow count (1, 2, …)
 *   {{now}} {{now.s}}                                 wall clock, epoch ms / whole seconds
 *   {{rand N}}                                        a whole number in [0, N)
 *   {{fill SIZE}} {{records SIZE}}                    generated payloads (generators.ts)
 *   {{prev PATH}}                                     a value from the previous step's response
 *   {{#each PATH}}…{{/each}}                          repeat for each entry of a list or map in the
 *                                                     previous response, joined with ","; inside,
 *                                                     {{key}} (map key or list index), {{item}} and
 *                                                     {{item.PATH}} (e.g. {{item.id}})
 *
 * Inserted values are escaped for where the template sits (`escape`): inside a JSON body, strings
 * are escaped as JSON string content and other values go in as JSON; in a path, URL-encoded; in a
 * header, as they are. Identity fields need no escaping (their alphabet is fixed).
 */

export type Escape = 'json' | 'url' | 'raw';

/** What a template may refer to where it sits. */
export interface TemplateScope {
  /** Declared variables and their values (from --var or defaults). */
  constants: ReadonlyMap<string, string>;
  /** Enrolment variables available here, in store order. */
  agentVars: readonly string[];
  /** Whether a previous response exists here (not in a flow's or enrolment's first step). */
  hasPrevious: boolean;
}

/** The mutable state a render reads; one per driver, reused for every send. */
export class RenderState {
  agent!: AgentIdentity;
  slot = 0;
  store: AgentVarStore | null = null;
  seq = 0;
  nowMs = 0;
  rng!: Rng;
  prev: unknown = undefined;
  key = '';
  item: unknown = undefined;
}

const enum Kind {
  AgentId,
  Hostname,
  Os,
  Index,
  Token,
  Client,
  Version,
  AgentVar,
  Seq,
  NowMs,
  NowS,
  Rand,
  Prev,
  Each,
  Key,
  Item,
}

interface Slot {
  kind: Kind;
  n: number;
  path: JsonPath | null;
  body: Part[] | null;
  /** {{#each}}: its body's render function (made once, at compile time). */
  render: ((st: RenderState) => string) | null;
}
type Part = string | Slot;

const IDENTITY: Record<string, Kind> = {
  'agent.id': Kind.AgentId,
  'agent.hostname': Kind.Hostname,
  'agent.os': Kind.Os,
  'agent.index': Kind.Index,
  'agent.token': Kind.Token,
  'agent.client': Kind.Client,
  'agent.version': Kind.Version,
  seq: Kind.Seq,
  now: Kind.NowMs,
  'now.s': Kind.NowS,
};

/** A template that failed to compile: `detail` reads "expected …, got …". */
export class TemplateError extends Error {
  constructor(readonly detail: string) {
    super(detail);
  }
}

export interface CompiledTemplate {
  readonly source: string;
  /** True when nothing in it changes between sends. */
  readonly isStatic: boolean;
  /** Reads the previous response ({{prev}} or {{#each}}). */
  readonly usesPrevious: boolean;
  render(st: RenderState): string;
}

function escapeJson(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c) return JSON.stringify(s).slice(1, -1);
  }
  return s;
}

function escapeText(s: string, esc: Escape): string {
  return esc === 'json' ? escapeJson(s) : esc === 'url' ? encodeURIComponent(s) : s;
}

function valueText(v: unknown, esc: Escape): string {
  if (typeof v === 'string') return escapeText(v, esc);
  if (v === undefined) return '';
  if (esc === 'json') return JSON.stringify(v);
  return escapeText(typeof v === 'object' ? JSON.stringify(v) : String(v), esc);
}

const EXPRESSIONS = 'agent.id, agent.hostname, agent.os, agent.index, agent.token, agent.client, agent.version, vars.NAME, seq, now, now.s, rand N, fill SIZE, records SIZE, prev PATH, #each PATH … /each';

/** A compiled part list as two arrays: statics[0], slot 0, statics[1], slot 1, …, statics[n]. */
interface Split {
  statics: string[];
  slots: Slot[];
}

function split(parts: readonly Part[], esc: Escape): Split {
  const statics: string[] = [''];
  const slots: Slot[] = [];
  for (const p of parts) {
    if (typeof p === 'string') statics[statics.length - 1] += p;
    else {
      if (p.body) p.render = generate(split(p.body, esc), esc);
      slots.push(p);
      statics.push('');
    }
  }
  return { statics, slots };
}

/** Slots whose value is one plain expression on the state; the others call slotText. */
const INLINE: Partial<Record<Kind, string>> = {
  [Kind.AgentId]: 's.agent.id',
  [Kind.Hostname]: 's.agent.hostname',
  [Kind.Os]: 's.agent.os',
  [Kind.Index]: 's.agent.index',
  [Kind.Token]: 's.agent.token',
  [Kind.Client]: 's.agent.client',
  [Kind.Version]: 's.agent.agentVersion',
  [Kind.Seq]: 's.seq',
  [Kind.NowMs]: 'Math.floor(s.nowMs)',
  [Kind.NowS]: 'Math.floor(s.nowMs / 1000)',
};

/**
 * The render function, generated once per template: one concatenation expression with the static
 * parts as string literals (JSON.stringify of our own compiled text, never of anything a request
 * brings), identity fields read inline, and the other slots through slotText. V8 compiles it like
 * a hand-written template literal, which is what the fixed check-in is (payloads.ts); a loop over
 * parts cost about twice as much per send (bench/protocol.ts).
 */
function generate(t: Split, esc: Escape): (st: RenderState) => string {
  const terms: string[] = [JSON.stringify(t.statics[0])];
  t.slots.forEach((slot, i) => {
    const inline = INLINE[slot.kind];
    terms.push(inline ?? (slot.kind === Kind.Rand ? `s.rng.int(${slot.n})` : `text(slots[${i}], s, esc)`));
    if (t.statics[i + 1] !== '') terms.push(JSON.stringify(t.statics[i + 1]));
  });
  const factory = new Function('slots', 'text', 'esc', `return function render(s) { return ${terms.join(' + ')}; };`) as (
    slots: Slot[],
    text: typeof slotText,
    esc: Escape,
  ) => (st: RenderState) => string;
  return factory(t.slots, slotText, esc);
}

function slotText(p: Slot, st: RenderState, esc: Escape): string {
  switch (p.kind) {
    case Kind.AgentId:
      return st.agent.id;
    case Kind.Hostname:
      return st.agent.hostname;
    case Kind.Os:
      return st.agent.os;
    case Kind.Index:
      return String(st.agent.index);
    case Kind.Token:
      return st.agent.token;
    case Kind.Client:
      return st.agent.client;
    case Kind.Version:
      return st.agent.agentVersion;
    case Kind.AgentVar:
      return escapeText(st.store!.get(st.slot, p.n), esc);
    case Kind.Seq:
      return String(st.seq);
    case Kind.NowMs:
      return String(Math.floor(st.nowMs));
    case Kind.NowS:
      return String(Math.floor(st.nowMs / 1000));
    case Kind.Rand:
      return String(st.rng.int(p.n));
    case Kind.Prev:
      return valueText(readJsonPath(st.prev, p.path!), esc);
    case Kind.Key:
      return escapeText(st.key, esc);
    case Kind.Item:
      return valueText(p.path ? readJsonPath(st.item, p.path) : st.item, esc);
    case Kind.Each:
      return renderEach(p, st, esc);
  }
}

function renderEach(p: Slot, st: RenderState, esc: Escape): string {
  const v = readJsonPath(st.prev, p.path!);
  if (v === null || typeof v !== 'object') return '';
  let out = '';
  let first = true;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      st.key = String(i);
      st.item = v[i];
      out += (first ? '' : ',') + p.render!(st);
      first = false;
    }
  } else {
    for (const k in v as Record<string, unknown>) {
      st.key = k;
      st.item = (v as Record<string, unknown>)[k];
      out += (first ? '' : ',') + p.render!(st);
      first = false;
    }
  }
  return out;
}

function jsonPathOf(expr: string, text: string): JsonPath {
  try {
    return compileJsonPath(text);
  } catch (err) {
    throw new TemplateError(`expected ${(err as Error).message}, got "{{${expr}}}"`);
  }
}

/** Compile one template. Throws TemplateError naming the first bad expression. */
export function compileTemplate(source: string, esc: Escape, scope: TemplateScope): CompiledTemplate {
  const stack: Part[][] = [[]];
  let usesPrevious = false;
  let dynamic = false;
  const push = (p: Part): void => {
    const list = stack[stack.length - 1];
    if (typeof p !== 'string') dynamic = true;
    if (typeof p === 'string' && typeof list[list.length - 1] === 'string') list[list.length - 1] += p;
    else if (p !== '') list.push(p);
  };
  const slot = (kind: Kind, n = 0, path: JsonPath | null = null, body: Part[] | null = null): Slot => ({ kind, n, path, body, render: null });
  let i = 0;
  while (i < source.length) {
    const open = source.indexOf('{{', i);
    if (open < 0) {
      push(source.slice(i));
      break;
    }
    push(source.slice(i, open));
    const close = source.indexOf('}}', open + 2);
    if (close < 0) throw new TemplateError(`expected "}}" to close "{{" at character ${open + 1}, got the end of the template`);
    const expr = source.slice(open + 2, close).trim();
    i = close + 2;
    const got = `"{{${expr}}}"`;
    const inEach = stack.length > 1;
    const [head, ...rest] = expr.split(/\s+/);
    const arg = rest.join(' ');
    if (IDENTITY[expr] !== undefined) push(slot(IDENTITY[expr]));
    else if (head.startsWith('vars.') && rest.length === 0) {
      const name = head.slice(5);
      const constant = scope.constants.get(name);
      const index = scope.agentVars.indexOf(name);
      if (constant !== undefined) push(escapeText(constant, esc));
      else if (index >= 0) push(slot(Kind.AgentVar, index));
      else {
        const known = [...scope.constants.keys(), ...scope.agentVars].map((n) => `vars.${n}`);
        throw new TemplateError(`expected a declared variable (${known.join(', ') || 'none declared here'}), got ${got}`);
      }
    } else if (head === 'rand' && rest.length === 1) {
      const n = Number(arg);
      if (!Number.isInteger(n) || n < 1 || n > 2 ** 31) throw new TemplateError(`expected {{rand N}} with N a whole number from 1 to 2147483648, got ${got}`);
      push(slot(Kind.Rand, n));
    } else if ((head === 'fill' || head === 'records') && rest.length === 1) {
      const size = parseSize(arg);
      if (size === null || (head === 'records' && size < 2)) throw new TemplateError(`expected {{${head} SIZE}} with SIZE like 512, 4kb or 1mb (${head === 'records' ? '2 bytes' : '0'} to 16mb), got ${got}`);
      push(head === 'fill' ? fill(size) : records(size));
    } else if (head === 'prev' || head === '#each') {
      if (!scope.hasPrevious) throw new TemplateError(`expected a step after another (the first step has no previous response), got ${got}`);
      if (inEach) throw new TemplateError(`expected {{${head}}} outside {{#each}}…{{/each}} (no nesting), got ${got}`);
      const path = jsonPathOf(expr, arg);
      usesPrevious = true;
      if (head === 'prev') push(slot(Kind.Prev, 0, path));
      else {
        const body: Part[] = [];
        push(slot(Kind.Each, 0, path, body));
        stack.push(body);
      }
    } else if (expr === '/each') {
      if (!inEach) throw new TemplateError(`expected {{/each}} only after {{#each PATH}}, got ${got}`);
      stack.pop();
    } else if (expr === 'key' || expr === 'item' || expr.startsWith('item.') || expr.startsWith('item[')) {
      if (!inEach) throw new TemplateError(`expected {{${head}}} inside {{#each PATH}}…{{/each}}, got ${got}`);
      push(expr === 'key' ? slot(Kind.Key) : slot(Kind.Item, 0, expr === 'item' ? null : jsonPathOf(expr, '$' + expr.slice(4))));
    } else {
      throw new TemplateError(`expected a template expression (${EXPRESSIONS}), got ${got}`);
    }
  }
  if (stack.length > 1) throw new TemplateError(`expected {{/each}} to close {{#each}}, got the end of the template`);
  const parts = stack[0];
  if (!dynamic) {
    const text = parts.length === 0 ? '' : (parts[0] as string);
    return { source, isStatic: true, usesPrevious: false, render: () => text };
  }
  return { source, isStatic: false, usesPrevious, render: generate(split(parts, esc), esc) };
}
