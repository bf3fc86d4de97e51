import { Pool } from 'undici';
import { deriveAgent, userToken } from '../core/identity.js';
import { USER_ROUTES } from '../core/protocol.js';
import { Rng } from '../core/random.js';
import { round } from '../core/units.js';
import { createLatencyHistogram, recordUs, summarize } from '../metrics/histogram.js';
import { newOpAccumulator, opStats, type OpAccumulator, type OpStats } from '../metrics/op-stats.js';
import type { ScenarioBackground } from '../scenario/types.js';
import type { ClientStats } from './result-types.js';

/**
 * Background user and integration traffic beside the agents: operators' dashboard queries,
 * command creation, and an integration paging through every agent. An open model like the swarm:
 * each stream fires on its own schedule, latency counts from the intended send time, and a send
 * that would exceed the in-flight bound is dropped and counted, never queued silently.
 */

const MAX_INFLIGHT = 64;
const TIMEOUT_MS = 30_000;

type Stream = 'dashboard' | 'commands' | 'integration' | 'sessions';

/** An operation's live figures, and every send it intended (dropped ones included). */
interface OpState extends OpAccumulator {
  count: number;
}

const newOp = (): OpState => ({ ...newOpAccumulator(), count: 0 });

export interface BackgroundOptions {
  entryUrl: string;
  secret: string;
  seed: string;
  /** Agents of the fleet now (commands go to one of them). */
  agents: () => number;
  streams: ScenarioBackground;
  /** Each request answered 2xx, as it ended (epoch ms) and its latency from the intended time (µs): the faults' latency comparison. */
  onAnswered?: (op: string, endEpochMs: number, latencyUs: number) => void;
}

export class BackgroundTraffic {
  private readonly pool: Pool;
  private readonly token: string;
  private readonly sessionToken: string;
  private readonly rng: Rng;
  private timers: NodeJS.Timeout[] = [];
  private inflight = 0;
  private ops = new Map<string, OpState>();
  private errors = new Map<string, number>();
  private dropped = 0;
  private windowStartMs = Date.now();
  private syncCursor: string | null = null;
  private readonly pending = new Set<Promise<void>>();
  private stopped = false;
  /** Every command whose creation was answered 201, by id: the ledger's commandsCreated. */
  readonly createdCommands: string[] = [];

  constructor(private readonly o: BackgroundOptions) {
    this.pool = new Pool(o.entryUrl, { connections: 16, headersTimeout: TIMEOUT_MS, bodyTimeout: TIMEOUT_MS });
    this.token = userToken(o.secret, 'operator');
    // Sessions need a session scope on the token: every agent, the shell protocol.
    this.sessionToken = userToken(o.secret, 'operator', '*@shell');
    this.rng = new Rng(`${o.seed}\0background`);
  }

  get enabled(): boolean {
    const s = this.o.streams;
    return Boolean(s.dashboard || s.commands || s.integration || s.sessions);
  }

  start(): void {
    const s = this.o.streams;
    const every = (stream: Stream, ratePerSec: number): void => {
      const periodMs = 1000 / ratePerSec;
      let next = Date.now() + periodMs * this.rng.next();
      const loop = (): void => {
        if (this.stopped) return;
        const now = Date.now();
        // Fire every send whose intended time has come (catching up after a stall, bounded).
        for (let i = 0; next <= now && i < 1000; i++, next += periodMs) this.fire(stream, next);
        this.timers.push(setTimeout(loop, Math.max(1, next - Date.now())));
        if (this.timers.length > 64) this.timers = this.timers.slice(-8);
      };
      loop();
    };
    if (s.dashboard) every('dashboard', s.dashboard.ratePerSec);
    if (s.commands) every('commands', s.commands.ratePerSec);
    if (s.integration) every('integration', s.integration.ratePerSec);
    if (s.sessions) every('sessions', s.sessions.ratePerSec);
  }

