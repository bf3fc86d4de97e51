import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Backend } from './backend.js';
import { responseHeaders } from './headers.js';
import { headersOf, type UpstreamExchange } from './upstream.js';

/** Upstream failures answered 504 (the others: 502). */
export const TIMEOUT_CODES: ReadonlySet<string> = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/** A request body over the proxy's limit (answered 413). */
export class BodyTooLargeError extends Error {
  readonly code = 'ERR_BODY_TOO_LARGE';
  constructor(maxBytes: number) {
    super(`body over the ${maxBytes}-byte limit`);
  }
}

/** What one attempt on one backend came to. */
export type AttemptOutcome =
  /** The backend's response was relayed to the client (or the client went away meanwhile). */
  | { kind: 'relayed'; status: number }
  /** Nothing was written to the backend (the connection failed first): another backend may take it. */
  | { kind: 'not-sent'; code: string }
  /** The request was (at least partly) sent, then the exchange failed; it must not be repeated. */
  | { kind: 'failed'; code: string; error: Error; responseStarted: boolean };

/**
 * A request body as the proxy sends it: null (none), a Buffer (small bodies, read up front, so a
 * retry can resend it), or a stream read lazily from the client only once a backend connection
 * takes it — so an attempt that never connected leaves the client's body untouched for the next.
 */
export type ForwardBody = { kind: 'none' } | { kind: 'buffer'; data: Buffer } | { kind: 'stream'; req: IncomingMessage; maxBytes: number; declaredBytes: number | null };

/** Client bytes pulled for a streamed body, counted against the limit as they pass. */
async function* lazyBody(req: IncomingMessage, maxBytes: number): AsyncGenerator<Buffer> {
  let size = 0;
  // destroyOnReturn false: when the upstream stops early, the client socket stays usable for an answer.
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new BodyTooLargeError(maxBytes);
    yield chunk;
  }
}

/**
 * Forward one request to one backend with undici's dispatch API, streaming the response to the
 * client with backpressure (the upstream is paused while the client's socket is full). Whether
 * the request was sent is known exactly: undici calls onRequestStart right before it writes the
 * request on a connected socket, so an error before that is `not-sent`.
 */
export function forwardOnce(b: Backend, req: IncomingMessage, res: ServerResponse, headers: Record<string, string>, body: ForwardBody): Promise<AttemptOutcome> {
  return new Promise((resolve) => {
    let sent = false;
    let settled = false;
    let controller: Dispatcher.DispatchController | null = null;
    let status = 0;
    const onClientClose = (): void => {
      if (!res.writableFinished) controller?.abort(new Error('client closed the connection'));
    };
    const settle = (o: AttemptOutcome): void => {
      if (settled) return;
      settled = true;
      res.off('close', onClientClose);
      resolve(o);
    };
    res.once('close', onClientClose);

    let dispatchBody: Buffer | AsyncIterable<Buffer> | null = null;
    let h = headers;
    if (body.kind === 'buffer') dispatchBody = body.data;
    else if (body.kind === 'stream') {
      dispatchBody = lazyBody(body.req, body.maxBytes);
      if (body.declaredBytes !== null) h = { ...headers, 'content-length': String(body.declaredBytes) };
    }

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        sent = true;
        controller = c;
        if (res.destroyed) c.abort(new Error('client closed the connection'));
      },
      onResponseStart(c, statusCode, upstreamHeaders) {
        if (statusCode < 200) return; // 1xx: informational, not relayed
        status = statusCode;
        res.writeHead(statusCode, responseHeaders(upstreamHeaders as Record<string, string | string[] | undefined>, b.name));
        void c;
      },
      onResponseData(c, chunk) {
        if (!res.write(chunk)) {
          c.pause();
          res.once('drain', () => c.resume());
        }
      },
      onResponseEnd() {
        res.end();
        settle({ kind: 'relayed', status });
      },
      onResponseError(_c, err) {
        const code = (err as NodeJS.ErrnoException).code ?? err.name;
        if (res.destroyed && sent) return settle({ kind: 'relayed', status });
        if (!sent) return settle({ kind: 'not-sent', code });
        settle({ kind: 'failed', code, error: err, responseStarted: res.headersSent });
      },
    };
    // undici takes async iterables as bodies (docs: DispatchOptions.body); its types omit them.
    const opts = { path: req.url ?? '/', method: req.method ?? 'GET', headers: h, body: dispatchBody as Buffer | null, blocking: true };
    b.pool.dispatch(opts, handler);
  });
}

/**
 * Forward one request whose body is in memory (none, or a buffered one) over the backend's lean
 * upstream pool (upstream.ts): the request goes out as one write, a response declared up to
 * BUFFER_RESPONSE_BYTES comes back to the client as one write, larger ones stream with
 * backpressure. Same outcomes as forwardOnce.
 */
export function forwardBuffered(b: Backend, req: IncomingMessage, res: ServerResponse, request: Buffer): Promise<AttemptOutcome> {
  return new Promise((resolve) => {
    let status = 0;
    let headers: OutgoingHttpHeaders | null = null;
    let settled = false;
    const settle = (o: AttemptOutcome): void => {
      if (settled) return;
      settled = true;
      res.off('close', onClientClose);
      resolve(o);
    };
    const onClientClose = (): void => {
      if (res.writableFinished) return;
      if (ex.conn) {
        if (ex.conn.ex === ex) ex.conn.abort();
      } else b.fast.cancel(ex);
      settle({ kind: 'relayed', status });
    };
    const onDrain = (): void => ex.conn?.resume();
    const ex: UpstreamExchange = {
      sent: false,
      conn: null,
      onHead(s, lines) {
        status = s;
        headers = headersOf(lines);
        headers['x-served-by'] = b.name;
      },
      onData(chunk) {
        if (!res.headersSent) res.writeHead(status, headers!);
        // (chunk is a view into the upstream's shared read buffer: res keeps a copy)
        if (res.write(Buffer.from(chunk))) return true;
        res.once('drain', onDrain);
        return false;
      },
      onEnd(body) {
        if (!res.headersSent) res.writeHead(status, headers!);
        // Head and body leave in one writev (Node corks the socket around end()); body is a
        // view into the upstream's shared read buffer, so res keeps a copy.
        if (body) res.end(Buffer.from(body));
        else res.end();
        settle({ kind: 'relayed', status });
      },
      onError(code) {
        if (res.destroyed && ex.sent) return settle({ kind: 'relayed', status });
        if (!ex.sent) return settle({ kind: 'not-sent', code });
        settle({ kind: 'failed', code, error: Object.assign(new Error(`upstream ${code}`), { code }), responseStarted: res.headersSent });
      },
    };
    res.once('close', onClientClose);
    b.fast.send(request, ex, req.method === 'HEAD');
  });
}
