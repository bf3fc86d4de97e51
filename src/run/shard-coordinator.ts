import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { RmmscaleError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { deriveKey, sameCredential } from '../core/identity.js';
import type { Scenario } from '../scenario/types.js';
import type { TrustBasis } from '../swarm/generator-trust.js';
import type { SwarmResult } from '../swarm/result.js';
import { describeShard, type Shard } from '../swarm/shard.js';
import { bearerToken } from '../stack/auth.js';
import type { WindowSpec } from './plan-window.js';
import type { RunMergedShard } from './result-types.js';

/**
 * The coordinator of a sharded run (`rmmscale run --shard 0/n --coordinator`) and its followers
 * (`--coordinator-url URL` on the other shards): a small HTTP control endpoint, not a cluster
 * protocol. Every request carries `Authorization: Bearer KEY`, KEY = deriveKey(the stack's secret,
 * 'shard-coordinator'); a wrong or missing key gets 401.
 *
 *   POST /v1/join   {index, count, fingerprint} → {nowMs}     a follower joins (and reads the clock)
 *   POST /v1/next   {index, window} → the window's plan, once the coordinator has decided it:
 *                   {action: 'measure', spec} | {action: 'done', search} | {action: 'abort', reason}
 *   POST /v1/start  {index, window} → {action: 'start', startAtEpochMs} once every shard's swarm is
 *                   ready for the window (the barrier), or {action: 'abort', reason}
 *   POST /v1/result {index, window, swarm, trustworthy, why} → {}   a follower's measured window
 *   (`next` and `start` are held at most HOLD_MS, then answered {action: 'wait'}: ask again)
 *
 * Per window: the coordinator decides the load (its ceiling search, or its next stage) and
 * announces it; each shard starts the swarm of its 1/n slice, and once its workers are ready asks to
 * start; when every shard is ready (the barrier) the coordinator gives them all one start time on
 * its clock, leadMs ahead (each follower moves it onto its own clock by the offset it measured).
 * The followers post their window's swarm result (exact histograms); the coordinator merges them
 * with its own (swarm/merge-shards.ts), judges the merged window and decides the next. Every wait is
 * bounded: a shard that does not come back in time fails the run with one line naming it, and what
 * was measured is still written.
 */

export const DEFAULT_COORDINATOR_PORT = 7470;
/** Loopback unless asked (a pod's coordinator listens on 0.0.0.0, behind its Service). */
export const DEFAULT_COORDINATOR_HOST = '127.0.0.1';
/** A ready request is held at most this long, then answered `wait` (the follower asks again). */
const HOLD_MS = 20_000;
const MAX_BODY_BYTES = 256 * 1024 * 1024;

export interface CoordinationTimeouts {
  /** Before the first window: every follower must have joined by then. */
  joinMs: number;
  /** Each window's barrier: every follower ready (it settles the stack first, up to 60 s). */
  barrierMs: number;
  /** After the coordinator's own window ended: every follower's result posted. */
  resultMs: number;
  /** A follower: how long the coordinator may not answer at all before the run fails. */
  unreachableMs: number;
  /** Each window starts this long after the barrier's release, so that every follower hears it and starts its swarm in time. */
  leadMs: number;
}

export const DEFAULT_TIMEOUTS: CoordinationTimeouts = { joinMs: 120_000, barrierMs: 120_000, resultMs: 60_000, unreachableMs: 30_000, leadMs: 1000 };

/** The search's end, as followers record it. */
export interface SearchEnd {
  outcome: 'found' | 'below-start' | 'above-max' | 'untrustworthy' | 'budget';
  ceilingLoad: number | null;
  lastGood: number | null;
  firstBad: number | null;
}

export type WindowPlan =
  | { action: 'measure'; window: number; spec: WindowSpec }
  | { action: 'done'; window: number; search: SearchEnd | null }
  | { action: 'abort'; window: number; reason: string }
  | { action: 'wait'; window: number };

export type StartPlan = { action: 'start'; window: number; startAtEpochMs: number } | { action: 'abort'; window: number; reason: string } | { action: 'wait'; window: number };

/** A follower's measured window. */
export interface ShardWindow {
  index: number;
  window: number;
  swarm: SwarmResult;
  /** The shard's own judgement of its rig (GeneratorTrust on its window). */
  trustworthy: boolean;
  /** How it was judged: `could-flip` was relative to the shard's own share of the SLO figures, which the merged window judges again. */
  judgedAs: TrustBasis | null;
  why: string;
}

export class CoordinationError extends RmmscaleError {
  constructor(message: string) {
    super('ERR_SHARD_COORDINATION', message, EXIT.sutFailed);
  }
}

export function coordinatorKey(secret: string): string {
  return deriveKey(secret, 'shard-coordinator');
}

/** What must be equal on every shard of one run: the scenario as written, its seed and the shard count. */
export function runFingerprint(sc: Pick<Scenario, 'name' | 'definition' | 'fleet'>, count: number): string {
  return createHash('sha256').update(JSON.stringify([sc.name, sc.fleet.seed, count, sc.definition])).digest('hex').slice(0, 16);
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | null> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(c as Buffer);
  }
  try {
    const doc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

interface Waiter<T> {
  resolve: (v: T) => void;
}

/** A value some requests wait for (a window's plan), set once. */
class Slot<T> {
  value: T | null = null;
  private waiters: Array<Waiter<T>> = [];
  set(v: T): void {
    this.value = v;
    for (const w of this.waiters.splice(0)) w.resolve(v);
  }
  wait(ms: number): Promise<T | null> {
    if (this.value !== null) return Promise.resolve(this.value);
    return new Promise((resolve) => {
      const w: Waiter<T> = { resolve: (v) => (clearTimeout(t), resolve(v)) };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(null);
      }, ms);
      this.waiters.push(w);
    });
  }
}

