import { stringify } from 'yaml';

/**
 * A Prometheus `scrape_configs` block for what rmmscale serves: each stack node's /metrics (the
 * node, role and tier are labels on every sample already) and the generator's live view.
 * `stack up --print-scrape-config` and `run --print-scrape-config` print it; paste it under
 * prometheus.yml's `scrape_configs:`, or keep it as the whole file.
 */

export interface ScrapeTarget {
  /** Prometheus job: `rmmscale-stack` or `rmmscale-generator`. */
  job: string;
  /** The full metrics URL, e.g. http://127.0.0.1:8081/metrics. */
  url: string;
}

/** Nodes are scraped each second by `rmmscale run` itself; 5 s is enough for a dashboard. */
export const SCRAPE_INTERVAL = '5s';

export function scrapeConfig(targets: readonly ScrapeTarget[]): string {
  // One scrape config per job and scheme and path: Prometheus takes those per config, not per target.
  const groups = new Map<string, { job: string; scheme: string; path: string; hosts: string[] }>();
  for (const t of targets) {
    const u = new URL(t.url);
    const scheme = u.protocol.replace(':', '');
    const key = `${t.job} ${scheme} ${u.pathname}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { job: t.job, scheme, path: u.pathname, hosts: [] }));
    g.hosts.push(u.host);
  }
  const jobCount = new Map<string, number>();
  const configs = [...groups.values()].map((g) => {
    const n = (jobCount.get(g.job) ?? 0) + 1;
    jobCount.set(g.job, n);
    return {
      job_name: n === 1 ? g.job : `${g.job}-${n}`,
      scrape_interval: SCRAPE_INTERVAL,
      scheme: g.scheme,
      metrics_path: g.path,
      // The samples carry their own node, role and tier labels: keep them as exported.
      honor_labels: true,
      static_configs: [{ targets: g.hosts }],
    };
  });
  return stringify({ scrape_configs: configs }, { lineWidth: 0 });
}
