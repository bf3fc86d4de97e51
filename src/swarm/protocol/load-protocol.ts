import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { yamlOffsetOf } from '../../core/schema-words.js';
import { InvalidArgumentError, ValidationError } from '../../core/errors.js';
import { compileProtocol, type Segment } from './compile-protocol.js';
import { protocolSchemaProblems, type SchemaProblem } from './schema-problems.js';
import type { ProtocolDoc, ProtocolSpec } from './types.js';

/**
 * Protocol files: YAML, checked once against schemas/protocol.schema.json, then compiled (every
 * template and JSON path) so that a bad template fails before anything runs, with the scenario
 * loader's format, one line per problem:
 *
 *   protocols/x.yaml:14 flows[1].steps[0].body: expected a declared variable (vars.node_key), got "{{vars.nodekey}}"
 *
 * `--var NAME=VALUE` fills the declared `vars`; a variable without a default must be given.
 */

/** `['flows', 1, 'steps', 0]` → `flows[1].steps[0]`. */
export function formatProtocolPath(at: readonly Segment[]): string {
  let out = '';
  for (const s of at) out += typeof s === 'number' ? `[${s}]` : out ? `.${s}` : s;
  return out || '(top level)';
}

/** `--var` values: NAME=VALUE each. */
export function parseVarArgs(args: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const a of args) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(a);
    if (!m) throw new InvalidArgumentError('--var', a, 'NAME=VALUE, e.g. --var enroll_secret=s3cret');
    out.set(m[1], m[2]);
  }
  return out;
}

export interface ProtocolCheck {
  spec: ProtocolSpec | null;
  /** Problems in the document, each with its path inside it. */
  problems: SchemaProblem[];
  /** Problems with --var (not in the document). */
  flagProblems: string[];
}

/**
 * Validate a protocol document (parsed YAML) and resolve its variables. `file` is the protocol
 * file, or null for one written inline (then `baseDir` is the scenario's folder).
 */
export function checkProtocol(data: unknown, file: string | null, baseDir: string, vars: ReadonlyMap<string, string>): ProtocolCheck {
  const problems = protocolSchemaProblems(data);
  const schemaBroken = problems.length > 0;
  const flagProblems: string[] = [];
  const doc = data as ProtocolDoc;
  const declared = doc !== null && typeof doc === 'object' && doc.vars !== null && typeof doc.vars === 'object' ? doc.vars : {};
  const values: Record<string, string> = {};
  for (const [name, v] of Object.entries(declared)) {
    const given = vars.get(name) ?? (v && typeof v === 'object' ? v.default : undefined);
    if (given === undefined) problems.push({ at: ['vars', name], detail: `expected a value from --var ${name}=VALUE (it has no default), got nothing` });
    // Templates still compile against it, so that a missing value is not also an unknown variable.
    values[name] = given ?? '';
  }
  for (const [name, value] of vars) {
    if (!(name in declared)) {
      const names = Object.keys(declared);
      flagProblems.push(`--var: expected NAME=VALUE with NAME a variable the protocol declares (${names.join(', ') || 'it declares none'}), got ${JSON.stringify(`${name}=${value}`)}`);
    }
  }
  if (schemaBroken) return { spec: null, problems, flagProblems };
  const spec: ProtocolSpec = { name: doc.name, file, baseDir, doc, values };
  compileProtocol(spec, (at, detail) => problems.push({ at, detail }));
  return { spec: problems.length === 0 && flagProblems.length === 0 ? spec : null, problems, flagProblems };
}

/** The line of the deepest node on the path that exists (a key's line for map entries). */
export function yamlLineOf(doc: Document, lineCounter: LineCounter, at: readonly Segment[]): number {
  return Math.max(1, lineCounter.linePos(yamlOffsetOf(doc, at)).line);
}

/** Read, validate and resolve a protocol file; throws ValidationError listing every problem. */
export function loadProtocolFile(file: string, varArgs: readonly string[] = [], field = '--protocol'): ProtocolSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(field, file, `a readable protocol file (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  const vars = parseVarArgs(varArgs);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ValidationError(doc.errors.map((e) => `${file}:${Math.max(1, lineCounter.linePos(e.pos[0]).line)} (syntax): expected valid YAML, got "${e.message.split('\n')[0].trim()}"`));
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (err) {
    throw new ValidationError([`${file}:1 (syntax): expected valid YAML, got "${(err as Error).message}"`]);
  }
  const abs = resolve(file);
  const check = checkProtocol(data, abs, dirname(abs), vars);
  if (check.spec) return check.spec;
  const lines = check.problems
    .map((p, i) => ({ line: yamlLineOf(doc, lineCounter, p.at), i, text: `${formatProtocolPath(p.at)}: ${p.detail}` }))
    .sort((a, b) => a.line - b.line || a.i - b.i)
    .map((p) => `${file}:${p.line} ${p.text}`);
  throw new ValidationError([...new Set([...lines, ...check.flagProblems])]);
}