/**
 * The coordinator's side: the control endpoint and the per-window barrier and collection. The
 * coordinator's run calls beginWindow before each window, collect after it, and finish at the end.
 */
export class ShardCoordinator {
  private server: Server | null = null;
  private readonly key: string;
  private readonly joined = new Map<number, number>();
  private readonly ready = new Map<number, Set<number>>();
  private readonly plans = new Map<number, Slot<WindowPlan>>();
  private readonly starts = new Map<number, Slot<StartPlan>>();
  private readonly results = new Map<number, Map<number, ShardWindow>>();
  private readonly changed = new Set<() => void>();
  /** Each follower's last plan handed out (done or abort at the end). */
  private readonly heardEnd = new Set<number>();
  private endPlan: WindowPlan | null = null;
  url = '';

  constructor(
    private readonly shard: Shard,
    secret: string,
    private readonly fingerprint: string,
    private readonly timeouts: CoordinationTimeouts = DEFAULT_TIMEOUTS,
  ) {
    this.key = coordinatorKey(secret);
  }

  /** The followers: every shard index but the coordinator's. */
  get followers(): number[] {
    return Array.from({ length: this.shard.count }, (_, i) => i).filter((i) => i !== this.shard.index);
  }

  async listen(host: string, port: number): Promise<string> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 0;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new RmmscaleError('ERR_INVALID_ARGUMENT', `--coordinator-port: cannot listen on ${host}:${port} (${err.code ?? err.message}); allowed: a free TCP port`, EXIT.badInput)),
      );
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    const addr = server.address();
    const bound = typeof addr === 'object' && addr ? addr.port : port;
    this.url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
    return this.url;
  }

  private notify(): void {
    for (const f of [...this.changed]) f();
  }

  /** Resolves when `done()` holds, or rejects with `timeoutError()` after `ms` (or when the run is aborted). */
  private until(done: () => boolean, ms: number, timeoutError: () => Error, signal?: AbortSignal): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const finish = (err: Error | null): void => {
        clearTimeout(timer);
        this.changed.delete(check);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const check = (): void => {
        if (done()) finish(null);
      };
      const onAbort = (): void => finish(new CoordinationError('the run was aborted while waiting for its shards'));
      const timer = setTimeout(() => finish(timeoutError()), ms);
      this.changed.add(check);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private missing(have: ReadonlySet<number> | ReadonlyMap<number, unknown>): string {
    return this.followers
      .filter((i) => !have.has(i))
      .map((i) => describeShard({ index: i, count: this.shard.count }))
      .join(', ');
  }

  /** Window `k` is `spec`: the followers hear it (and start their swarms). */
  announce(k: number, spec: WindowSpec): void {
    this.slot(k).set({ action: 'measure', window: k, spec });
  }

  /**
   * The barrier of window `k`, once the coordinator's own swarm is ready: wait until every follower's
   * swarm is ready too, then give them all one start time (this clock), leadMs ahead.
   */
  async startGate(k: number, signal?: AbortSignal): Promise<number> {
    const ready = this.readySet(k);
    const first = k === 0;
    const ms = first ? this.timeouts.joinMs : this.timeouts.barrierMs;
    await this.until(
      () => this.followers.every((i) => ready.has(i)),
      ms,
      () =>
        new CoordinationError(
          first
            ? `shard ${this.missing(ready)} did not join the coordinator at ${this.url} and get ready within ${ms / 1000} s (are they running with --coordinator-url and the same secret?)`
            : `shard ${this.missing(ready)} was not ready for window ${k} within ${ms / 1000} s: it disappeared`,
        ),
      signal,
    );
    const startAtEpochMs = Date.now() + this.timeouts.leadMs;
    this.startSlot(k).set({ action: 'start', window: k, startAtEpochMs });
    return startAtEpochMs;
  }

  /** What the coordinator's own start gate waits at most: the barrier and the lead. */
  gateMaxMs(k: number): number {
    return (k === 0 ? this.timeouts.joinMs : this.timeouts.barrierMs) + this.timeouts.leadMs;
  }

  private readonly shards = new Map<number, RunMergedShard>();

  /** Each merged window's shards: what the coordinator's result lists as `mergedFrom`. */
  record(windowShards: ReadonlyArray<{ index: number; startedAt: string; trustworthy: boolean; clockOffsetMs: number | null }>): void {
    for (const s of windowShards) {
      const was = this.shards.get(s.index);
      this.shards.set(s.index, {
        index: s.index,
        count: this.shard.count,
        file: null,
        startedAt: was?.startedAt ?? s.startedAt,
        trustworthy: (was?.trustworthy ?? true) && s.trustworthy,
        clockOffsetMs: s.clockOffsetMs,
      });
    }
  }

  /** The shards of the coordinator's merged result, by index (every shard, measured or not). */
  mergedFrom(runStartedAt: string): RunMergedShard[] {
    return Array.from({ length: this.shard.count }, (_, i) => this.shards.get(i) ?? { index: i, count: this.shard.count, file: null, startedAt: runStartedAt, trustworthy: true, clockOffsetMs: i === this.shard.index ? 0 : null });
  }

  /** Every follower's result of window `k` (the coordinator's own window has ended). */
  async collect(k: number, signal?: AbortSignal): Promise<ShardWindow[]> {
    const got = this.resultMap(k);
    const ms = this.timeouts.resultMs;
    await this.until(
      () => this.followers.every((i) => got.has(i)),
      ms,
      () => new CoordinationError(`shard ${this.missing(got)} did not post window ${k}'s result within ${ms / 1000} s of its end: it disappeared`),
      signal,
    );
    return this.followers.map((i) => got.get(i)!);
  }

  /**
   * The end: the followers' next ready request hears `done` (with the search's end) or `abort`.
   * Waits, bounded, until each has heard it, then closes the endpoint.
   */
  async finish(end: { search: SearchEnd | null } | { reason: string }, graceMs = Math.min(10_000, this.timeouts.resultMs)): Promise<void> {
    this.endPlan = 'reason' in end ? { action: 'abort', window: -1, reason: end.reason } : { action: 'done', window: -1, search: end.search };
    for (const slot of this.plans.values()) if (slot.value === null) slot.set(this.endPlan);
    const stopped: StartPlan = { action: 'abort', window: -1, reason: 'reason' in end ? end.reason : 'the run ended' };
    for (const slot of this.starts.values()) if (slot.value === null) slot.set(stopped);
    this.notify();
    await this.until(() => this.followers.every((i) => this.heardEnd.has(i) || !this.joined.has(i)), graceMs, () => new Error('grace')).catch(() => undefined);
    await this.close();
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }

  private readySet(k: number): Set<number> {
    let s = this.ready.get(k);
    if (!s) this.ready.set(k, (s = new Set()));
    return s;
  }

  private slot(k: number): Slot<WindowPlan> {
    let s = this.plans.get(k);
    if (!s) {
      this.plans.set(k, (s = new Slot()));
      if (this.endPlan) s.set(this.endPlan);
    }
    return s;
  }

  private startSlot(k: number): Slot<StartPlan> {
    let s = this.starts.get(k);
    if (!s) {
      this.starts.set(k, (s = new Slot()));
      if (this.endPlan) s.set({ action: 'abort', window: k, reason: this.endPlan.action === 'abort' ? this.endPlan.reason : 'the run ended' });
    }
    return s;
  }

  private resultMap(k: number): Map<number, ShardWindow> {
    let m = this.results.get(k);
    if (!m) this.results.set(k, (m = new Map()));
    return m;
  }

  private follower(doc: Record<string, unknown>): number | null {
    const i = doc.index;
    return typeof i === 'number' && Number.isInteger(i) && this.followers.includes(i) ? i : null;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!sameCredential(bearerToken(req), this.key)) return answer(res, 401, { error: "a coordinator key is required (Authorization: Bearer KEY, derived from the stack's secret)" });
    if (req.method !== 'POST') return answer(res, 404, { error: 'expected POST /v1/join, /v1/next, /v1/start or /v1/result' });
    const doc = await readJson(req);
    if (!doc) return answer(res, 400, { error: 'body: expected a JSON object' });
    const index = this.follower(doc);
    const allowed = `index: expected a follower shard (${this.followers.join(', ')} of ${this.shard.count}), got ${JSON.stringify(doc.index)}`;
    switch (req.url) {
      case '/v1/join': {
        if (index === null) return answer(res, 409, { error: allowed });
        if (doc.count !== this.shard.count || doc.fingerprint !== this.fingerprint) {
          return answer(res, 409, { error: `shard ${String(doc.index)}/${String(doc.count)} is not of this run: the coordinator runs ${this.shard.count} shards of another scenario, seed or count` });
        }
        this.joined.set(index, Date.now());
        this.notify();
        return answer(res, 200, { nowMs: Date.now() });
      }
      case '/v1/next':
      case '/v1/start': {
        const k = doc.window;
        if (index === null || !this.joined.has(index)) return answer(res, 409, { error: index === null ? allowed : 'join first (POST /v1/join)' });
        if (typeof k !== 'number' || !Number.isInteger(k) || k < 0) return answer(res, 400, { error: `window: expected an integer ≥ 0, got ${JSON.stringify(k)}` });
        if (req.url === '/v1/start') {
          this.readySet(k).add(index);
          this.notify();
          const start = await this.startSlot(k).wait(HOLD_MS);
          return answer(res, 200, start === null ? { action: 'wait', window: k } : { ...start, window: k });
        }
        const plan = await this.slot(k).wait(HOLD_MS);
        if (plan === null) return answer(res, 200, { action: 'wait', window: k });
        if (plan.action === 'done' || plan.action === 'abort') {
          this.heardEnd.add(index);
          this.notify();
        }
        return answer(res, 200, { ...plan, window: k });
      }
      case '/v1/result': {
        const k = doc.window;
        if (index === null) return answer(res, 409, { error: allowed });
        if (typeof k !== 'number' || typeof doc.swarm !== 'object' || doc.swarm === null) return answer(res, 400, { error: 'body: expected {index, window, swarm, trustworthy, why}' });
        const judgedAs = typeof doc.judgedAs === 'string' ? (doc.judgedAs as TrustBasis) : null;
        this.resultMap(k).set(index, { index, window: k, swarm: doc.swarm as SwarmResult, trustworthy: doc.trustworthy === true, judgedAs, why: typeof doc.why === 'string' ? doc.why : '' });
        this.notify();
        return answer(res, 200, {});
      }
      default:
        return answer(res, 404, { error: 'expected POST /v1/join, /v1/next, /v1/start or /v1/result' });
    }
  }
}

