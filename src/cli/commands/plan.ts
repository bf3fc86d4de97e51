import type { Argv, CommandModule } from 'yargs';
import { modelTierCapacities } from '../../analysis/plan-model.js';
import { planCapacity, type Plan, type TierCapacity } from '../../analysis/plan.js';
import { checkinsPerAgentPerSec, tierCapacities } from '../../analysis/tier-sizing.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { EXIT, type ExitCode } from '../../core/exit-codes.js';
import { parseCheckinFractionPerMin, parseDurationMs } from '../../core/units.js';
import type { RunResult } from '../../run/result-types.js';

/**
 * `rmmscale plan --agents N [--from result.json]`: nodes per tier for a fleet, from the ceilings a
 * run measured (read through the one reader of result.json) or the `automate` profile's model.
 */
export const planCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'plan',
  describe: 'size a stack: nodes per tier, headroom, the first tier to saturate and one-node failures, from measured ceilings (--from) or the automate model',
  builder: (y: Argv) =>
    y
      .option('agents', { type: 'string', array: true, describe: 'fleet size(s) to plan for [default 20000 40000 50000]', requiresArg: true })
      .option('checkin', { type: 'string', describe: 'check-in model [default 30%/min]', requiresArg: true })
      .option('from', { type: 'string', describe: 'a result.json whose measured per-tier ceilings to use', requiresArg: true })
      .option('slo', { type: 'string', describe: 'p99 bound for the model, e.g. "p99<1s" [default p99<1s]; with --from, the run\'s own', requiresArg: true })
      .option('redundancy', { type: 'string', describe: 'n+1 | none [default n+1]', requiresArg: true })
      .option('max-utilization', { type: 'string', describe: 'plan no node above this share of its ceiling [default 0.8]', requiresArg: true })
      .option('json', { type: 'boolean', describe: 'print the plans as JSON' }) as Argv<Record<string, unknown>>,
  handler: async (argv) => {
    process.exitCode = await runPlanCli({
      agents: ((argv.agents as string[] | undefined) ?? []).map(String),
      checkin: argv.checkin as string | undefined,
      from: argv.from as string | undefined,
      slo: argv.slo as string | undefined,
      redundancy: argv.redundancy as string | undefined,
      maxUtilization: argv.maxUtilization as string | undefined,
      json: argv.json === true,
    });
  },
};

export interface PlanCliInput {
  agents: string[];
  checkin?: string;
  from?: string;
  slo?: string;
  redundancy?: string;
  maxUtilization?: string;
  json?: boolean;
}

/** `p99<500ms`, `p99 < 1s`. */
export function parseSlo(v: string): number {
  const m = /^\s*p99\s*<=?\s*(\S+)\s*$/.exec(v);
  if (!m) throw new InvalidArgumentError('--slo', v, 'a p99 bound like "p99<500ms" or "p99<1s"');
  try {
    return parseDurationMs('--slo', m[1]);
  } catch {
    throw new InvalidArgumentError('--slo', v, 'a p99 bound like "p99<500ms" or "p99<1s"');
  }
}

function wholeAgents(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || n < 1 || n > 10_000_000) throw new InvalidArgumentError('--agents', v, 'a whole number of agents from 1 to 10000000 (repeat the flag for several fleets)');
  return n;
}

/**
 * Per-node ceilings measured by a run, as the planner takes them (analysis/tier-sizing.ts, as the
 * run's own plan). A tier's demand per agent follows the check-in model: the result counts agents
 * at its own (`load.checkin`: a share per minute, or a fixed rate spread over the headline's
 * fleet), the plan at `planCheckinsPerAgentPerSec`.
 */
export function tiersFromResult(r: RunResult, file: string, planCheckinsPerAgentPerSec: number): { tiers: TierCapacity[]; notes: string[] } {
  const notes: string[] = [];
  if (r.summary.ceilingAgents === null) throw new InvalidArgumentError('--from', file, 'a result with a measured ceiling (a ceiling search that found one)');
  if (!r.summary.trustworthy) notes.push('the result is marked NOT trustworthy: ' + r.summary.warnings.join('; '));
  const measured = checkinsPerAgentPerSec(r.load.checkin, r.headline?.client.agents ?? null);
  if (measured === null || !(measured > 0)) throw new InvalidArgumentError('--from', file, `a result whose check-in rate per agent is known (load.checkin ${r.load.checkin.text} with no agents at the headline)`);
  const scale = planCheckinsPerAgentPerSec / measured;
  if (Math.abs(scale - 1) > 1e-9) notes.push(`demand scaled ×${scale.toFixed(3)} from the run's check-in rate (${r.load.checkin.text}) to the plan's`);
  const sized = tierCapacities(r.summary.tiers, r.stack.tiers, scale);
  return { tiers: sized.tiers, notes: [...notes, ...sized.notes] };
}

const pct = (x: number): string => (x < 0 ? 'over' : `${Math.round(x * 100)}%`);

/**
 * The named topology a plan amounts to: `single` when the one-box tier is planned, else `splitN`
 * (N − 1 agent web nodes plus one user web node, as `rmmscale stack up splitN` starts it), or
 * `relaysN`. A tier set that no named topology matches is shown as its tiers.
 */
