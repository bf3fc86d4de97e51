import { readFileSync } from 'node:fs';
import os from 'node:os';

/** Facts about the machine a run happened on, read at run time (never assumed). */
export interface HostFacts {
  hostname: string;
  platform: string;
  kernel: string;
  cpuModel: string;
  cpus: number;
  memBytes: number;
  node: string;
  /** Per-process open-file limit (soft, hard); null where /proc is unavailable. */
  openFilesSoft: number | null;
  openFilesHard: number | null;
  /** Ephemeral port range: bounds sockets per (source address, destination). */
  ephemeralPorts: [number, number] | null;
}

function readOr(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

export function openFileLimit(): { soft: number | null; hard: number | null } {
  const limits = readOr('/proc/self/limits');
  const m = limits ? /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(limits) : null;
  if (!m) return { soft: null, hard: null };
  const n = (s: string): number => (s === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(s));
  return { soft: n(m[1]), hard: n(m[2]) };
}

export function hostFacts(): HostFacts {
  const fd = openFileLimit();
  const range = readOr('/proc/sys/net/ipv4/ip_local_port_range')?.trim().split(/\s+/).map(Number);
  const cpus = os.cpus();
  return {
    hostname: os.hostname(),
    platform: `${os.platform()}-${os.arch()}`,
    kernel: os.release(),
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    memBytes: os.totalmem(),
    node: process.version,
    openFilesSoft: fd.soft,
    openFilesHard: fd.hard,
    ephemeralPorts: range && range.length === 2 ? [range[0], range[1]] : null,
  };
}

/** Host-wide CPU busy fraction between two samples of /proc/stat (0..1), or null. */
export class HostCpuSampler {
  private prev: { busy: number; total: number } | null = HostCpuSampler.read();

  private static read(): { busy: number; total: number } | null {
    const stat = readOr('/proc/stat');
    const line = stat?.split('\n')[0];
    if (!line?.startsWith('cpu ')) return null;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  }

  /** Busy fraction of all cores since the previous call. */
  sample(): number | null {
    const cur = HostCpuSampler.read();
    const prev = this.prev;
    this.prev = cur;
    if (!cur || !prev || cur.total <= prev.total) return null;
    return (cur.busy - prev.busy) / (cur.total - prev.total);
  }
}
