import type { PromSample } from './prometheus.js';

/**
 * A PromQL instant-vector selector, as a mapping file names a series:
 *
 *   selector := NAME [ '{' [ matcher { ',' matcher } [ ',' ] ] '}' ]
 *   matcher  := LABEL ( '=' | '!=' | '=~' | '!~' ) '"' value '"'
 *
 * `haproxy_backend_http_requests_total{proxy="agents"}`, `node_cpu_seconds_total{mode!="idle"}`,
 * `http_requests_total{code=~"5.."}`. As in PromQL, a regex matches the whole label value, and a
 * label the sample lacks has the value "" (so `{x!="a"}` matches a sample without `x`).
 */

export type MatchOp = '=' | '!=' | '=~' | '!~';

export interface LabelMatcher {
  label: string;
  op: MatchOp;
  value: string;
  /** For =~ and !~: the value anchored at both ends. */
  regex: RegExp | null;
}

export interface Selector {
  name: string;
  matchers: LabelMatcher[];
  /** As written, for messages and the result file. */
  text: string;
}

/** Why a selector does not parse: the message says what was expected, where. */
export class SelectorSyntaxError extends Error {}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const MATCHER = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*/y;

export function parseSelector(text: string): Selector {
  const s = text.trim();
  const name = NAME.exec(s)?.[0];
  if (!name) throw new SelectorSyntaxError('a metric name first ([a-zA-Z_:][a-zA-Z0-9_:]*)');
  const matchers: LabelMatcher[] = [];
  let at = name.length;
  if (at === s.length) return { name, matchers, text: s };
  if (s[at] !== '{') throw new SelectorSyntaxError(`"{" or the end after the metric name ${name}, got ${JSON.stringify(s.slice(at))}`);
  at++;
  for (;;) {
    while (s[at] === ' ') at++;
    if (s[at] === '}') {
      at++;
      break;
    }
    MATCHER.lastIndex = at;
    const m = MATCHER.exec(s);
    if (!m) throw new SelectorSyntaxError(`a label matcher like label="value" (=, !=, =~, !~) at ${JSON.stringify(s.slice(at)) || 'the end'}`);
    const value = m[3].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const op = m[2] as MatchOp;
    let regex: RegExp | null = null;
    if (op === '=~' || op === '!~') {
      try {
        regex = new RegExp(`^(?:${value})$`);
      } catch {
        throw new SelectorSyntaxError(`a valid regular expression for ${m[1]}${op}, got ${JSON.stringify(value)}`);
      }
    }
    matchers.push({ label: m[1], op, value, regex });
    at = MATCHER.lastIndex;
    if (s[at] === ',') at++;
    else if (s[at] !== '}') throw new SelectorSyntaxError(`"," or "}" after ${m[1]}${op}"${m[3]}", got ${at >= s.length ? 'the end' : JSON.stringify(s.slice(at))}`);
  }
  if (at !== s.length) throw new SelectorSyntaxError(`nothing after "}", got ${JSON.stringify(s.slice(at))}`);
  return { name, matchers, text: s };
}

/** True when every matcher holds for the sample's labels (the name is the caller's to compare). */
export function labelsMatch(sel: Selector, labels: PromSample['labels']): boolean {
  for (const m of sel.matchers) {
    const v = labels[m.label] ?? '';
    const ok = m.op === '=' ? v === m.value : m.op === '!=' ? v !== m.value : m.op === '=~' ? m.regex!.test(v) : !m.regex!.test(v);
    if (!ok) return false;
  }
  return true;
}

/** The selector matches this sample: its name, and every matcher. */
export function selects(sel: Selector, sample: PromSample): boolean {
  return sample.name === sel.name && labelsMatch(sel, sample.labels);
}
