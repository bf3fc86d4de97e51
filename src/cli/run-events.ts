import { fmtPct } from '../core/format.js';
import { sloLatency } from '../run/judge-window.js';
import { isRamp } from '../run/plan-window.js';
import type { RunEvent } from '../run/run-event.js';
import type { SwarmEvent } from '../swarm/swarm-event.js';

/** The line (no newline) a terminal shows for each thing a run or a swarm reports. */

export function formatSwarmEvent(e: SwarmEvent): string {
  return `rmmscale: worker ${e.worker}: ${e.message}`;
}

export function formatRunEvent(e: RunEvent): string {
  switch (e.type) {
    case 'stack-starting':
      return `starting ${e.topology} (${e.nodes} node${e.nodes === 1 ? '' : 's'}, profile ${e.profile}, proxy ${e.proxy}, db ${e.db})…`;
    case 'stack-healthy':
      return `stack healthy: ${e.nodes.map((n) => `${n.name} ${n.url}`).join(', ')}`;
    case 'window-start': {
      const ramp = isRamp(e) ? `${e.rampFromAgents} → ` : '';
      return `${e.label}: ${ramp}${e.agents} agents at ${e.checkin}, warm-up ${e.warmupMs / 1000} s, measured ${e.measureMs / 1000} s`;
    }
    case 'window-end':
      return windowEndLine(e);
    case 'remeasure':
      return `${e.label}: not trustworthy; measuring it once more`;
    case 'waiting-for-quiet-host':
      return `${e.label}: not trustworthy; waiting for the host to settle (steal ${fmtPct(e.stealMean, 1)} in the window, ${fmtPct(e.stealMax, 1)} in its worst second)`;
    case 'host-quiet': {
      const lastText = e.lastSteal === null ? '' : `, steal ${fmtPct(e.lastSteal, 1)} in the last second`;
      return e.settled ? `host settled after ${e.waitedMs / 1000} s; measuring it again` : `host still busy after ${e.waitedMs / 1000} s${lastText}; measuring it again anyway`;
    }
    case 'run-failed':
      return `run failed: ${e.stack}`;
    case 'stack-stopping':
      return 'stopping the stack…';
    case 'coordinator-listening':
      return `coordinator: listening on ${e.url} for ${e.followers} shard${e.followers === 1 ? '' : 's'}`;
    case 'coordinator-joined':
      return `joined the coordinator at ${e.url} (this clock ${e.clockOffsetMs >= 0 ? '+' : ''}${e.clockOffsetMs} ms against its)`;
    case 'ledger': {
      const l = e.ledger;
      return `ledger: ${l.acked} writes acknowledged, ${l.stored} stored, ${l.lost} lost, ${l.duplicated} duplicated; commands ${l.commandsCreated} created, ${l.commandsDelivered} delivered, ${l.commandsLost} lost`;
    }
    case 'worker-error':
      return formatSwarmEvent(e);
  }
}

function windowEndLine({ window: w, trust }: Extract<RunEvent, { type: 'window-end' }>): string {
  const { client, verdict, diagnosis } = w;
  const p99Text = `${(sloLatency(client).p99Us / 1000).toFixed(0)} ms`;
  return (
    `${w.label}: achieved ${client.achievedRatePerSec.toFixed(1)}/s of ${client.offeredRatePerSec.toFixed(1)}/s, p99 ${p99Text}, errors ${(client.errorRate * 100).toFixed(2)}% → ${verdict.ok ? 'OK' : `BREACH (${verdict.breaches.join('; ')})`}` +
    `${w.generator.trustworthy ? (trust.judgedAs === 'clean' ? '' : ` — trusted (${trust.judgedAs}): ${trust.why}`) : ' — NOT TRUSTWORTHY: ' + trust.why}` +
    `${!verdict.ok && diagnosis.limitingTier ? ` — limited by ${diagnosis.limitingTier}: ${diagnosis.evidence[0]}` : ''}`
  );
}

/** A worker's error straight to stderr, as the swarm has always shown it; every other event is left to the caller. */
export function printWorkerErrors(e: RunEvent): void {
  if (e.type === 'worker-error') process.stderr.write(`${formatSwarmEvent(e)}\n`);
}
