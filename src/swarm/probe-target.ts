import { connect } from 'node:net';
import { TargetUnreachableError } from '../core/errors.js';

/** Fail fast, with a clear line, when nothing listens at the target. */
export async function probeTarget(target: string, timeoutMs = 3000): Promise<void> {
  const url = new URL(target);
  const port = Number(url.port) || (url.protocol === 'https:' || url.protocol === 'wss:' ? 443 : 80);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  await new Promise<void>((resolve, reject) => {
    const sock = connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new TargetUnreachableError(target, `no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.end();
      resolve();
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = err.code === 'ECONNREFUSED' ? 'connection refused (is the stack running?)' : `${err.code ?? err.message}`;
      reject(new TargetUnreachableError(target, why));
    });
  });
}
