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

export class StoreClosedError extends Error {
  constructor() {
    super('the store is closed');
    this.name = 'StoreClosedError';
  }
}
