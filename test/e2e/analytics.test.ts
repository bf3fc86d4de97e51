import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadScenario } from '../../src/scenario/load.js';
import { resultProblems } from '../../src/run/result-file.js';
import { runScenario } from '../../src/run/run.js';
import { alive } from '../helpers/fork-node.js';

/**
 * The analytics plane degraded (issue 13's row; seed 004: "Alerts may delay; agent and access paths
 * unaffected"), on a real relays2 stack: db, analytics, app and two relays, each its own process.
 * 200 agents send telemetry every second over their tunnels (about 5% of frames raise an alert on
 * the analytics node); operators open sessions at 5/s. One 8 s stage (one swarm: a second stage
 * would reconnect every tunnel first, a warm-up this test cannot afford): the first 5 s are the
 * clean part, then the analytics node is slowed 10× for 2.5 s.
 *
 * Oracles: the alert delay is measured and is larger during the fault than in the clean part; the
 * tunnels' own latency (ws-ping), the telemetry ack (ws-rtt: relays ack from their own spool and
 * forward behind it) and the operators' sessions stay within a tolerance of the clean
 * part (sub-millisecond pings on a shared 2-core host: 10% of that is noise, so an absolute slack
 * is added, see the bounds below); every telemetry frame a relay acked is in the analytics store
 * (the ledger, compared key by key).
 */

const dir = mkdtempSync(join(tmpdir(), 'rmmscale-analytics-e2e-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the analytics plane slowed 10x', () => {
  it('delays alerts, not tunnels or sessions, and loses no acked frame', async () => {
    const file = join(dir, 'analytics.yaml');
    writeFileSync(
      file,
      [
        'name: analytics-e2e',
        'stack:',
        '  topology: relays2',
        '  profile: automate',
        'fleet:',
        '  agents: 200',
        '  transport: ws',
        '  checkin: 200/s',
        '  seed: analytics-e2e',
        'stages:',
        '  - { duration: 8s, agents: 200 }',
        'background:',
        '  sessions: { rate: 15/s }',
        'slo:',
        '  p99: 5s',
        '  errors: 50%',
        '  minAchieved: 10%',
        'faults:',
        '  - { at: 5s, slow: analytics, by: 10x, for: 2.5s }',
        'timeLimit: 1m',
        '',
      ].join('\n'),
    );
    const out = join(dir, 'out');
    const { result } = await runScenario({ scenario: loadScenario(file), outDir: out, allowRemote: false });
    expect(result.complete, result.error ?? '').toBe(true);
    expect(result.stack.nodes.map((n) => n.name)).toEqual(['db', 'analytics', 'app', 'relay-1', 'relay-2']);
    const [f] = result.faults;
    if (process.env.RMMSCALE_E2E_PRINT) console.log(JSON.stringify({ fault: f, alertDelayMs: result.alertDelayMs, alertDelayTimeline: result.alertDelayTimeline, ledger: result.ledger }));
    expect(f).toMatchObject({ action: 'slow', node: 'analytics', byFactor: 10, bySec: null, forSec: 2.5, outcome: 'done' });
    // Alerts were raised on both sides, and those from frames sent while the sink was slow came later.
    const during = f!.alertDelayMs!;
    const clean = f!.alertDelayCleanMs!;
    expect(during.alerts).toBeGreaterThanOrEqual(3);
    expect(clean.alerts).toBeGreaterThanOrEqual(3);
    expect(during.p50Ms).toBeGreaterThan(clean.p50Ms);
    expect(result.alertDelayMs!.alerts).toBeGreaterThanOrEqual(during.alerts + clean.alerts);
    // Per second, by the frames' send time: every alert of the run in exactly one second, in order;
    // with under 100 alerts a second, a second's p99 is its slowest, so the slowest second's is the run's max.
    const timeline = result.alertDelayTimeline!;
    expect(timeline.reduce((n, s) => n + s.alerts, 0)).toBe(result.alertDelayMs!.alerts);
    expect(timeline.map((s) => s.tSec)).toEqual([...new Set(timeline.map((s) => s.tSec))].sort((a, b) => a - b));
    expect(Math.max(...timeline.map((s) => s.alerts))).toBeLessThan(100);
    expect(Math.max(...timeline.map((s) => s.p99Ms))).toBe(result.alertDelayMs!.maxMs);
    // The tunnel and the operators' path: within 10% of the clean part, plus an absolute slack for a shared host.
    const op = (name: string) => f!.latencyVsClean!.find((x) => x.op === name)!;
    const ping = op('ws-ping');
    expect(ping.faultCount).toBeGreaterThan(100);
    expect(ping.faultP50Ms!).toBeLessThanOrEqual(ping.cleanP50Ms! * 1.1 + 5);
    // A few dozen sessions a span here: their median moves by more than 10% by chance (at 5/s, a
    // dozen a span, a full run saw 317 against 620 ms), so this run bounds the typical session
    // during the fault by the clean tail and requires the sessions to keep working; "within 10%"
    // is judged by the scenario's verdict on thousands of sessions (scenarios/analytics-degraded.yaml).
    const session = op('user-session');
    expect(session.faultCount).toBeGreaterThan(3);
    expect(session.faultP50Ms!).toBeLessThanOrEqual(session.cleanP99Ms!);
    const sessions = result.windows[0]!.background!.ops['user-session']!;
    expect(sessions.completed).toBeGreaterThan(20);
    expect(sessions.failed).toBeLessThanOrEqual(sessions.count * 0.05);
    // The telemetry ack (the agent's check-in on a tunnel) does not wait for the analytics node: the
    // relay acks once the frame is on its own disk (relay/telemetry-spool.ts). Its median is the
    // batch wait (up to 250 ms) plus an fsync; acking after the slowed commit added ~10 × 20 ms.
    const rtt = op('ws-rtt');
    expect(rtt.faultCount).toBeGreaterThan(100);
    expect(rtt.faultP50Ms!).toBeLessThanOrEqual(rtt.cleanP50Ms! * 1.1 + 25);
    // Every op carries a verdict on "within 10%" (2.5 s is too short for most intervals: unresolved).
    for (const l of f!.latencyVsClean!) expect(['held', 'broken', 'unresolved']).toContain(l.within10pct);
    // Nothing acked is lost: every acked frame's key is in the analytics store, once.
    expect(result.ledger).toMatchObject({ lost: 0, duplicated: 0 });
    expect(result.ledger!.acked).toBeGreaterThan(500);
    expect(result.ledger!.stored).toBeGreaterThanOrEqual(result.ledger!.acked);
    expect(resultProblems(JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')))).toEqual([]);
    for (const n of result.stack.nodes) expect(alive(n.pid)).toBe(false);
  }, 60_000);
});
