import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';

/**
 * Write a file so that readers see the old content or the new, never half of it, and so that the
 * new content survives a power cut once this returns: the data goes to a temporary file in the
 * same folder, which is fsynced, renamed over `path`, and then the folder is fsynced (the rename
 * itself is a change to the folder). On any error the temporary file is removed and the old
 * content stays. `mode` applies to the new file (e.g. 0o600 for a file holding a secret).
 */
export function writeFileAtomic(path: string, data: string, opts: { mode?: number } = {}): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'wx', opts.mode ?? 0o666);
    const buf = Buffer.from(data);
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== null) closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dir);
}

/** Make a folder's entries (a rename, a new file) durable. Some file systems refuse; that is not an error. */
function fsyncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM') throw err;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
