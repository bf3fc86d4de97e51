import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../core/atomic-write.js';
import { EXIT, type ExitCode } from '../core/exit-codes.js';
import { deriveFleet, readIdentityFile, writeIdentityFile } from '../core/identity.js';
import { findSecret, SECRET_ENV } from '../stack/state-file.js';
import { resolveSwarmConfig, type SwarmConfig, type SwarmInput } from '../swarm/config.js';
import { runSwarm } from '../swarm/coordinator.js';
import { HOST_STEAL_WARN, type SwarmResult } from '../swarm/result.js';
import type { StealFreeLag } from '../swarm/steal-free-lag.js';
import { formatUs, ProgressPrinter } from './progress.js';
import { printWorkerErrors } from './run-events.js';

/**
 * The swarm command's I/O: validate, run with a progress line, print the summary, write the
 * result and the .hlog atomically (also after Ctrl-C), and choose the exit code.
 */
export async function runSwarmCli(input: SwarmInput): Promise<ExitCode> {
  let cfg = resolveSwarmConfig(input);
  // The secret: --secret, $RMMSCALE_SECRET, or that of the `rmmscale stack up` serving the target.
  // None (a target that is not an rmmscale stack): the config's random one, said once.
  const secret = findSecret('--secret', input.secret, cfg.targets);
  if (secret !== null) cfg = { ...cfg, secret };
  else if (!(cfg.identitiesFile && existsSync(cfg.identitiesFile))) {
    process.stderr.write(`rmmscale: no --secret, no ${SECRET_ENV} and no running \`rmmscale stack up\` serves ${cfg.targets.join(', ')}: agent tokens are under a random secret (a stack that checks them answers 401)\n`);
  }
  cfg = prepareIdentities(cfg);

  const controller = new AbortController();
  let signalled = false;
  const onSignal = (): void => {
    if (signalled) return;
    signalled = true;
    process.stderr.write('\nrmmscale: stopping (writing the partial result)…\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const printer = new ProgressPrinter(process.stderr);
  process.stderr.write(
    `rmmscale swarm: ${cfg.agents} agents → ${cfg.targets.join(', ')} for ${cfg.durationMs / 1000}s` +
      `${cfg.warmupMs > 0 ? ` after ${cfg.warmupMs / 1000}s warm-up` : ''} ` +
      `(${cfg.mode}${cfg.mode === 'http' ? `/${cfg.connection}` : ''}, ${cfg.arrival})\n`,
  );
  try {
    const { result, hlog } = await runSwarm({ config: cfg, signal: controller.signal, onProgress: (p) => printer.update(p), onEvent: printWorkerErrors });
    printer.end();
    if (cfg.jsonFile) writeFileAtomic(cfg.jsonFile, JSON.stringify(result, null, 2) + '\n');
    if (cfg.hlogFile) writeFileAtomic(cfg.hlogFile, hlog);
    process.stdout.write(renderSummary(result));
    if (cfg.jsonFile) process.stdout.write(`result: ${cfg.jsonFile}\n`);
    if (cfg.hlogFile) process.stdout.write(`hlog:   ${cfg.hlogFile}\n`);
    return exitCodeFor(result);
  } finally {
    printer.end();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** --identities FILE: reuse the fleet in FILE, or derive it from the seed and write it there. */
function prepareIdentities(cfg: SwarmConfig): SwarmConfig {
  if (!cfg.identitiesFile) return cfg;
  if (existsSync(cfg.identitiesFile)) {
    const file = readIdentityFile('--identities', cfg.identitiesFile);
    return { ...cfg, seed: file.seed, agents: Math.min(cfg.agents, file.agents.length) };
  }
  writeIdentityFile(cfg.identitiesFile, cfg.seed, deriveFleet(cfg.seed, cfg.secret, cfg.agents));
  return cfg;
}

export function exitCodeFor(r: SwarmResult): ExitCode {
  if (r.interrupted) return EXIT.interrupted;
  if (!r.verdict.trustworthy) return EXIT.untrustworthy;
  if (r.verdict.sutFailed) return EXIT.sutFailed;
  return EXIT.ok;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** Beside the lag, once steal took some seconds out: the same over the seconds it left alone. */
function stealFreeLagText(q: StealFreeLag | null): string {
  if (q === null || q.seconds === q.ofSeconds) return '';
  if (q.seconds === 0) return ` (no second was free of steal)`;
  return ` (${formatUs(q.lag.p99Us)} over the ${q.seconds} of ${q.ofSeconds} s free of steal)`;
}

export function renderSummary(r: SwarmResult): string {
  const s = r.summary;
  const lines: string[] = [];
  lines.push('');
  const target = r.config.closedLoop ? 'max (closed loop: latency is service time)' : `${s.targetRatePerSec}/s`;
  lines.push(`rate      achieved ${s.achievedRatePerSec}/s  target ${target}`);
  lines.push(
    `requests  intended ${s.intended}  sent ${s.attempted}  completed ${s.completed}  failed ${s.failed}  late ${s.late}  dropped ${s.dropped}  (error rate ${(s.errorRate * 100).toFixed(2)}%)`,
  );
  lines.push('');
  const cols = ['p50', 'p90', 'p95', 'p99', 'p99.9', 'max'];
  lines.push(`${pad('operation', 16)}${pad('count', 9)}${pad('failed', 8)}${cols.map((c) => pad(c, 9)).join('')}service p99`);
  for (const [name, o] of Object.entries(r.ops)) {
    const l = o.latency;
    // p95Us is absent in summaries written before it was recorded: "–", never 0.
    const values = [l.p50Us, l.p90Us, l.p95Us, l.p99Us, l.p999Us, l.maxUs].map((us) => pad(us === undefined ? '–' : formatUs(us), 9));
    lines.push(`${pad(name, 16)}${pad(String(o.count), 9)}${pad(String(o.failed), 8)}${values.join('')}${formatUs(o.serviceTime.p99Us)}`);
  }
  lines.push('(latency from the intended send time; "service p99" from the actual send time)');
  const errs = Object.entries(r.errors);
  if (errs.length > 0) lines.push(`errors    ${errs.map(([k, v]) => `${k}×${v}`).join('  ')}`);
  const g = r.generator;
  lines.push(
    `generator ${g.workers.length} worker(s), cpu max ${Math.round(Math.max(0, ...g.workers.map((w) => w.cpuMax)) * 100)}%, ` +
      `scheduling lag p99 ${formatUs(g.schedulingLag.p99Us)}${stealFreeLagText(g.schedulingLagStealFree)}, host cpu ${g.hostCpuMean === null ? 'n/a' : `${Math.round(g.hostCpuMean * 100)}%`}` +
      `, steal ${g.hostStealMean === null ? 'n/a' : `${(g.hostStealMean * 100).toFixed(1)}%`}` +
      (g.hostStealMax !== null && g.hostStealMax > HOST_STEAL_WARN ? ` (worst second ${(g.hostStealMax * 100).toFixed(0)}%)` : ''),
  );
  if (r.reconnect) {
    const rc = r.reconnect;
    lines.push(`reconnect ${rc.reconnected}/${rc.disconnects} reconnected; 50% by ${rc.t50Ms} ms, 90% by ${rc.t90Ms} ms, 99% by ${rc.t99Ms} ms; peak ${rc.peakConnectsPerSec} connects/s`);
  }
  const v = r.verdict;
  if (v.trust?.judgedAs === 'closed-loop') lines.push(`verdict   the target served at least ${s.achievedRatePerSec}/s; the generator may have been the limit (closed loop: saturated by design)`);
  else if (v.trustworthy) lines.push('verdict   measurement trustworthy: the generator kept its schedule');
  else lines.push(`verdict   NOT TRUSTWORTHY (${v.generatorBound ? 'generator-bound' : 'host-bound'}): these numbers describe the generator, not the target`);
  for (const reason of v.reasons) lines.push(`          - ${reason}`);
  for (const w of v.warnings) lines.push(`warning   ${w}`);
  return lines.join('\n') + '\n';
}
