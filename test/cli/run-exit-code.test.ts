import { describe, expect, it } from 'vitest';
import { runOutcome } from '../../src/cli/commands/run.js';
import { EXIT } from '../../src/core/exit-codes.js';
import { DEFAULT_GATE, runGate, type GateReport } from '../../src/gate/gate.js';
import { ThresholdError } from '../../src/gate/grammar.js';
import type { RunResult } from '../../src/run/result-types.js';
import { runResult, runWithCheckinP99, type RunFixture } from '../gate/fixtures.js';

/**
 * `rmmscale run`'s exit code as a decision table. Each row is a run (a hand-built result, checkin
 * p99 400 ms unless said) and what the gate made of it, judged by the real gate, as `run` does.
 */

const PASS = ['checkin.p99 < 500ms'];
const FAIL = ['checkin.p99 < 300ms'];

/** The gate on this result, as `rmmscale run` calls it (null: no thresholds). */
function gateOf(r: RunResult): GateReport | null {
  return r.thresholds.length ? runGate({ current: [{ file: 'result.json', result: r }], baseline: [], thresholds: [], ...DEFAULT_GATE }) : null;
}

/** A staged run whose second stage breached the SLO. */
function breached(f: RunFixture = {}): RunResult {
  const r = runResult(f);
  const second = { ...r.windows[0], index: 1, label: 'stage 2/2', verdict: { ok: false, breaches: ['checkin p99 1,200 ms > SLO 500 ms'] } };
  r.windows = [{ ...r.windows[0], label: 'stage 1/2' }, second];
  r.headline = { ...r.headline!, windowIndex: 1 };
  return r;
}

/** A staged run whose ramp (stage 1) breached the SLO and whose last stage, the headline, held. */
function rampBreached(f: RunFixture = {}): RunResult {
  const r = runResult(f);
  const ramp = { ...r.windows[0], label: 'stage 1/2', verdict: { ok: false, breaches: ['checkin p99 1,180 ms > SLO 1,000 ms'] } };
  r.windows = [ramp, { ...r.windows[0], index: 1, label: 'stage 2/2' }];
  r.headline = { ...r.headline!, windowIndex: 1 };
  return r;
}

function interrupted(f: RunFixture = {}): RunResult {
  const r = runResult({ ...f, complete: false, error: 'interrupted (Ctrl-C)', trustworthy: false, warnings: ['incomplete: interrupted (Ctrl-C)'] });
  r.interrupted = true;
  return r;
}

/** A ceiling search that found its ceiling: some of its windows breached the SLO, as they must. */
function search(f: RunFixture = {}): RunResult {
  const r = runResult({ ...f, search: { outcome: 'found', ceilingAgents: 20_000, lastGood: 20_000, firstBad: 21_000 } });
  r.windows = [r.windows[0], { ...r.windows[0], index: 1, label: 'step 2', verdict: { ok: false, breaches: ['checkin p99 1,200 ms > SLO 500 ms'] } }];
  return r;
}

/** A run whose ledger found `lost` acknowledged writes and `commandsLost` commands missing. */
function ledgerLost(lost: number, commandsLost: number, f: RunFixture = {}): RunResult {
  const r = runResult(f);
  r.ledger = { acked: 900, stored: 900 - lost, lost, duplicated: 0, commandsCreated: 12, commandsDelivered: 12 - commandsLost - 2, commandsLost };
  return r;
}

