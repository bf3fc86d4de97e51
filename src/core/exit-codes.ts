/**
 * Every exit code rmmscale uses, in one place. Scripts and CI key on these, so they are stable.
 *
 * | code | name              | meaning                                                        |
 * | ---- | ----------------- | -------------------------------------------------------------- |
 * | 0    | ok                | the run finished and the system under test held up              |
 * | 1    | internal          | a bug in rmmscale: the stack trace is printed                   |
 * | 2    | badInput          | a bad flag, value, file or config: one line says which          |
 * | 3    | sutFailed         | the system under test failed (unreachable, error rate too high) |
 * | 4    | untrustworthy     | the measurement is not to be trusted (generator- or host-bound) |
 * | 5    | gateFailed        | `rmmscale gate`: a threshold or a baseline comparison failed    |
 * | 130  | interrupted       | Ctrl-C / SIGTERM: partial results were written                  |
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
