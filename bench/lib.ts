import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SwarmResult } from '../src/swarm/result.js';

/** Shared helpers for benchmarks: child servers, the real CLI, medians. Everything ends by PID. */

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = join(ROOT, 'bin', 'rmmscale');

export interface ChildServer {
  url: string;
  port: number;
  proc: ChildProcess;
  served(): Promise<number>;
  stop(): Promise<void>;
}

export async function startMinimalServer(): Promise<ChildServer> {
  const proc = fork(fileURLToPath(new URL('./fixtures/minimal-server.js', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('message', (m: { type: string; port: number }) => resolve(m.port));
    proc.once('exit', (c) => reject(new Error(`minimal server exited ${c}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    proc,
    served: () =>
      new Promise((resolve) => {
        proc.once('message', (m: { served: number }) => resolve(m.served));
        proc.send({ type: 'count' });
      }),
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

/** Run `rmmscale swarm` for real and return its result document. */
export async function runSwarmCli(args: string[], timeoutMs: number): Promise<SwarmResult> {
  const dir = mkdtempSync(join(tmpdir(), 'rmmscale-bench-'));
  const json = join(dir, 'r.json');
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, 'swarm', ...args, '--json', json], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CI: '1' } });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('close', (code) => {
        clearTimeout(t);
        if (code === 0 || code === 4) resolve();
        else reject(new Error(`rmmscale swarm exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`));
      });
    });
    return JSON.parse(readFileSync(json, 'utf8')) as SwarmResult;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface BenchRow {
  bench: string;
  metric: string;
  rmmscale: number;
  peer: number;
  peerName: string;
  ratio: number;
  target: string;
  pass: boolean;
  note?: string;
}

/** `--name N` from argv, or the default. */
export function argNum(args: readonly string[], name: string, dflt: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
}

/** One benchmark's rows, printed as `npm run bench` prints them. */
export function formatRows(rows: readonly BenchRow[]): string {
  return rows
    .map((r) => {
      const peer = Number.isNaN(r.peer) ? '' : `  ${r.peerName} ${r.peer}`;
      const ratio = Number.isNaN(r.ratio) ? '' : `  ratio ${r.ratio}`;
      return `${r.pass ? 'PASS' : 'MISS'}  ${r.metric}: rmmscale ${r.rmmscale}${peer}${ratio}  (target ${r.target})\n${r.note ? `      ${r.note}\n` : ''}`;
    })
    .join('');
}

/**
 * Run a benchmark module on its own (`node dist/bench/NAME.js …`) when it is the entry point:
 * rows to stdout, a failure as one line on stderr and exit 1.
 */
export function runIfMain(moduleUrl: string, name: string, run: (args: string[]) => Promise<BenchRow[]>): void {
  if (!process.argv[1] || fileURLToPath(moduleUrl) !== process.argv[1]) return;
  run(process.argv.slice(2))
    .then((rows) => process.stdout.write(formatRows(rows)))
    .catch((err: unknown) => {
      process.stderr.write(`bench ${name}: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    });
}