describe('runOutcome: what `rmmscale run` exits with (first matching row wins)', () => {
  it.each<[string, RunResult, number, RegExp]>([
    ['no thresholds, every stage met the SLO', runResult(), EXIT.ok, /^passed$/],
    ['thresholds passed', runResult({ thresholds: PASS }), EXIT.ok, /^passed: 1 threshold: 1 passed \(1 current run\)$/],
    ['a threshold failed', runResult({ thresholds: [...PASS, ...FAIL] }), EXIT.gateFailed, /^thresholds failed: 2 thresholds: 1 passed, 1 failed/],
    ['the last stage breached the SLO, no thresholds', breached(), EXIT.sutFailed, /^the system under test breached the SLO in stage 2\/2: checkin p99 1,200 ms > SLO 500 ms$/],
    ['the last stage breached the SLO, thresholds passed', breached({ thresholds: PASS }), EXIT.sutFailed, /breached the SLO in stage 2\/2/],
    ['only the ramp before the judged stage breached: judged as the report judges, by the last stage', rampBreached(), EXIT.ok, /^passed$/],
    ['a threshold failed beats a breached stage', breached({ thresholds: FAIL }), EXIT.gateFailed, /^thresholds failed/],
    ['a ceiling search is not failed by its breaching windows', search({ thresholds: ['ceiling.agents >= 15000'] }), EXIT.ok, /^passed: 1 threshold: 1 passed/],
    ['a ceiling search below a ceiling threshold fails it', search({ thresholds: ['ceiling.agents >= 25000'] }), EXIT.gateFailed, /^thresholds failed/],
    ['untrustworthy: never judged, even with a failed threshold and a breached stage', breached({ thresholds: FAIL, trustworthy: false, warnings: ['generator-bound: a worker above 90% of a core'] }), EXIT.untrustworthy, /^the measurement is not trustworthy, so it is not judged \(generator-bound: a worker above 90% of a core\)$/],
    ['untrustworthy, thresholds would pass', runResult({ thresholds: PASS, trustworthy: false }), EXIT.untrustworthy, /not trustworthy/],
    ['incomplete (the stack failed): beats untrustworthy and a failed threshold', runResult({ thresholds: FAIL, complete: false, error: 'node single exited (code 1)', trustworthy: false }), EXIT.sutFailed, /^the run did not complete: node single exited \(code 1\)$/],
    ['the ledger is whole: passed', ledgerLost(0, 0), EXIT.ok, /^passed$/],
    ['the ledger lost acknowledged writes: beats untrustworthy and a passed threshold', ledgerLost(3, 0, { thresholds: PASS, trustworthy: false }), EXIT.sutFailed, /^the ledger lost data: 3 of 900 acknowledged writes are not in the database$/],
    ['the ledger lost created commands', ledgerLost(0, 1), EXIT.sutFailed, /^the ledger lost data: 1 of 12 created commands were lost$/],
    ['interrupted: beats everything', interrupted({ thresholds: FAIL }), EXIT.interrupted, /^interrupted: the partial result was written \(interrupted \(Ctrl-C\)\)$/],
    ['a threshold metric with no value (no headline window)', runResult({ thresholds: PASS, headline: false }), EXIT.untrustworthy, /^a threshold could not be judged: checkin\.p99 < 500ms: no value: result\.json: no headline window/],
  ])('%s → %i', (_name, result, code, reason) => {
    const o = runOutcome(result, gateOf(result));
    expect(o.exitCode).toBe(code);
    expect(o.reason).toMatch(reason);
  });

  it('a threshold the gate refuses (it cannot apply to this run) is bad input, 2, below the run\'s own failures', () => {
    const refused = new ThresholdError('result.json: thresholds[0]', 'chekin.p99 < 1s', 'no operation "chekin" in result.json (headline.client.ops: checkin, heartbeat); did you mean "checkin"?');
    expect(runOutcome(runResult(), refused)).toEqual({ exitCode: EXIT.badInput, reason: refused.message });
    expect(runOutcome(breached(), refused).exitCode).toBe(EXIT.badInput);
    expect(runOutcome(runResult({ trustworthy: false }), refused).exitCode).toBe(EXIT.untrustworthy);
    expect(runOutcome(interrupted(), refused).exitCode).toBe(EXIT.interrupted);
  });

  it('the table rows are what the gate itself decides: the same thresholds, the same verdicts', () => {
    // The fixture's checkin p99 is 400 ms, so the PASS and FAIL bounds sit on either side of it.
    expect(gateOf(runWithCheckinP99(400, { thresholds: PASS }))!.outcome).toBe('pass');
    expect(gateOf(runWithCheckinP99(400, { thresholds: FAIL }))!.outcome).toBe('fail');
  });
});
