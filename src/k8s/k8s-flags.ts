import { InvalidArgumentError } from '../core/errors.js';

/**
 * The flags of `rmmscale k8s render`, checked before anything is rendered: each bad value is one
 * line naming the flag, the value and what is allowed (exit 2).
 */

/** Shards an Indexed Job runs at once here: parallelism = completions = n. */
export const MAX_SHARDS = 1000;

export function parseShards(v: unknown): number {
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : typeof v === 'number' ? v : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_SHARDS) throw new InvalidArgumentError('--shards', v, `a whole number of shards from 1 to ${MAX_SHARDS}`);
  return n;
}

/** RFC 1123 label, as Kubernetes requires of a namespace: lower-case letters, digits and '-', at most 63. */
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function parseNamespace(v: unknown): string {
  if (typeof v !== 'string' || v.length > 63 || !DNS1123_LABEL.test(v)) {
    throw new InvalidArgumentError('--namespace', v, 'a Kubernetes namespace: at most 63 lower-case letters, digits or "-", starting and ending with a letter or digit');
  }
  return v;
}

/**
 * An image reference as the distribution spec writes it: [HOST[:PORT]/]PATH[:TAG][@DIGEST], where
 * PATH is lower-case components separated by '/', a tag is at most 128 of [A-Za-z0-9_.-] not
 * starting with '.' or '-', and a digest is ALGORITHM:HEX.
 */
const HOST = '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\\[[0-9a-fA-F:]+\\])(?::[0-9]{1,5})?';
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const IMAGE = new RegExp(`^(?:${HOST}/)?${COMPONENT}(?:/${COMPONENT})*(?::${TAG})?(?:@${DIGEST})?$`);

export function parseImage(v: unknown): string {
  if (typeof v !== 'string' || v.length > 255 || !IMAGE.test(v)) {
    throw new InvalidArgumentError('--image', v, 'an image reference like registry.example.com/team/rmmscale:0.1.0 ([HOST[:PORT]/]PATH[:TAG][@sha256:DIGEST], lower-case path)');
  }
  return v;
}

export const ACCESS_MODES = ['ReadWriteMany', 'ReadWriteOnce'] as const;
export type AccessMode = (typeof ACCESS_MODES)[number];

export function parseAccessMode(v: unknown): AccessMode {
  if (typeof v !== 'string' || !(ACCESS_MODES as readonly string[]).includes(v)) throw new InvalidArgumentError('--access-mode', v, `${ACCESS_MODES.join(' or ')}`);
  return v as AccessMode;
}

/** A StorageClass name: a DNS-1123 subdomain (lower-case, digits, '-' and '.', at most 253). */
export function parseStorageClass(v: unknown): string {
  const sub = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
  if (typeof v !== 'string' || v.length > 253 || !sub.test(v)) throw new InvalidArgumentError('--storage-class', v, 'a StorageClass name (lower-case letters, digits, "-" and ".")');
  return v;
}

/** A scenario name made into the prefix of every object's name: a DNS-1123 label short enough for pod names. */
export function objectBaseName(scenarioName: string): string {
  const slug = scenarioName
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 30)
    .replace(/-+$/g, '');
  return slug ? `rmmscale-${slug}` : 'rmmscale';
}
