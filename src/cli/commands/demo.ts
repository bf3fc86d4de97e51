import type { Argv, CommandModule } from 'yargs';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { EXIT, type ExitCode } from '../../core/exit-codes.js';
import type { NodeHdrSnapshot } from '../../core/protocol.js';
import { resolveSwarmConfig } from '../../swarm/config.js';
import { formatUs, ProgressPrinter } from '../progress.js';
import { exitCodeFor, renderSummary } from './swarm.js';

/** `rmmscale demo`: the quick start. The reference single stack driven by the article's fleet. */
export const demoCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'demo',
  describe: 'start the single stack (embedded SQLite, automate profile) and drive it with 20,000 agents at 30%/min for 60 s',
  builder: (y: Argv) =>
    y
      .option('agents', { type: 'string', describe: 'agents [default 20000]', requiresArg: true })
      .option('duration', { type: 'string', describe: 'measured time [default 60s]', requiresArg: true })
      .option('profile', { type: 'string', describe: 'capacity profile: automate | none [default automate]', requiresArg: true })
      .option('json', { type: 'string', describe: 'write the swarm result document to FILE', requiresArg: true }) as Argv<Record<string, unknown>>,
  handler: async (argv) => {
    process.exitCode = await runDemo({
      agents: (argv.agents as string | undefined) ?? '20000',
      duration: (argv.duration as string | undefined) ?? '60s',
      profile: (argv.profile as string | undefined) ?? 'automate',
      json: argv.json as string | undefined,
    });
  },
};

/**
 * The quick start's main job, and real work: the `single` reference stack (its own process,
 * embedded SQLite, the automate capacity profile) driven by the article's fleet. Prints the
 * swarm's view beside the server's own count and latency, then stops every node.
 */
export async function runDemo(o: { agents: string; duration: string; profile: string; json?: string }): Promise<ExitCode> {
  // The stack, the swarm and the histograms load when the command runs, so that `--help` stays fast.
  const { PROFILES } = await import('../../stack/profiles.js');
  const { startStack } = await import('../../stack/launcher.js');
  const { namedTopology } = await import('../../stack/topology.js');
  const { runSwarm } = await import('../../swarm/coordinator.js');
  const { decodeHistogram, summarize } = await import('../../metrics/histogram.js');
  const { printWorkerErrors } = await import('../run-events.js');
  const profile = PROFILES[o.profile];
  if (!profile) throw new InvalidArgumentError('--profile', o.profile, Object.keys(PROFILES).join(' or '));
  process.stderr.write(`starting the single stack (profile ${profile.name}, embedded SQLite)…\n`);
  // A secret of its own (generated): the demo's swarm gets it from the stack, nobody else needs it.
  const stack = await startStack(namedTopology('single'), { profile });
  const secret = stack.secret;
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const cfg = resolveSwarmConfig({ target: stack.entryUrl, agents: o.agents, checkin: '30%/min', duration: o.duration, secret, seed: 'demo' });
    process.stderr.write(`driving ${stack.entryUrl} with ${cfg.agents} agents at 30%/min for ${cfg.durationMs / 1000}s\n`);
    const printer = new ProgressPrinter(process.stderr);
    const { result } = await runSwarm({ config: cfg, signal: controller.signal, onProgress: (p) => printer.update(p), onEvent: printWorkerErrors });
    printer.end();
    if (o.json) writeFileAtomic(o.json, JSON.stringify(result, null, 2) + '\n');
    const node = stack.nodes[0];
    const snap = (await (await fetch(`${node.url}/admin/hdr`, { headers: { authorization: `Bearer ${stack.adminKey}` } })).json()) as NodeHdrSnapshot;
    const health = (await (await fetch(`${node.url}/healthz`)).json()) as { utilization: number | null; hostLimited: boolean };
    const serverCheckins = snap.histograms.checkin ? summarize(decodeHistogram(snap.histograms.checkin)) : null;
    process.stdout.write(renderSummary(result));
    process.stdout.write('\n');
    process.stdout.write(`server    ${node.name} (pid ${node.pid}) counted ${serverCheckins?.count ?? 0} check-ins; the swarm completed ${result.ops.checkin?.completed ?? 0}\n`);
    if (serverCheckins) {
      process.stdout.write(
        `          server-side check-in latency p50 ${formatUs(serverCheckins.p50Us)}, p99 ${formatUs(serverCheckins.p99Us)}; ` +
          `utilisation ${health.utilization === null ? 'n/a (no profile)' : `${Math.round(health.utilization * 100)}%`} in the last second` +
          `${health.hostLimited ? '; HOST-LIMITED' : ''}\n`,
      );
    }
    return controller.signal.aborted ? EXIT.interrupted : exitCodeFor(result);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stack.stop();
  }
}
