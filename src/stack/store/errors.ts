/**
 * Store failures a caller can act on. A web node answers StoreUnavailableError with 503 and
 * `retry-after` (the database tier is overloaded or down: the agent should come back later),
 * anything else with 500.
 */
export class StoreUnavailableError extends Error {
  constructor(readonly reason: string) {
    super(`the database is unavailable: ${reason}`);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * A DBAgent write carried a lease term (its fencing token) that is no longer the lease's: another
 * instance has taken the lease since, so this one's write is refused. A leader paused past its TTL
 * (SIGSTOP, a long GC) cannot write after it wakes. Over the db RPC this is a 409.
 */
export class LeaseFencedError extends Error {
  constructor(
    readonly lease: string,
    readonly token: number,
    readonly current: number | null,
  ) {
    super(`lease ${lease}: term ${token} is over (the lease is now at term ${current ?? 'none'}); the write was refused`);
    this.name = 'LeaseFencedError';
  }
}

export class StoreClosedError extends Error {
  constructor() {
    super('the store is closed');
    this.name = 'StoreClosedError';
  }
}
