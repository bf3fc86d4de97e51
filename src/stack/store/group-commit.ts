import { QueueFullError } from '../capacity.js';
import { StoreClosedError } from './errors.js';

/**
 * Group commit: writes that arrive close together share one transaction, and each writer's promise
 * resolves only after that transaction has committed. With `synchronous=FULL` (SQLite) or
 * `fsync=on` (PostgreSQL) a commit costs a disk flush, so one flush per batch instead of one per
 * write is what lets a durable store keep up with a fleet.
 *
 *   write A ──┐                      ┌─► A resolves
 *   write B ──┼── window (≤ windowMs ├─► B resolves     one BEGIN … COMMIT for A, B, C
 *   write C ──┘   or maxBatch jobs)  └─► C resolves
 *
 * A batch starts when the first queued write has waited `windowMs`, or at once when `maxBatch`
 * writes are queued. At most `maxInFlight` batches run at a time: writes arriving while that many
 * commit wait for one to end and then go out together without a further window (they have
 * already waited).
 */

export interface GroupCommitOptions {
  /** How long the first write of a batch waits for company; 0 means "the same event-loop turn". */
  windowMs: number;
  /** A batch commits at once when this many writes are queued. */
  maxBatch: number;
  /**
   * Batches committing at once (default 1). SQLite has one writer anyway; PostgreSQL gains from
   * a few, because its cost per batch is round trips rather than the flush.
   */
  maxInFlight?: number;
  /**
   * Writes that may wait for a batch (default DEFAULT_MAX_QUEUED). Past it `submit` rejects at
   * once with QueueFullError (the runtime answers 503 + retry-after), so a database that cannot
   * keep up costs bounded memory instead of a queue that grows until the node dies.
   */
  maxQueued?: number;
}

export const DEFAULT_MAX_QUEUED = 20_000;

/**
 * Same-turn batching by default: the store's commit blocks (SQLite) or awaits (PostgreSQL) while
 * new writes queue, so batches grow with load on their own. Measured (docs/stack-roles.md): a
 * 1 ms window gave the same throughput at 256 writes outstanding and cost 1.2 ms per write at 1.
 */
export const DEFAULT_GROUP_COMMIT: GroupCommitOptions = { windowMs: 0, maxBatch: 128 };

export interface WriteJob<C> {
  run(conn: C): unknown;
  /** The row the write locks first (the agent id), so a committer can lock in a fixed order. */
  key: string;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/** Commits a batch: runs every job in one transaction and settles each job itself. */
/**
 * The order to run a batch's jobs in when several batches commit at once: by key (stable, so one
 * agent's writes keep their order). Two batches that lock agent rows in the same order can wait
 * for each other but never deadlock.
 */
export function lockOrder<C>(jobs: ReadonlyArray<WriteJob<C>>): number[] {
  return jobs.map((_, i) => i).sort((a, b) => (jobs[a].key < jobs[b].key ? -1 : jobs[a].key > jobs[b].key ? 1 : a - b));
}

export type BatchCommitter<C> = (jobs: Array<WriteJob<C>>) => void | Promise<void>;

export class GroupCommit<C> {
  private queue: Array<WriteJob<C>> = [];
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private inFlight = 0;
  private readonly running = new Set<Promise<void>>();
  private closed = false;
  /** Commits so far and the writes they carried: writes / commits is the batching ratio. */
  commits = 0;
  writes = 0;

  constructor(
    private readonly commit: BatchCommitter<C>,
    private readonly opts: GroupCommitOptions = DEFAULT_GROUP_COMMIT,
  ) {}

  /** Writes refused at the queue bound so far. */
  refused = 0;

  get queued(): number {
    return this.queue.length;
  }

  submit<T>(run: (conn: C) => T | Promise<T>, key = ''): Promise<Awaited<T>> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    const max = this.opts.maxQueued ?? DEFAULT_MAX_QUEUED;
    if (this.queue.length >= max) {
      this.refused++;
      return Promise.reject(new QueueFullError(0, max, `group commit: ${this.queue.length} writes waiting, the limit`));
    }
    return new Promise<Awaited<T>>((resolve, reject) => {
      this.queue.push({ run, key, resolve: resolve as (v: unknown) => void, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.inFlight >= (this.opts.maxInFlight ?? 1)) return; // a running batch picks the queue up when it ends
    if (this.queue.length >= this.opts.maxBatch) {
      this.flushNow();
      return;
    }
    if (this.timer || this.immediate) return;
    if (this.opts.windowMs > 0) this.timer = setTimeout(() => this.flushNow(), this.opts.windowMs);
    else this.immediate = setImmediate(() => this.flushNow());
  }

  private flushNow(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
    if (this.inFlight >= (this.opts.maxInFlight ?? 1) || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.opts.maxBatch);
    this.commits++;
    this.writes += batch.length;
    let done: void | Promise<void>;
    try {
      done = this.commit(batch);
    } catch (err) {
      for (const j of batch) j.reject(err);
      done = undefined;
    }
    if (done instanceof Promise) {
      this.inFlight++;
      const p: Promise<void> = done
        .catch((err: unknown) => {
          for (const j of batch) j.reject(err);
        })
        .finally(() => {
          this.inFlight--;
          this.running.delete(p);
          if (this.queue.length > 0) this.flushNow();
        });
      this.running.add(p);
      if (this.queue.length > 0) this.schedule();
    } else if (this.queue.length > 0) {
      this.schedule();
    }
  }

  /** Commit everything queued, wait for it, and refuse later writes. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running.size > 0 || this.queue.length > 0) {
      if (this.queue.length > 0 && this.inFlight < (this.opts.maxInFlight ?? 1)) this.flushNow();
      else await Promise.race(this.running);
    }
  }
}
