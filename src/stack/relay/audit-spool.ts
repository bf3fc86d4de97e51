import { open, readFile, type FileHandle } from 'node:fs/promises';
import { StoreUnavailableError } from '../store/errors.js';
import type { NodeMetricsApi, SessionAuditRecord, Store } from '../types.js';

/**
 * The relay's audit stream when the control plane is down. The article: "Control plane degraded.
 * Agents and sessions keep working; new policy changes pause." Yet every session must leave an
 * audit record (issue 14). So a relay writes each record to the database when it can, and when it
 * cannot (the call failed, or took longer than `deadlineMs`: a hung db answers nothing for its
 * whole 10 s call timeout), it appends the record to a local spool file and fsyncs it before the
 * session goes on: no record, no session, but a record on the relay's own disk counts.
 *
 * A drain loop (every `drainEveryMs`) replays the spool to the database from its oldest record,
 * DRAIN_WINDOW at a time, stopping at the first failure; once all of it is in, the file is
 * truncated. The records are upserts by session id, and the database never moves a record back
 * from an end to `open` (schema-sql.ts), so a replay after a crash mid-drain, a timed-out direct
 * write that commits late, or two records of one session landing out of order within a window,
 * stores nothing twice and loses no outcome. Once a write missed its deadline, every new record
 * joins the spool (each session is not made to wait out the deadline) until the drain lands one
 * again: then new records go to the database while the drain empties the spool behind them. A
 * session with a record in the spool keeps its later ones there, so its open is written before its
 * end, and an older record of another session landing later changes nothing of this one.
 * Clearing on the first landed drain write, not on an empty spool: a database whose writes only
 * sometimes miss the deadline (the `automate` db's exponential 94 ms, one in 200 over 500 ms) kept
 * a relay spooling for seconds at a time, which swung its sessions' latency between two modes.
 *
 * Bounded: at most `maxRecords` waiting; past it a record cannot be kept and the session is
 * refused (StoreUnavailableError: 503 + retry-after). A relay restarted on the same spool file
 * (the launcher keeps it in the stack's data folder) drains what its predecessor left.
 */

export interface AuditSpoolOptions {
  /** The spool file (JSON lines). */
  file: string;
  store: Store;
  metrics: NodeMetricsApi;
  logError: (message: string) => void;
  /** A database write slower than this goes to the spool instead (default 500 ms). */
  deadlineMs?: number;
  /** Records waiting in the spool at most (default 100,000). */
  maxRecords?: number;
  /** How often the spool is replayed to the database (default 1 s). */
  drainEveryMs?: number;
}

export const DEFAULT_AUDIT_DEADLINE_MS = 500;
export const DEFAULT_AUDIT_SPOOL_MAX = 100_000;
/** Spooled records a drain writes to the database at once (at most this many calls in flight). */
export const DRAIN_WINDOW = 16;
/**
 * Records a drain may have sent past the oldest one still unanswered: a head slow to land (up to
 * the deadline) does not stop the rest. At 16 × 94 ms writes, 500 ms passes about 85.
 */
export const DRAIN_BEHIND_HEAD = 256;

/** A database write that did not answer within the deadline. */
class AuditDeadline extends Error {}

export class AuditSpool {
  private readonly pending: SessionAuditRecord[] = [];
  /** Sessions with a record in the spool: their later records follow it there. */
  private readonly spooledIds = new Set<string>();
  private fh: FileHandle | null = null;
  /** Appends and truncations, one at a time, in order. */
  private fileChain: Promise<void> = Promise.resolve();
  private draining = false;
  /**
   * A write missed its deadline or failed, and no drain write has landed since: the database is
   * taken to be down. Cleared by the first record a drain lands, not only once the spool is empty.
   */
  private dbDown = false;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly deadlineMs: number;
  private readonly maxRecords: number;
  /** Records written to the spool, and replayed from it, since start. */
  spooledTotal = 0;
  drainedTotal = 0;

  /** Records can be written once `load()` resolved. */
  constructor(private readonly o: AuditSpoolOptions) {
    this.deadlineMs = o.deadlineMs ?? DEFAULT_AUDIT_DEADLINE_MS;
    this.maxRecords = o.maxRecords ?? DEFAULT_AUDIT_SPOOL_MAX;
    this.timer = setInterval(() => void this.drain(), o.drainEveryMs ?? 1000);
    this.timer.unref();
  }

  /** Open the spool file, taking over the records a predecessor on the same file left. */
  async load(): Promise<void> {
    const o = this.o;
    let text = '';
    try {
      text = await readFile(o.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const r = JSON.parse(line) as SessionAuditRecord;
        this.pending.push(r);
        this.spooledIds.add(r.id);
      } catch {
        // a line cut short by a crash mid-append: it was never fsynced, so no session relied on it
      }
    }
    this.fh = await open(o.file, 'a', 0o600);
    // A predecessor's records: taken as a database that was down, until the drain lands one.
    this.dbDown = this.pending.length > 0;
    this.gauge();
  }

  /** Records waiting for the database. */
  get size(): number {
    return this.pending.length;
  }

