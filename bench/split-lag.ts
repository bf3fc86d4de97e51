import { join } from 'node:path';
import { round } from '../src/core/units.js';
import type { ScrapeSchedule } from '../src/run/collector.js';
import { printWorkerErrors } from '../src/cli/run-events.js';
import { runScenario } from '../src/run/run.js';
import { loadScenario } from '../src/scenario/load.js';
import { ROOT, median, type BenchRow } from './lib.js';

/**
 * The swarm's scheduling lag with the stack on the same 2 cores: `automate-split3`'s own steps
 * below its ceiling (16,000, 24,000 and 36,000 agents; 10 s warm-up, 20 s measured, background
 * traffic as in the scenario), run with the node scrapes spread over each second (now) and with
 * every node scraped at one instant (before), alternating, in the same session.
 */
const STEPS_MAX = 36_000;
const TARGET_LAG_MS = 3;

interface StepLag {
  agents: number;
  lagP99Ms: number;
  lateFraction: number;
  stealMax: number | null;
}

async function oneRun(schedule: ScrapeSchedule, outDir: string): Promise<StepLag[]> {
  const sc = loadScenario(join(ROOT, 'scenarios', 'automate-split3.yaml'));
  if (!sc.ceiling) throw new Error('automate-split3 is no longer a ceiling search');
  sc.ceiling = { ...sc.ceiling, max: STEPS_MAX };
  sc.plan = null;
  const { result } = await runScenario({ scenario: sc, outDir, allowRemote: false, scrapeSchedule: schedule, onEvent: printWorkerErrors });
  if (result.error) throw new Error(`split-lag (${schedule}): ${result.error}`);
  return result.windows
    .filter((w) => w.supersededBy === undefined)
    .map((w) => ({
      agents: w.agents,
      lagP99Ms: w.generator.schedulingLagP99Us / 1000,
      lateFraction: w.client.count > 0 ? w.client.late / w.client.count : 0,
      stealMax: w.generator.hostStealMax ?? null,
    }));
}

export async function benchSplitLag(o: { rounds: number }): Promise<BenchRow[]> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const runs: Record<ScrapeSchedule, StepLag[][]> = { aligned: [], spread: [] };
  for (let roundIndex = 0; roundIndex < o.rounds; roundIndex++) {
    // Alternate which goes first, so neither always meets the quieter host.
    const order: ScrapeSchedule[] = roundIndex % 2 === 0 ? ['aligned', 'spread'] : ['spread', 'aligned'];
    for (const schedule of order) runs[schedule].push(await oneRun(schedule, join(ROOT, 'reports', `bench-split-lag-${stamp}`, `${schedule}-${roundIndex + 1}`)));
  }
  const loads = [...new Set(runs.spread.flat().map((s) => s.agents))].sort((a, b) => a - b);
  const at = (schedule: ScrapeSchedule, agents: number): StepLag[] => runs[schedule].map((r) => r.find((s) => s.agents === agents)).filter((s): s is StepLag => s !== undefined);
  const list = (xs: StepLag[]): string => xs.map((s) => `${round(s.lagP99Ms, 2)} ms (late ${(s.lateFraction * 100).toFixed(2)}%, steal max ${s.stealMax === null ? 'n/a' : `${(s.stealMax * 100).toFixed(1)}%`})`).join(', ');
  return loads.map((agents) => {
    const spread = at('spread', agents);
    const aligned = at('aligned', agents);
    const ours = median(spread.map((s) => s.lagP99Ms));
    const peer = median(aligned.map((s) => s.lagP99Ms));
    return {
      bench: 'split-lag',
      metric: `scheduling lag p99 at ${agents.toLocaleString('en-US')} agents, split3 on the same 2 cores (ms, median of ${spread.length})`,
      rmmscale: round(ours, 2),
      peer: round(peer, 2),
      peerName: 'scrapes aligned (before)',
      ratio: peer > 0 ? round(ours / peer, 2) : NaN,
      target: `≤ ${TARGET_LAG_MS} ms in every run`,
      pass: spread.every((s) => s.lagP99Ms <= TARGET_LAG_MS),
      note: `spread: ${list(spread)}; aligned: ${list(aligned)}`,
    };
  });
}
