import { isIP } from 'node:net';
import { InvalidArgumentError, RemoteTargetError } from './errors.js';

/** True for 127.0.0.0/8, ::1, ::ffff:127.x and the name localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h.startsWith('::ffff:127.');
  return false;
}

/**
 * Parse a target URL and refuse anything off loopback unless the user said --allow-remote.
 * `schemes` lists what the caller can speak.
 */
export function checkTarget(flag: string, value: string, schemes: readonly string[], allowRemote: boolean): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(flag, value, `a URL like ${schemes[0]}//127.0.0.1:8080`);
  }
  if (!schemes.includes(url.protocol)) throw new InvalidArgumentError(flag, value, `a URL with scheme ${schemes.map((s) => s.replace(':', '')).join(' or ')}`);
  if (!allowRemote && !isLoopbackHost(url.hostname)) throw new RemoteTargetError(flag, value);
  return url;
}