  /**
   * Keep one record: in the database, or else durably in the spool. Throws StoreUnavailableError
   * only when it could be kept in neither (the spool is full or its disk failed).
   */
  async write(r: SessionAuditRecord): Promise<void> {
    // While the database is taken to be down (a write missed its deadline, and the drain has not
    // landed one since), new records go straight to the spool instead of waiting out the deadline
    // each. A session with a record in the spool keeps the rest there, after it.
    if ((!this.dbDown || this.pending.length === 0) && !this.spooledIds.has(r.id)) {
      try {
        await this.direct(r);
        return;
      } catch (err) {
        this.dbDown = true;
        const why = err instanceof AuditDeadline ? `no answer within ${this.deadlineMs} ms` : (err as Error).message;
        this.o.logError(`session audit ${r.id}: the database did not take it (${why}); spooled on this relay until it does`);
      }
    }
    await this.spool(r);
  }

  private direct(r: SessionAuditRecord): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new AuditDeadline()), this.deadlineMs);
      this.o.store.auditSession(r).then(
        () => {
          clearTimeout(t);
          resolve();
        },
        (err: unknown) => {
          clearTimeout(t);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  private async spool(r: SessionAuditRecord): Promise<void> {
    if (this.closed || !this.fh) throw new StoreUnavailableError('the relay is stopping; its audit spool is closed');
    if (this.pending.length >= this.maxRecords) {
      this.o.metrics.count('session-audit-spool-full');
      throw new StoreUnavailableError(`the database is unreachable and this relay's audit spool holds ${this.pending.length} records, its limit`);
    }
    const fh = this.fh;
    const line = `${JSON.stringify(r)}\n`;
    // Counted as waiting only once it is on disk, and in the same turn of the file chain, so that a
    // drain's truncation (queued on the same chain) sees it.
    const appended = this.fileChain.then(async () => {
      await fh.appendFile(line);
      await fh.datasync();
      this.pending.push(r);
      this.spooledIds.add(r.id);
    });
    this.fileChain = appended.catch(() => undefined);
    try {
      await appended;
    } catch (err) {
      throw new StoreUnavailableError(`the database is unreachable and the audit spool could not be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    this.spooledTotal++;
    this.o.metrics.count('session-audit-spooled');
    this.gauge();
  }

  /**
   * Replay the spool from its oldest record, DRAIN_WINDOW writes in flight at a time; stop sending
   * at the first record the database does not take. One at a time, a drain wrote about 10 records/s
   * against a database with ~100 ms writes, while 5 sessions/s write 10: past that, a relay that
   * spooled once (one write over the deadline) never left the spool, and it grew until it refused
   * sessions. The spool's head leaves as soon as it and every record before it landed. Records
   * landing out of order is harmless: they are upserts by session id and an ended record is never
   * moved back to open (schema-sql.ts), so the database ends as an in-order replay leaves it.
   */
  async drain(): Promise<void> {
    if (this.draining || this.closed || this.pending.length === 0) return;
    this.draining = true;
    try {
      await new Promise<void>((finished) => {
        // The records sent, in spool order: pending[i] is sent[i] while i < sent.length.
        const sent: Array<{ landed: boolean }> = [];
        let inFlight = 0;
        let failed = false;
        const pump = (): void => {
          let landed = 0;
          while (landed < sent.length && sent[landed]!.landed) landed++;
          if (landed > 0) {
            sent.splice(0, landed);
            this.pending.splice(0, landed);
            this.drainedTotal += landed;
            this.o.metrics.count('session-audit-drained', landed);
            this.gauge();
          }
          // Bounded: DRAIN_WINDOW calls in flight, and DRAIN_BEHIND_HEAD sent behind a slow head.
          while (!failed && inFlight < DRAIN_WINDOW && sent.length < this.pending.length && sent.length < DRAIN_BEHIND_HEAD) {
            const slot = { landed: false };
            const r = this.pending[sent.length]!;
            sent.push(slot);
            inFlight++;
            this.direct(r).then(
              () => {
                slot.landed = true;
                this.dbDown = false; // it answers again: new records go to it, while the spool drains behind them
                inFlight--;
                pump();
              },
              () => {
                failed = true; // still down: the next tick tries again (what landed behind it is replayed, harmlessly)
                inFlight--;
                pump();
              },
            );
          }
          if (inFlight === 0) finished();
        };
        pump();
      });
      if (this.pending.length > 0) return;
      // Everything is in the database: empty the file (after any append still in flight).
      const fh = this.fh;
      if (fh && this.pending.length === 0) {
        const emptied = this.fileChain.then(async () => {
          if (this.pending.length === 0) {
            await fh.truncate(0);
            await fh.datasync();
            this.spooledIds.clear();
          }
        });
        this.fileChain = emptied.catch(() => undefined);
        await emptied.catch((err: unknown) => this.o.logError(`audit spool ${this.o.file}: could not be emptied (${(err as Error).message}); its records are replayed again, harmlessly`));
      }
    } finally {
      this.draining = false;
      this.gauge();
    }
  }

  private gauge(): void {
    this.o.metrics.gauge('session-audit-spooled', this.pending.length);
  }

  /** One last drain attempt, then the file is closed; what is left stays in it for the next start. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.drain();
    this.closed = true;
    await this.fileChain;
    await this.fh?.close().catch(() => undefined);
    this.fh = null;
  }
}
