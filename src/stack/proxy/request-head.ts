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
  /** Name, value, name, value…: names as sent, values without surrounding whitespace (as Node's rawHeaders). */
  rawHeaders: string[];
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
/** Anything but visible ASCII, SP, HTAB, and the CR LF pairs that split lines (checked apart). */
const OUTSIDE_SUBSET = /[^\t\x20-\x7e\r\n]/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const DIGITS = /^\d{1,15}$/;

/**
 * Header names validated once: the lower-case name, or '' for a name that is not a token. Clients
 * repeat the same few names, so the cache stays small (at most NAME_CACHE_MAX names).
 */
const names = new Map<string, string>();
const NAME_CACHE_MAX = 512;
function lowerName(raw: string): string {
  const known = names.get(raw);
  if (known !== undefined) return known;
  const lower = TOKEN.test(raw) ? raw.toLowerCase() : '';
  if (names.size < NAME_CACHE_MAX) names.set(raw, lower);
  return lower;
}

function trimOws(v: string): string {
  let a = 0;
  let b = v.length;
  while (a < b && (v.charCodeAt(a) === 32 || v.charCodeAt(a) === 9)) a++;
  while (b > a && (v.charCodeAt(b - 1) === 32 || v.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === v.length ? v : v.slice(a, b);
}

/** Parse the request starting at `buf[0]`; see the subset above. */
export function parseFastRequest(buf: Buffer, maxBodyBytes: number): ParseOutcome {
  const end = buf.indexOf(CRLFCRLF);
  if (end < 0) return buf.length > MAX_FAST_HEAD_BYTES ? HANDOFF : INCOMPLETE;
  if (end > MAX_FAST_HEAD_BYTES) return HANDOFF;
  const text = buf.toString('latin1', 0, end);
  if (OUTSIDE_SUBSET.test(text)) return HANDOFF;
  let eol = text.indexOf('\r\n');
  const line = eol < 0 ? text : text.slice(0, eol);
  if (line.indexOf('\r') >= 0 || line.indexOf('\n') >= 0) return HANDOFF;
  const m = REQUEST_LINE.exec(line);
  if (m === null) return HANDOFF;
  const rawHeaders: string[] = [];
  let hosts = 0;
  let contentLength = -1;
  while (eol >= 0) {
    const start = eol + 2;
    eol = text.indexOf('\r\n', start);
    const h = eol < 0 ? text.slice(start) : text.slice(start, eol);
    // A bare CR or LF inside a line, or a line starting with whitespace (obs-fold): Node's call.
    if (h.indexOf('\r') >= 0 || h.indexOf('\n') >= 0) return HANDOFF;
    const colon = h.indexOf(':');
    if (colon <= 0) return HANDOFF;
    const rawName = h.slice(0, colon);
    const name = lowerName(rawName);
    if (name === '') return HANDOFF; // not a token: also catches obs-fold and `name :`
    const value = trimOws(h.slice(colon + 1));
    switch (name) {
      case 'host':
        hosts++;
        break;
      case 'content-length':
        if (contentLength >= 0 || !DIGITS.test(value)) return HANDOFF;
        contentLength = Number(value);
        break;
      case 'connection':
        if (value.length !== 10 || value.toLowerCase() !== 'keep-alive') return HANDOFF;
        break;
      case 'transfer-encoding':
      case 'upgrade':
      case 'expect':
        return HANDOFF;
    }
    rawHeaders.push(rawName, value);
  }
  if (hosts !== 1) return HANDOFF;
  const bodyBytes = contentLength < 0 ? 0 : contentLength;
  if (bodyBytes > maxBodyBytes) return HANDOFF;
  const length = end + 4 + bodyBytes;
  if (buf.length < length) return INCOMPLETE;
  return { method: m[1], url: m[2], rawHeaders, body: buf.subarray(end + 4, length), length };
}