  private fire(stream: Stream, intendedMs: number): void {
    const { op, path, method, body } = this.next(stream);
    const st = this.ops.get(op) ?? newOp();
    this.ops.set(op, st);
    st.count++;
    if (this.inflight >= MAX_INFLIGHT) {
      this.dropped++;
      st.failed++;
      this.errors.set('dropped', (this.errors.get('dropped') ?? 0) + 1);
      return;
    }
    this.inflight++;
    const sentMs = performance.now();
    const sentWallMs = Date.now();
    const p = this.pool
      .request({ method, path, body, headers: { authorization: `Bearer ${stream === 'sessions' ? this.sessionToken : this.token}`, ...(body ? { 'content-type': 'application/json' } : {}) } })
      .then(async (r) => {
        const text = await r.body.text();
        const doneWall = Date.now();
        const correctedUs = Math.max(1, Math.round((doneWall - Math.min(intendedMs, sentWallMs)) * 1000));
        recordUs(st.service, Math.max(1, Math.round((performance.now() - sentMs) * 1000)));
        recordUs(st.corrected, correctedUs);
        if (r.statusCode < 300) this.o.onAnswered?.(op, doneWall, correctedUs);
        if (r.statusCode >= 500) {
          st.failed++;
          this.errors.set(`http-${r.statusCode}`, (this.errors.get(`http-${r.statusCode}`) ?? 0) + 1);
        } else {
          st.completed++;
          if (r.statusCode >= 400) this.errors.set(`http-${r.statusCode}`, (this.errors.get(`http-${r.statusCode}`) ?? 0) + 1);
          if (stream === 'commands' && r.statusCode === 201) {
            try {
              const id = (JSON.parse(text) as { commandId?: unknown }).commandId;
              if (typeof id === 'string') this.createdCommands.push(id);
            } catch {
              // a 201 without its id: nothing to follow
            }
          }
          if (stream === 'integration' && r.statusCode === 200) {
            try {
              this.syncCursor = (JSON.parse(text) as { next: string | null }).next;
            } catch {
              this.syncCursor = null;
            }
          }
        }
      })
      .catch((err: Error & { code?: string }) => {
        st.failed++;
        const code = err.code ?? 'error';
        this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
      })
      .finally(() => {
        this.inflight--;
        this.pending.delete(p);
      });
    this.pending.add(p);
  }

  private next(stream: Stream): { op: string; path: string; method: 'GET' | 'POST'; body?: string } {
    if (stream === 'sessions') {
      // A short shell command on a random agent of the fleet; any relay forwards it to the tunnel's holder.
      const agent = deriveAgent(this.o.seed, this.o.secret, this.rng.int(Math.max(1, this.o.agents())));
      return { op: 'user-session', path: USER_ROUTES.sessions, method: 'POST', body: JSON.stringify({ agentId: agent.id, protocol: 'shell', command: 'uptime', timeoutMs: 10_000 }) };
    }
    if (stream === 'integration') {
      const size = this.o.streams.integration?.pageSize ?? 500;
      const after = this.syncCursor === null ? '' : `&after=${encodeURIComponent(this.syncCursor)}`;
      return { op: 'user-sync', path: `${USER_ROUTES.syncAgents}?limit=${size}${after}`, method: 'GET' };
    }
    if (stream === 'commands') {
      const agent = deriveAgent(this.o.seed, this.o.secret, this.rng.int(Math.max(1, this.o.agents())));
      return { op: 'user-command', path: `${USER_ROUTES.agents}/${encodeURIComponent(agent.id)}/commands`, method: 'POST', body: JSON.stringify({ kind: 'run-script', args: { script: 'Get-Service' } }) };
    }
    const pick = this.rng.int(5);
    const paths = [
      `${USER_ROUTES.agents}?status=offline&limit=100`,
      `${USER_ROUTES.agents}?os=windows&limit=100`,
      `${USER_ROUTES.agents}?client=client-${String(this.rng.int(50)).padStart(3, '0')}&limit=100`,
      USER_ROUTES.statsByOs,
      USER_ROUTES.statsByClient,
    ];
    return { op: 'user-dashboard', path: paths[pick], method: 'GET' };
  }

  /** The window so far, and a fresh one from now. */
  takeWindow(agents: number): ClientStats {
    const windowSec = Math.max(0.001, (Date.now() - this.windowStartMs) / 1000);
    const ops: Record<string, OpStats> = {};
    const all = createLatencyHistogram();
    let count = 0;
    let completed = 0;
    let failed = 0;
    for (const [name, s] of this.ops) {
      all.add(s.corrected);
      count += s.count;
      completed += s.completed;
      failed += s.failed;
      ops[name] = opStats(s, s.count);
    }
    const s = this.o.streams;
    const offered = (s.dashboard?.ratePerSec ?? 0) + (s.commands?.ratePerSec ?? 0) + (s.integration?.ratePerSec ?? 0) + (s.sessions?.ratePerSec ?? 0);
    const out: ClientStats = {
      agents,
      offeredRatePerSec: offered,
      attemptedRatePerSec: round(count / windowSec, 1),
      achievedRatePerSec: round(completed / windowSec, 1),
      count,
      completed,
      failed,
      late: 0,
      dropped: this.dropped,
      errorRate: count ? failed / count : 0,
      latency: summarize(all),
      ops,
      errors: Object.fromEntries(this.errors),
    };
    this.ops = new Map();
    this.errors = new Map();
    this.dropped = 0;
    this.windowStartMs = Date.now();
    return out;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    // In-flight requests end within their timeout; wait for them, then close the pool.
    await Promise.allSettled([...this.pending]);
    await this.pool.close();
  }
}