/** A follower's side: join (reading the coordinator's clock), then ask for each window and post it. */
export class CoordinatorClient {
  /** This machine's clock minus the coordinator's (ms), measured when joining. */
  clockOffsetMs = 0;
  private readonly key: string;

  constructor(
    readonly url: string,
    private readonly shard: Shard,
    secret: string,
    private readonly fingerprint: string,
    private readonly timeouts: CoordinationTimeouts = DEFAULT_TIMEOUTS,
  ) {
    this.key = coordinatorKey(secret);
  }

  /**
   * POST a JSON body; retried while the coordinator cannot be reached (it may not be up yet), for
   * at most `unreachableMs`; a 4xx is the end of it, in one line.
   */
  private async post(path: string, body: unknown, timeoutMs: number, signal?: AbortSignal, unreachableMs = this.timeouts.unreachableMs): Promise<Record<string, unknown>> {
    const since = Date.now();
    const text = JSON.stringify(body);
    for (;;) {
      if (signal?.aborted) throw new CoordinationError('the run was aborted while waiting for the coordinator');
      let why: string;
      try {
        const res = await fetch(`${this.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${this.key}` },
          body: text,
          signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs),
        });
        const doc = (await res.json().catch(() => ({}))) as Record<string, unknown>;
        if (res.status === 200) return doc;
        const error = typeof doc.error === 'string' ? doc.error : `HTTP ${res.status}`;
        if (res.status === 401) throw new CoordinationError(`the coordinator at ${this.url} refused this shard's key (401): every shard needs the same stack secret`);
        if (res.status < 500) throw new CoordinationError(`the coordinator at ${this.url} refused shard ${describeShard(this.shard)}: ${error}`);
        why = error;
      } catch (err) {
        if (err instanceof CoordinationError) throw err;
        why = (err as { cause?: { code?: string } })?.cause?.code ?? (err as Error)?.message ?? String(err);
      }
      if (Date.now() - since > unreachableMs) throw new CoordinationError(`the coordinator at ${this.url} did not answer for ${Math.round(unreachableMs / 1000)} s (${why}): it disappeared or never started`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /**
   * Join, and read the coordinator's clock NTP-style: over a few exchanges, the one with the
   * shortest round trip; its clock is taken to be read halfway through it.
   */
  async join(signal?: AbortSignal): Promise<void> {
    const body = { index: this.shard.index, count: this.shard.count, fingerprint: this.fingerprint };
    let best: { rttMs: number; offsetMs: number } | null = null;
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const doc = await this.post('/v1/join', body, 10_000, signal, i === 0 ? this.timeouts.joinMs : this.timeouts.unreachableMs);
      const t1 = Date.now();
      const now = typeof doc.nowMs === 'number' ? doc.nowMs : NaN;
      if (!Number.isFinite(now)) throw new CoordinationError(`the coordinator at ${this.url} answered its join without a clock`);
      const sample = { rttMs: t1 - t0, offsetMs: (t0 + t1) / 2 - now };
      if (!best || sample.rttMs < best.rttMs) best = sample;
    }
    this.clockOffsetMs = Math.round(best!.offsetMs * 10) / 10;
  }

  /** Window `k`'s plan, once the coordinator has decided it. */
  async next(k: number, signal?: AbortSignal): Promise<WindowPlan> {
    for (;;) {
      const doc = (await this.post('/v1/next', { index: this.shard.index, window: k }, HOLD_MS + 10_000, signal)) as unknown as WindowPlan;
      if (doc.action !== 'wait') return doc;
    }
  }

  /**
   * This shard's swarm is ready for window `k`: wait at the barrier for the start time, returned on
   * this machine's clock. Throws when the coordinator ends the run instead.
   */
  async start(k: number, signal?: AbortSignal): Promise<number> {
    for (;;) {
      const doc = (await this.post('/v1/start', { index: this.shard.index, window: k }, HOLD_MS + 10_000, signal)) as unknown as StartPlan;
      if (doc.action === 'start') return doc.startAtEpochMs + this.clockOffsetMs;
      if (doc.action === 'abort') throw new CoordinationError(`the coordinator ended the run: ${doc.reason}`);
    }
  }

  /** How long this shard's start gate may wait: the coordinator's barrier (its join bound for the first window) and the lead. */
  gateMaxMs(k: number): number {
    return (k === 0 ? this.timeouts.joinMs : this.timeouts.barrierMs) + this.timeouts.unreachableMs + this.timeouts.leadMs;
  }

  async postWindow(w: Omit<ShardWindow, 'index'>, signal?: AbortSignal): Promise<void> {
    await this.post('/v1/result', { index: this.shard.index, ...w }, 60_000, signal);
  }
}
