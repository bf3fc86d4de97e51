import type { IncomingMessage, ServerResponse } from 'node:http';
import { QueueFullError } from './capacity.js';
import { BodyError, sendError } from './http-body.js';
import { LeaseFencedError, StoreUnavailableError } from './store/errors.js';

/**
 * How the web and relay roles answer errors. One mapping from the errors a handler may throw to
 * HTTP answers:
 *
 *   BodyError                                its status: 400 malformed JSON, 413 over the limit
 *   StoreUnavailableError, QueueFullError    503 + retry-after: 1 (the database is down or
 *                                            overloaded, so agents back off instead of counting
 *                                            a server error)
 *   LeaseFencedError                         409 (a DBAgent write under a lease term that is over)
 *   anything else                            rethrown: the runtime answers 500
 */

/** An error answered before the body was read keeps the connection only for small bodies. */
const DRAIN_MAX_BYTES = 64 * 1024;

/** Answer an error; when the body is still unread and large or of unknown size, close instead of draining it. */
export function refuse(req: IncomingMessage, res: ServerResponse, status: number, message: string, extra: Record<string, string> = {}): void {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (!req.complete && !(declared <= DRAIN_MAX_BYTES)) {
    res.setHeader('connection', 'close');
    res.once('finish', () => req.destroy());
  }
  for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
  sendError(req, res, status, message);
}

/** Answer a known error per the table above; rethrow any other, or any once the headers are sent. */
export function refuseError(req: IncomingMessage, res: ServerResponse, err: unknown): void {
  if (res.headersSent) throw err;
  if (err instanceof BodyError) return refuse(req, res, err.status, err.message);
  if (err instanceof StoreUnavailableError || err instanceof QueueFullError) return refuse(req, res, 503, err.message, { 'retry-after': '1' });
  if (err instanceof LeaseFencedError) return refuse(req, res, 409, err.message);
  throw err;
}
