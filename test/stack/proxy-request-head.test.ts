import { describe, expect, it } from 'vitest';
import { HANDOFF, INCOMPLETE, parseFastRequest, MAX_FAST_HEAD_BYTES } from '../../src/stack/proxy/request-head.js';

/**
 * The fast path's parser (src/stack/proxy/request-head.ts) takes only a strict subset of HTTP/1.1;
 * every other request is handed to node:http (HANDOFF), whose parser refuses what it refuses.
 */

const H = 'Host: x\r\n';
const parse = (text: string, max = 4096): ReturnType<typeof parseFastRequest> => parseFastRequest(Buffer.from(text, 'latin1'), max);

describe('parseFastRequest', () => {
  it('takes a plain POST with its body, and leaves a pipelined follow-up for the next call', () => {
    const text = `POST /agent/v1/checkin?x=1 HTTP/1.1\r\nHost: proxy:80\r\nContent-Length: 5\r\nX-Note:  a b \t\r\nConnection: Keep-Alive\r\n\r\nhello` + `GET /agent/next HTTP/1.1\r\n${H}\r\n`;
    const r = parse(text);
    if (typeof r === 'number') throw new Error(`expected a request, got ${r}`);
    expect([r.method, r.url, r.requestLine, r.lines, r.forwardedFor, r.body.toString(), r.length]).toEqual([
      'POST',
      '/agent/v1/checkin?x=1',
      'POST /agent/v1/checkin?x=1 HTTP/1.1',
      // Host, Content-Length and Connection are the forwarder's; the value is trimmed.
      'X-Note: a b\r\n',
      '',
      'hello',
      text.indexOf('GET'),
    ]);
  });

  it('says INCOMPLETE for a head or body still arriving', () => {
    expect(parse(`GET /agent/a HTTP/1.1\r\n${H}`)).toBe(INCOMPLETE);
    expect(parse(`POST /agent/a HTTP/1.1\r\n${H}Content-Length: 10\r\n\r\nabc`)).toBe(INCOMPLETE);
  });

  const HANDED: Array<[string, string]> = [
    ['cl-te', `POST /agent/a HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
    ['te alone', `POST /agent/a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
    ['cl-cl same', `POST /agent/a HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: 0\r\n\r\n`],
    ['cl plus sign', `POST /agent/a HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`],
    ['obs-fold', `GET /agent/a HTTP/1.1\r\n${H}X-Note: one\r\n two\r\n\r\n`],
    ['space before colon', `GET /agent/a HTTP/1.1\r\n${H}X-Note : one\r\n\r\n`],
    ['nul in value', `GET /agent/a HTTP/1.1\r\n${H}X-Note: a\0b\r\n\r\n`],
    ['bare cr in value', `GET /agent/a HTTP/1.1\r\n${H}X-Note: a\rb\r\n\r\n`],
    ['bare lf line end', `GET /agent/a HTTP/1.1\n${H}\r\n\r\n`],
    ['obs-text in value', `GET /agent/a HTTP/1.1\r\n${H}X-Note: caf\xe9\r\n\r\n`],
    ['http/1.0', `GET /agent/a HTTP/1.0\r\n${H}\r\n`],
    ['space in target', `GET /agent/a /agent/b HTTP/1.1\r\n${H}\r\n`],
    ['absolute-form', `GET http://x/agent/a HTTP/1.1\r\n${H}\r\n`],
    ['HEAD', `HEAD /agent/a HTTP/1.1\r\n${H}\r\n`],
    ['no host', 'GET /agent/a HTTP/1.1\r\nX-Note: a\r\n\r\n'],
    ['two hosts', `GET /agent/a HTTP/1.1\r\n${H}${H}\r\n`],
    ['upgrade', `GET /agent/a HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n`],
    ['connection close', `GET /agent/a HTTP/1.1\r\n${H}Connection: close\r\n\r\n`],
    ['expect', `POST /agent/a HTTP/1.1\r\n${H}Expect: 100-continue\r\nContent-Length: 1\r\n\r\nx`],
    ['body over the limit', `POST /agent/a HTTP/1.1\r\n${H}Content-Length: 4097\r\n\r\n`],
    ['head over the limit', `GET /agent/a HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(MAX_FAST_HEAD_BYTES)}\r\n\r\n`],
  ];

  it.each(HANDED)('hands over: %s', (_tag, text) => {
    expect(parse(text)).toBe(HANDOFF);
  });
});
