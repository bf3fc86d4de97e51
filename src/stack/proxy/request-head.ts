import { isOws, namePositionMemo, trimOws } from './head-lines.js';

/**
 * The proxy's fast-path request parser (proxy/fast-front.ts). It recognises a deliberately
 * narrow subset of HTTP/1.1 and says `handoff` for everything else, so Node's own parser (and the
 * proxy's node:http path behind it) sees, and refuses, every request it refuses today. The subset,
 * all of which must hold for a request to be taken here:
 *
 *   request line   `GET|POST|PUT|PATCH|DELETE SP origin-form SP HTTP/1.1`, the target made only
 *                  of unreserved, sub-delim, `:@/?%` characters
 *   header lines   `token:OWS value OWS`, the value visible ASCII, SP or HTAB only (no obs-text,
 *                  no CR, LF or NUL); no line starts with whitespace (obs-fold); every line ends
 *                  in CRLF; at most MAX_FAST_HEAD_BYTES in all
 *   framing        no Transfer-Encoding; at most one Content-Length, digits only, at most
 *                  `maxBodyBytes`; the whole body already received
 *   others         exactly one Host; no Upgrade, no Expect; Connection absent or `keep-alive`
 *
 * A request split over two reads is `incomplete`: the fast path hands it over too (Node then
 * applies its header and request timeouts), so no timer is needed here.
 */

/** Node's default --max-http-header-size; past it Node answers 431. */
export const MAX_FAST_HEAD_BYTES = 16 * 1024;

export interface FastRequest {
  method: string;
  url: string;
  /**
   * The request line as received (`METHOD target HTTP/1.1`), without its CRLF. The subset makes
   * it safe to pass on verbatim.
   */
  requestLine: string;
  /**
   * The end-to-end header lines to forward, each `name: value\r\n`, in the client's order: every
   * line but the hop-by-hop ones (Connection, Keep-Alive, Proxy-*, TE, Trailer), Host,
   * Content-Length, X-Forwarded-For and X-Forwarded-Proto, which the forwarder sets itself. Lines
   * are passed on as received where their value has no surrounding whitespace beyond one space
   * after the colon, else rebuilt with the value trimmed.
   */
  lines: string;
  /** The client's own X-Forwarded-For values, joined with `, `; '' when it sent none. */
  forwardedFor: string;
  /** The body's bytes (possibly empty), a view into the buffer parsed. */
  body: Buffer;
  /** Bytes of the buffer this request took (head and body). */
  length: number;
}

export const HANDOFF = 0;
export const INCOMPLETE = 1;
export type ParseOutcome = FastRequest | typeof HANDOFF | typeof INCOMPLETE;

