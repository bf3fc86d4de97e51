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

/** One interval of host-wide CPU accounting, as shares of all cores' time (0..1). */
export interface HostCpuSample {
  /** Busy: everything but idle and iowait (steal included: those cores were not free for us). */
  busy: number;
  /**
   * Steal: time a virtual CPU had work but the hypervisor ran something else. Every process on
   * the machine stood still for it, so every latency and every scheduling lag measured here may
   * include it. 0 on bare metal and on hypervisors that do not report it.
   */
  steal: number;
}

/** Host-wide CPU shares between two samples of /proc/stat, or null where it cannot be read. */
export class HostCpuSampler {
  private readonly readStat: () => string | null;
  private prev: { busy: number; steal: number; total: number } | null;

  /** `readStat` returns the text of /proc/stat (replaceable in tests). */
  constructor(readStat: () => string | null = () => readOr('/proc/stat')) {
    this.readStat = readStat;
    this.prev = parseProcStatCpu(readStat());
  }

  /** Shares of all cores' time since the previous call. */
  sample(): HostCpuSample | null {
    const cur = parseProcStatCpu(this.readStat());
    const prev = this.prev;
    this.prev = cur;
    if (!cur || !prev || cur.total <= prev.total) return null;
    const total = cur.total - prev.total;
    return { busy: (cur.busy - prev.busy) / total, steal: Math.max(0, cur.steal - prev.steal) / total };
  }
}

/**
 * The aggregate `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal guest
 * guest_nice, in clock ticks. guest and guest_nice are already inside user and nice, so the total
 * is the first eight; kernels before 2.6.11 have no steal field (0).
 */
export function parseProcStatCpu(stat: string | null): { busy: number; steal: number; total: number } | null {
  const line = stat?.split('\n')[0];
  if (!line?.startsWith('cpu ')) return null;
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (v.length < 4 || v.some((x) => !Number.isFinite(x))) return null;
  const idle = v[3] + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, steal: v[7] ?? 0, total };
}
