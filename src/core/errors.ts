import { EXIT, type ExitCode } from './exit-codes.js';

/**
 * Known errors: small classes with stable codes and exact messages. The CLI prints `message` on one
 * line and exits with `exitCode`; anything that is not an RmmscaleError is a bug and gets a stack.
 */
export class RmmscaleError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;
  constructor(code: string, message: string, exitCode: ExitCode) {
    super(message);
    this.name = 'RmmscaleError';
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** A bad flag or config value: names the field, the value, and what is allowed. Exit 2. */
export class InvalidArgumentError extends RmmscaleError {
  readonly field: string;
  constructor(field: string, value: unknown, allowed: string) {
    super('ERR_INVALID_ARGUMENT', `${field}: expected ${allowed}, got ${formatValue(value)}`, EXIT.badInput);
    this.field = field;
  }
}

/** Several validation problems at once (config files): one line each. Exit 2. */
export class ValidationError extends RmmscaleError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super('ERR_VALIDATION', problems.join('\n'), EXIT.badInput);
    this.problems = problems;
  }
}

/** A target outside loopback without --allow-remote. Exit 2. */
export class RemoteTargetError extends RmmscaleError {
  constructor(flag: string, target: string) {
    super(
      'ERR_REMOTE_TARGET',
      `${flag}: ${target} is not a loopback address (127.0.0.0/8, ::1, localhost); pass --allow-remote to load a remote stack on purpose`,
      EXIT.badInput,
    );
  }
}

/** The system under test could not be reached or failed outright. Exit 3. */
export class TargetUnreachableError extends RmmscaleError {
  constructor(target: string, reason: string) {
    super('ERR_TARGET_UNREACHABLE', `target ${target} is unreachable: ${reason}`, EXIT.sutFailed);
  }
}

/** A stack node or external tool could not be started. Exit 3. */
export class StackError extends RmmscaleError {
  constructor(message: string) {
    super('ERR_STACK', message, EXIT.sutFailed);
  }
}

export function formatValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'nothing';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
