import type { ProgressSnapshot } from '../swarm/interval-merge.js';

/**
 * Progress output. On a TTY: one line rewritten in place each second. Otherwise (pipes, CI): a
 * plain line every `plainEverySec` seconds, so logs stay readable.
 */
export function formatUs(us: number): string {
  if (us >= 1_000_000) return `${(us / 1_000_000).toFixed(2)}s`;
  if (us >= 1000) return `${(us / 1000).toFixed(us >= 100_000 ? 0 : 1)}ms`;
  return `${Math.round(us)}µs`;
}

export function progressLine(p: ProgressSnapshot): string {
  const agents = p.connected > 0 ? `${p.connected} tunnels` : `${p.activeAgents} agents`;
  const gen = p.generatorOk ? `gen ok (${p.generatorNote})` : `GENERATOR-BOUND (${p.generatorNote})`;
  return (
    `${fmtSec(p.elapsedSec)}/${fmtSec(p.totalSec)}${p.warmup ? ' (warm-up)' : ''}  ${agents}  ` +
    `rate ${p.achievedRatePerSec.toFixed(1)}/s of ${p.targetRatePerSec.toFixed(1)}/s  ` +
    `p50 ${formatUs(p.p50Us)} p99 ${formatUs(p.p99Us)}  errors ${p.errors}  late ${p.late}  dropped ${p.dropped}  ${gen}`
  );
}

function fmtSec(s: number): string {
  const m = Math.floor(s / 60);
  const r = Math.floor(s % 60);
  return `${m}:${String(r).padStart(2, '0')}`;
}

export class ProgressPrinter {
  private readonly tty: boolean;
  private readonly out: NodeJS.WriteStream;
  private lastPlainSec = -Infinity;
  private readonly plainEverySec: number;
  private drewLine = false;

  constructor(out: NodeJS.WriteStream, plainEverySec = 5) {
    this.out = out;
    this.tty = out.isTTY === true && !process.env.CI;
    this.plainEverySec = plainEverySec;
  }

  update(p: ProgressSnapshot): void {
    const line = progressLine(p);
    if (this.tty) {
      const width = this.out.columns ?? 160;
      this.out.write(`\r\x1b[2K${line.slice(0, width - 1)}`);
      this.drewLine = true;
    } else if (p.elapsedSec - this.lastPlainSec >= this.plainEverySec || p.elapsedSec >= p.totalSec) {
      this.lastPlainSec = p.elapsedSec;
      this.out.write(`${line}\n`);
    }
  }

  end(): void {
    if (this.tty && this.drewLine) this.out.write('\n');
    this.drewLine = false;
  }
}
