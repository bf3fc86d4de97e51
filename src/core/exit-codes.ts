/**
 * Every exit code rmmscale uses, in one place. Scripts and CI key on these, so they are stable.
 *
 * | code | name              | meaning                                                        |
 * | ---- | ----------------- | -------------------------------------------------------------- |
 * | 0    | ok                | the run finished and the system under test held up              |
 * | 1    | internal          | a bug in rmmscale: the stack trace is printed                   |
 * | 2    | badInput          | a bad flag, value, file or config: one line says which          |
 * | 3    | sutFailed         | the system under test failed (unreachable, error rate too high, |
 * |      |                   | the run did not complete, a staged run's last stage broke the SLO) |
 * | 4    | untrustworthy     | the measurement is not to be trusted (generator- or host-bound) |
 * | 5    | gateFailed        | a threshold or a baseline comparison failed (`rmmscale gate`,   |
 * |      |                   | and `rmmscale run` on the scenario's `thresholds:`)             |
 * | 130  | interrupted       | Ctrl-C / SIGTERM: partial results were written                  |
 *
 * `rmmscale run` returns the first that applies: 130 interrupted > 3 incomplete > 4 untrustworthy
 * (never judged) > 5 a threshold failed > 3 the last stage breached the SLO > 0 (`runOutcome` in
 * src/cli/commands/run.ts). A ceiling search is not failed by the steps that broke the SLO: that is how
 * it finds the ceiling.
 */
export const EXIT = {
  ok: 0,
  internal: 1,
  badInput: 2,
  sutFailed: 3,
  untrustworthy: 4,
  gateFailed: 5,
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