const CRLFCRLF = Buffer.from('\r\n\r\n');
const REQUEST_LINE = /^(GET|POST|PUT|PATCH|DELETE) (\/[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*) HTTP\/1\.1$/;
/** Anything but visible ASCII, SP, HTAB, CR and LF (a CR or LF outside a CRLF pair is caught line by line). */
const OUTSIDE_SUBSET = /[^\t\x20-\x7e\r\n]/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const DIGITS = /^\d{1,15}$/;

/** What the parser does with a header, by lower-case name. */
const enum Role {
  Forward,
  /** Hop-by-hop, or set by the forwarder: not passed on. */
  Drop,
  Host,
  ContentLength,
  Connection,
  ForwardedFor,
  /** Transfer-Encoding, Upgrade, Expect: outside the subset. */
  Handoff,
  /** Not a token. */
  Bad,
}

const ROLES: ReadonlyMap<string, Role> = new Map([
  ['host', Role.Host],
  ['content-length', Role.ContentLength],
  ['connection', Role.Connection],
  ['x-forwarded-for', Role.ForwardedFor],
  ['keep-alive', Role.Drop],
  ['proxy-connection', Role.Drop],
  ['proxy-authenticate', Role.Drop],
  ['proxy-authorization', Role.Drop],
  ['te', Role.Drop],
  ['trailer', Role.Drop],
  ['x-forwarded-proto', Role.Drop],
  ['transfer-encoding', Role.Handoff],
  ['upgrade', Role.Handoff],
  ['expect', Role.Handoff],
]);

/**
 * Header names classified once, as sent (any case). Clients repeat the same few names, so the
 * cache stays small (at most NAME_CACHE_MAX names).
 */
const names = new Map<string, Role>();
const NAME_CACHE_MAX = 512;
function roleOf(raw: string): Role {
  const known = names.get(raw);
  if (known !== undefined) return known;
  const role = TOKEN.test(raw) ? (ROLES.get(raw.toLowerCase()) ?? Role.Forward) : Role.Bad;
  if (names.size < NAME_CACHE_MAX) names.set(raw, role);
  return role;
}

const roleAt = namePositionMemo(roleOf);

/**
 * Where the line starting at `start` ends (its CR), or -1 when a bare CR or LF comes first. `text`
 * ends in CRLF, so there is always a CR.
 */
function lineEnd(text: string, start: number): number {
  const cr = text.indexOf('\r', start);
  return text.charCodeAt(cr + 1) === 10 && text.indexOf('\n', start) === cr + 1 ? cr : -1;
}

/** Parse the request starting at `buf[0]`; see the subset above. */
export function parseFastRequest(buf: Buffer, maxBodyBytes: number): ParseOutcome {
  const end = buf.indexOf(CRLFCRLF);
  if (end < 0) return buf.length > MAX_FAST_HEAD_BYTES ? HANDOFF : INCOMPLETE;
  if (end > MAX_FAST_HEAD_BYTES) return HANDOFF;
  // The head plus its first CRLF, so every line, the last too, ends in CRLF.
  const text = buf.toString('latin1', 0, end + 2);
  if (OUTSIDE_SUBSET.test(text)) return HANDOFF;
  const firstEol = lineEnd(text, 0);
  if (firstEol < 0) return HANDOFF;
  const requestLine = text.slice(0, firstEol);
  const m = REQUEST_LINE.exec(requestLine);
  if (m === null) return HANDOFF;
  let lines = '';
  /** Start of the run of lines forwarded as received, not yet copied into `lines`. */
  let run = firstEol + 2;
  let forwardedFor = '';
  let hosts = 0;
  let contentLength = -1;
  let start = run;
  let line = 0;
  while (start < text.length) {
    const eol = lineEnd(text, start);
    if (eol < 0) return HANDOFF;
    const colon = text.indexOf(':', start);
    // No colon in the line, or (obs-fold, `name :`) a name that is not a token.
    if (colon < 0 || colon > eol) return HANDOFF;
    const role = roleAt(text, start, colon, line++);
    const next = eol + 2;
    if (role === Role.Forward) {
      // As received when the value is `: value` with no other surrounding whitespace.
      const plain = text.charCodeAt(colon + 1) === 32 && colon + 2 < eol && !isOws(text.charCodeAt(colon + 2)) && !isOws(text.charCodeAt(eol - 1));
      if (!plain) {
        lines += `${text.slice(run, start)}${text.slice(start, colon)}: ${trimOws(text.slice(colon + 1, eol))}\r\n`;
        run = next;
      }
      start = next;
      continue;
    }
    if (role === Role.Bad || role === Role.Handoff) return HANDOFF;
    if (run < start) lines += text.slice(run, start);
    run = next;
    switch (role) {
      case Role.Host:
        hosts++;
        break;
      case Role.ContentLength: {
        const value = trimOws(text.slice(colon + 1, eol));
        if (contentLength >= 0 || !DIGITS.test(value)) return HANDOFF;
        contentLength = Number(value);
        break;
      }
      case Role.Connection: {
        const value = trimOws(text.slice(colon + 1, eol));
        if (value.length !== 10 || value.toLowerCase() !== 'keep-alive') return HANDOFF;
        break;
      }
      case Role.ForwardedFor: {
        const value = trimOws(text.slice(colon + 1, eol));
        forwardedFor = forwardedFor ? `${forwardedFor}, ${value}` : value;
        break;
      }
    }
    start = next;
  }
  if (run < text.length) lines += text.slice(run);
  if (hosts !== 1) return HANDOFF;
  const bodyBytes = contentLength < 0 ? 0 : contentLength;
  if (bodyBytes > maxBodyBytes) return HANDOFF;
  const length = end + 4 + bodyBytes;
  if (buf.length < length) return INCOMPLETE;
  return { method: m[1], url: m[2], requestLine, lines, forwardedFor, body: buf.subarray(end + 4, length), length };
}
