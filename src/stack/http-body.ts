import type { IncomingMessage, ServerResponse } from 'node:http';

/** Raised while reading a request body; `status` is what to answer. */
export class BodyError extends Error {
  constructor(
    readonly status: 400 | 413,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Read a body of at most `maxBytes`, refusing early: a Content-Length over the limit is refused
 * before a byte is read, a chunked body as soon as it crosses the limit. After a refusal nothing
 * more is read: the answer (bodyOrReply) closes the connection instead of draining the rest.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > maxBytes) return Promise.reject(new BodyError(413, `body of ${declared} bytes is over the ${maxBytes}-byte limit`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    const onData = (c: Buffer): void => {
      if (failed) return;
      size += c.length;
      if (size > maxBytes) {
        failed = true;
        req.off('data', onData);
        req.pause();
        reject(new BodyError(413, `body over the ${maxBytes}-byte limit`));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      if (!failed) reject(err);
    });
  });
}

/** A bounded JSON body; malformed JSON is a BodyError(400). */
export async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const raw = await readBody(req, maxBytes);
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new BodyError(400, 'malformed JSON');
  }
}

/**
 * Read a bounded body for a handler: on a BodyError the answer (400/413) is sent here and
 * `undefined` comes back, so the handler just returns.
 */
export async function bodyOrReply<T>(req: IncomingMessage, res: ServerResponse, read: (req: IncomingMessage) => Promise<T>): Promise<T | undefined> {
  try {
    return await read(req);
  } catch (err) {
    if (err instanceof BodyError) {
      if (err.status === 413) closeAfter(req, res);
      sendError(req, res, err.status, err.message);
      return undefined;
    }
    throw err;
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

/**
 * Mark the answer as the connection's last: once it is sent the socket closes, and the rest of
 * the request body is never read (an over-limit body is not drained to its end).
 */
export function closeAfter(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('connection', 'close');
  res.once('finish', () => req.socket.destroySoon());
}

/** Answer an error; an unread body is drained (keep-alive) unless closeAfter() was called. */
export function sendError(req: IncomingMessage, res: ServerResponse, status: number, message: string): void {
  if (!req.complete && res.getHeader('connection') !== 'close') req.resume();
  sendJson(res, status, { error: message });
}
