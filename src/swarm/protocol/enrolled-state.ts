import { closeSync, openSync, readdirSync, readFileSync, readSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { FleetShare } from '../schedule.js';
import type { AgentVarStore } from './agent-vars.js';

/**
 * Enrolment kept across the swarms of one `rmmscale run`. Each window is a new swarm, but an agent
 * enrols once per run (docs/protocols.md): at the end of a window every worker writes the
 * variables of its enrolled agents to a file in the run's state folder, and the next window's
 * workers load them, so an agent enrolled before runs its flows with the same `node_key`.
 *
 * Entries are keyed by the agent's fleet-wide index, so any split of the fleet can load any
 * other's files: a worker reads only the files whose share can hold one of its agents (two
 * stripes a mod s and b mod t meet iff gcd(s, t) divides a − b). One file per share
 * (`enrolled-FIRST-STRIDE.bin`), replaced at each save; where files overlap (the worker count
 * changed between windows), the later save wins.
 *
 * The file, little-endian: "RMMSENR1", f64 saved-at (epoch ms), u32 first, u32 stride, u16 var
 * count, each name (u16 length, UTF-8), u32 entries; an entry is u32 agent index, then each
 * variable's u32 length and bytes. No object per agent: written from and read into the
 * AgentVarStore's buffer.
 */

const MAGIC = Buffer.from('RMMSENR1', 'latin1');
const NAME = /^enrolled-(\d+)-(\d+)\.bin$/;

/** What the state is loaded into and saved from: a protocol driver (protocol-driver.ts). */
export interface EnrolledAgents {
  readonly vars: AgentVarStore;
  isEnrolled(slot: number): boolean;
  restoreEnrolled(slot: number): void;
}

export interface StateShare extends FleetShare {
  /** Local slots (the worker's agents). */
  count: number;
}

function fileName(share: FleetShare): string {
  return `enrolled-${share.first}-${share.stride}.bin`;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Write the enrolled agents of `share` (atomically: a temporary file renamed). Returns how many. */
export function saveEnrolled(dir: string, share: StateShare, agents: EnrolledAgents, savedAtMs: number): number {
  const { vars } = agents;
  const names = vars.names.map((n) => Buffer.from(n, 'utf8'));
  let entries = 0;
  let size = MAGIC.length + 8 + 4 + 4 + 2 + names.reduce((a, n) => a + 2 + n.length, 0) + 4;
  for (let s = 0; s < share.count; s++) {
    if (!agents.isEnrolled(s)) continue;
    entries++;
    size += 4;
    for (let v = 0; v < names.length; v++) size += 4 + vars.byteLength(s, v);
  }
  const buf = Buffer.allocUnsafe(size);
  let at = MAGIC.copy(buf, 0);
  at = buf.writeDoubleLE(savedAtMs, at);
  at = buf.writeUInt32LE(share.first, at);
  at = buf.writeUInt32LE(share.stride, at);
  at = buf.writeUInt16LE(names.length, at);
  for (const n of names) {
    at = buf.writeUInt16LE(n.length, at);
    at += n.copy(buf, at);
  }
  at = buf.writeUInt32LE(entries, at);
  for (let s = 0; s < share.count; s++) {
    if (!agents.isEnrolled(s)) continue;
    at = buf.writeUInt32LE(share.first + s * share.stride, at);
    for (let v = 0; v < names.length; v++) {
      at = buf.writeUInt32LE(vars.byteLength(s, v), at);
      at += vars.copyTo(s, v, buf, at);
    }
  }
  const file = join(dir, fileName(share));
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, buf, 0, at);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  return entries;
}

interface Saved {
  buf: Buffer;
  /** Where the entries start. */
  at: number;
  entries: number;
  /** This store's index of each of the file's variables (-1: not one of ours). */
  varOf: number[];
}

/** When a saved file was saved (its header), or null when it is not one. */
function savedAt(file: string): number | null {
  const head = Buffer.alloc(MAGIC.length + 8);
  const fd = openSync(file, 'r');
  try {
    if (readSync(fd, head, 0, head.length, 0) < head.length) return null;
  } finally {
    closeSync(fd);
  }
  return head.subarray(0, MAGIC.length).equals(MAGIC) ? head.readDoubleLE(MAGIC.length) : null;
}

/** A saved file, or null when it is not one (or lacks one of the store's variables). */
function readSaved(file: string, vars: AgentVarStore): Saved | null {
  const buf = readFileSync(file);
  if (buf.length < MAGIC.length + 22 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return null;
  let at = MAGIC.length + 8 + 8; // saved-at, first, stride
  const n = buf.readUInt16LE(at);
  at += 2;
  const varOf: number[] = [];
  for (let i = 0; i < n; i++) {
    const len = buf.readUInt16LE(at);
    varOf.push(vars.names.indexOf(buf.toString('utf8', at + 2, at + 2 + len)));
    at += 2 + len;
  }
  // Every variable the flows use must come back, or the agent enrols again.
  if (vars.names.some((_, v) => !varOf.includes(v))) return null;
  return { buf, at: at + 4, entries: buf.readUInt32LE(at), varOf };
}

/**
 * Load every saved enrolment of this share's agents from `dir` (oldest save first, so the latest
 * wins; one file in memory at a time). Agents with none stay unenrolled and enrol at their first
 * fire. Returns how many were restored.
 */
export function loadEnrolled(dir: string, share: StateShare, agents: EnrolledAgents): number {
  const files: Array<{ file: string; atMs: number }> = [];
  for (const name of readdirSync(dir)) {
    const m = NAME.exec(name);
    if (!m || (share.first - Number(m[1])) % gcd(share.stride, Number(m[2])) !== 0) continue;
    const atMs = savedAt(join(dir, name));
    if (atMs !== null) files.push({ file: join(dir, name), atMs });
  }
  files.sort((a, b) => a.atMs - b.atMs);
  const restored = new Uint8Array(share.count);
  for (const f of files) {
    const s = readSaved(f.file, agents.vars);
    if (!s) continue;
    const { buf, varOf } = s;
    let at = s.at;
    for (let e = 0; e < s.entries; e++) {
      const g = buf.readUInt32LE(at);
      at += 4;
      const off = g - share.first;
      const slot = off >= 0 && off % share.stride === 0 ? off / share.stride : -1;
      const mine = slot >= 0 && slot < share.count;
      for (const v of varOf) {
        const len = buf.readUInt32LE(at);
        if (mine && v >= 0) agents.vars.setBytes(slot, v, buf, at + 4, at + 4 + len);
        at += 4 + len;
      }
      if (mine) {
        agents.restoreEnrolled(slot);
        restored[slot] = 1;
      }
    }
  }
  let n = 0;
  for (let s = 0; s < share.count; s++) n += restored[s];
  return n;
}