export function topologyName(p: Plan): string {
  const n = (tier: string): number => p.tiers.find((t) => t.tier === tier)?.nodes ?? 0;
  if (n('single') > 0) return n('single') === 1 ? 'single' : `${n('single')} × single`;
  if (n('relay') > 0) return `relays${n('relay')}`;
  if (n('web-agent') > 0) return `split${n('web-agent') + Math.max(1, n('web-user'))}`;
  return p.tiers.map((t) => `${t.nodes} ${t.tier}`).join(' + ');
}

export function renderPlans(plans: Plan[], source: string, notes: string[]): string {
  const lines: string[] = [`capacity plan from ${source}`, ''];
  const tiers = plans[0]?.tiers.map((t) => t.tier) ?? [];
  lines.push(['agents', 'topology', ...tiers.map((t) => `${t} nodes (headroom)`), 'first to saturate', 'one node down'].join(' | '));
  lines.push(['---', '---', ...tiers.map(() => '---'), '---', '---'].join(' | '));
  for (const p of plans) {
    const down = p.tiers.filter((t) => t.nodes > 1 && !t.oneDown.ok).map((t) => `${t.tier} over (${pct(t.oneDown.headroom)})`);
    const single = p.tiers.filter((t) => t.nodes === 1 && t.headroom >= 0).map((t) => `${t.tier} is a single point of failure`);
    lines.push(
      [
        p.agents.toLocaleString('en-US'),
        p.feasible ? topologyName(p) : `(${topologyName(p)}: not enough)`,
        ...p.tiers.map((t) => `${t.nodes} (${pct(t.headroom)})${t.note ? ' !' : ''}`),
        `${p.firstToSaturate.tier} at ${Number.isFinite(p.firstToSaturate.atAgents) ? p.firstToSaturate.atAgents.toLocaleString('en-US') : '∞'}`,
        [...down, ...single].join('; ') || 'ok',
      ].join(' | '),
    );
  }
  lines.push('');
  for (const p of plans) for (const t of p.tiers) if (t.note) lines.push(`! ${p.agents} agents, ${t.tier}: ${t.note}`);
  for (const p of plans) if (!p.feasible) lines.push(`✗ ${p.agents} agents: not feasible with these tiers (a single-instance tier is over its limit)`);
  for (const n of notes) lines.push(`note: ${n}`);
  return lines.join('\n') + '\n';
}

export async function runPlanCli(input: PlanCliInput): Promise<ExitCode> {
  const agents = (input.agents.length ? input.agents : ['20000', '40000', '50000']).map(wholeAgents);
  const fraction = parseCheckinFractionPerMin('--checkin', input.checkin ?? '30%/min');
  const perAgent = fraction / 60;
  const redundancy = input.redundancy ?? 'n+1';
  if (redundancy !== 'n+1' && redundancy !== 'none') throw new InvalidArgumentError('--redundancy', redundancy, 'n+1 or none');
  const maxU = input.maxUtilization === undefined ? 0.8 : Number(input.maxUtilization);
  if (!(maxU > 0 && maxU <= 1)) throw new InvalidArgumentError('--max-utilization', input.maxUtilization, 'a number in (0, 1], e.g. 0.8');
  let source: string;
  let tiers: TierCapacity[];
  let notes: string[];
  if (input.from) {
    const { readResultFile } = await import('../../run/result-file.js');
    const r = readResultFile(input.from);
    if (input.slo !== undefined && parseSlo(input.slo) !== r.slo.p99Ms) {
      throw new InvalidArgumentError('--slo', input.slo, `absent with --from, or the run's own SLO (p99<${r.slo.p99Ms}ms): ceilings measured at one SLO do not hold at another`);
    }
    ({ tiers, notes } = tiersFromResult(r, input.from, perAgent));
    source = `measured ceilings in ${input.from} (${r.scenario.name}, p99 < ${r.slo.p99Ms} ms)`;
  } else {
    const slo = input.slo === undefined ? 1000 : parseSlo(input.slo);
    const { PROFILES } = await import('../../stack/profiles.js');
    ({ tiers, notes } = modelTierCapacities(PROFILES.automate, { checkinsPerAgentPerSec: perAgent, sloP99Ms: slo, extraDbQueriesPerSec: 5, referenceAgents: 50_000 }));
    source = `the automate profile's model (p99 < ${slo} ms; no --from result.json)`;
  }
  if (tiers.length === 0) throw new InvalidArgumentError('--from', input.from, 'a result with at least one tier ceiling');
  const plans = agents.map((a) => planCapacity(tiers, { agents: a, maxUtilization: maxU, redundancy }));
  if (input.json) process.stdout.write(JSON.stringify({ source, checkin: `${+(fraction * 100).toFixed(4)}%/min`, redundancy, maxUtilization: maxU, plans, notes }, null, 2) + '\n');
  else process.stdout.write(renderPlans(plans, source, notes));
  // An infeasible plan is an answer, not an error: it is printed, and the exit stays 0.
  return EXIT.ok;
}
