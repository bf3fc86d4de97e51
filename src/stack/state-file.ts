import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-write.js';
import { InvalidArgumentError, StackError } from '../core/errors.js';

/**
 * The running stack's state file: how `rmmscale swarm`, `stack tokens` and a scenario with a
 * `target:` find the secret of a stack `stack up` started, without it on a command line (where
 * `ps` shows it to every user) or in a log.
 *
 * `stack up` writes one file per stack, `stack-<pid>.json`, mode 0600 in a folder of mode 0700:
 * $RMMSCALE_STATE_DIR, else $XDG_RUNTIME_DIR/rmmscale, else ~/.rmmscale. It holds the secret, the
 * launcher's PID and every node's URL, and is removed when the stack stops. A reader takes only
 * files owned by the current user, not readable by anyone else, whose launcher is still running,
 * and picks the stack by the URL it is asked to load.
 */

export const STATE_FORMAT = 'rmmscale.stack/1';
export const SECRET_ENV = 'RMMSCALE_SECRET';

export interface StackState {
  format: typeof STATE_FORMAT;
  /** The launcher (`stack up`). */
  pid: number;
  topology: string;
  entry: string;
  /** Every node's URL (origins). */
  urls: string[];
  secret: string;
  startedAt: string;
  /** `stack fault`: the stack up's loopback control endpoint (src/stack/control.ts); absent in older files. */
  control?: string;
}

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RMMSCALE_STATE_DIR) return env.RMMSCALE_STATE_DIR;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'rmmscale');
  return join(homedir(), '.rmmscale');
}

/** Write the state file (0600, folder 0700); returns its path. */
export function writeStackState(state: Omit<StackState, 'format'>, env: NodeJS.ProcessEnv = process.env): string {
  const dir = stateDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o077) !== 0) {
    throw new StackError(`${dir}: the state folder must be a directory owned by you with mode 0700 (it holds stack secrets); fix it or set RMMSCALE_STATE_DIR`);
  }
  removeStale(dir);
  const path = join(dir, `stack-${state.pid}.json`);
  writeFileAtomic(path, JSON.stringify({ format: STATE_FORMAT, ...state }, null, 2) + '\n', { mode: 0o600 });
  return path;
}

/** State files of launchers that died without removing them (SIGKILL). */
function removeStale(dir: string): void {
  for (const name of readdirSync(dir)) {
    const m = /^stack-(\d+)\.json$/.exec(name);
    if (m && !alive(Number(m[1]))) rmSync(join(dir, name), { force: true });
  }
}

export function removeStackState(path: string): void {
  rmSync(path, { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Stacks whose launcher still runs, from state files only this user can read. */
export function runningStacks(env: NodeJS.ProcessEnv = process.env): StackState[] {
  const dir = stateDir(env);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /^stack-\d+\.json$/.test(n));
  } catch {
    return [];
  }
  const out: StackState[] = [];
  for (const name of names) {
    const path = join(dir, name);
    try {
      const st = statSync(path);
      if (st.uid !== process.getuid?.() || (st.mode & 0o077) !== 0) continue; // not ours, or readable by others
      const s = JSON.parse(readFileSync(path, 'utf8')) as Partial<StackState>;
      if (s.format !== STATE_FORMAT || typeof s.pid !== 'number' || typeof s.secret !== 'string' || !Array.isArray(s.urls)) continue;
      if (!alive(s.pid)) continue; // a launcher that was SIGKILLed: its nodes are gone too
      out.push(s as StackState);
    } catch {
      // unreadable or half-written by someone else: not a stack we can use
    }
  }
  return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
}

const originOf = (u: string): string | null => {
  try {
    const url = new URL(u);
    return `${url.hostname}:${url.port || (url.protocol === 'https:' || url.protocol === 'wss:' ? '443' : '80')}`;
  } catch {
    return null;
  }
};

/** The running stack one of whose nodes listens at one of `targets` (host:port), or null. */
export function stackServing(targets: readonly string[], env: NodeJS.ProcessEnv = process.env): StackState | null {
  const wanted = new Set(targets.map(originOf).filter((o): o is string => o !== null));
  return runningStacks(env).find((s) => s.urls.some((u) => wanted.has(originOf(u) ?? ''))) ?? null;
}

/**
 * The secret to use against `targets`: `--secret`, else $RMMSCALE_SECRET, else the secret of the
 * running stack serving one of them; null when there is none of these.
 */
export function findSecret(flag: string, given: string | undefined, targets: readonly string[], env: NodeJS.ProcessEnv = process.env): string | null {
  const explicit = given ?? (env[SECRET_ENV] || undefined);
  if (explicit !== undefined) return checkSecret(given !== undefined ? flag : SECRET_ENV, explicit);
  return stackServing(targets, env)?.secret ?? null;
}

/** As findSecret, but none is an error: one line saying where a secret comes from. */
export function resolveSecret(flag: string, given: string | undefined, targets: readonly string[], env: NodeJS.ProcessEnv = process.env): string {
  const found = findSecret(flag, given, targets, env);
  if (found !== null) return found;
  const where = targets.length ? ` and no running \`rmmscale stack up\` serves ${targets.join(', ')}` : '';
  throw new InvalidArgumentError(flag, given, `the stack's secret (or env ${SECRET_ENV}): none was given${where} (state files in ${stateDir(env)})`);
}

/** A user-given secret: not empty (its value is never echoed in a message). */
export function checkSecret(flag: string, secret: string): string {
  if (secret.trim() === '') throw new InvalidArgumentError(flag, '(empty)', 'a secret that is not empty (a long random one: `openssl rand -base64 32`)');
  return secret;
}
