import type { Options } from 'yargs';
import { InvalidArgumentError } from '../core/errors.js';
import type { MetricsServer } from '../metrics/metrics-server.js';
import type { ScrapeTarget } from '../metrics/scrape-config.js';
import type { LiveMetrics } from '../swarm/live-metrics.js';

/**
 * The live view's flags, shared by `swarm` and `run`: `--metrics-port PORT` serves the generator's
 * Prometheus metrics on 127.0.0.1 (src/swarm/live-metrics.ts) while the command runs, and
 * `--print-scrape-config` (run; `stack up` has its own) prints a Prometheus scrape config.
 */
export const METRICS_PORT_FLAG: Options = {
  type: 'string',
  requiresArg: true,
  describe: 'serve the generator\'s live Prometheus metrics on http://127.0.0.1:PORT/metrics while it runs (0: a free port, printed)',
};

export const PRINT_SCRAPE_CONFIG_FLAG: Options = {
  type: 'boolean',
  describe: 'print a Prometheus scrape config for the stack\'s nodes (and the generator, with --metrics-port) once they are up',
};

export function parseMetricsPort(v: unknown): number | null {
  if (v === undefined) return null;
  const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidArgumentError('--metrics-port', v, 'a port from 0 to 65535 (0: a free one)');
  return n;
}

export interface LiveView {
  live: LiveMetrics;
  server: MetricsServer;
}

/** Start the endpoint (null without --metrics-port) and say where it is on stderr. */
export async function startLiveView(port: number | null): Promise<LiveView | null> {
  if (port === null) return null;
  const { LiveMetrics } = await import('../swarm/live-metrics.js');
  const { startMetricsServer } = await import('../metrics/metrics-server.js');
  const live = new LiveMetrics();
  const server = await startMetricsServer('--metrics-port', port, () => live.render());
  process.stderr.write(`metrics: ${server.url} (Prometheus text, while this runs)\n`);
  return { live, server };
}

/** Print the scrape config for these targets on stdout. */
export async function printScrapeConfig(targets: ScrapeTarget[]): Promise<void> {
  const { scrapeConfig } = await import('../metrics/scrape-config.js');
  if (targets.length === 0) {
    process.stderr.write('rmmscale: --print-scrape-config: nothing to scrape (an external target, and no --metrics-port)\n');
    return;
  }
  process.stdout.write(`# Prometheus scrape config (docs/k8s.md#a-live-view)\n${scrapeConfig(targets)}`);
}
