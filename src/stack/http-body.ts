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
 * before a byte is read, a chunked body as soon as it crosses the limit.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > maxBytes) {
    req.resume();
    return Promise.reject(new BodyError(413, `body of ${declared} bytes is over the ${maxBytes}-byte limit`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > maxBytes) {
        failed = true;
        req.resume();
        reject(new BodyError(413, `body over the ${maxBytes}-byte limit`));
        return;
      }
      chunks.push(c);
    });
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

/** Answer an error without leaving the request body unread (so keep-alive stays usable). */
export function sendError(req: IncomingMessage, res: ServerResponse, status: number, message: string): void {
  if (!req.complete) req.resume();
  sendJson(res, status, { error: message });
}
