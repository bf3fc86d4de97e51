import { createHash } from 'node:crypto';
import WebSocket from 'ws';
import { HEADER_AGENT_ID, type TunnelFrame } from '../../core/protocol.js';
import type { Rng } from '../../core/random.js';
import { MinHeap } from '../min-heap.js';
import type { LocalAgents } from '../local-agents.js';
import type { SwarmRecorder } from '../recorder.js';
import { reconnectDelayMs, type ReconnectPolicy } from '../reconnect.js';

/**
 * Persistent agent tunnels (the relay topology): one WebSocket per agent, opened at a paced rate,
 * carrying telemetry on the swarm's schedule, answering server-initiated commands, and coming back
 * by the reconnect policy after a drop. Each agent's relay is hash(id) mod N; a failed connect
 * moves it to the next sibling.
 *
 * Per-agent state lives in typed arrays; the only per-agent object is the socket itself, and it
 * carries no closure of its own: the fleet's four handlers are shared, finding the agent by the
 * socket's `slot`. Ids and tokens are held as bytes (LocalAgents). Pending reconnects and
 * handshake deadlines share one timer, so a held or waiting fleet costs no timer per agent.
 *
 * Operations recorded: `ws-connect` (first connects and reconnects, from the attempt), `ws-rtt`
 * (telemetry → ack, from the intended send time), `ws-command` (command received → result sent),
 * `ws-reconnect` (drop → back, per agent: the reconnect curve).
 */

export interface TunnelFleetOptions {
  urls: string[];
  agents: LocalAgents;
  localAddresses: string[];
  reconnect: ReconnectPolicy;
  connectRatePerSec: number;
  commandDelayMs: number;
  /** Default HANDSHAKE_TIMEOUT_MS. */
  handshakeTimeoutMs?: number;
  /**
   * Called when a wave of connects has settled (every attempt open, or failed and waiting to
   * retry): once for the opening phase, then after any later wave of at least
   * max(256, 5% of the fleet) attempts (a mass reconnect). The fleet is about to sit idle.
   */
  onWaveSettled?: () => void;
  /**
   * When each local slot first connects (ms from t = 0; slots asked in order): connect-plan.ts,
   * the same intended time whatever the split of the fleet, so a ramp opens its tunnels along the
   * ramp instead of in one storm at t = 0. Default: every slot from the start, paced at
   * connectRatePerSec.
   */
  firstConnects?: FirstConnects;
  tls?: { ca?: Buffer; insecure: boolean };
  recorder: SwarmRecorder;
  rng: Rng;
  now: () => number;
}

const enum State {
  Idle = 0,
  Connecting = 1,
  Open = 2,
  Waiting = 3,
  /** Its handshake took too long; terminated, its close is on the way. */
  TimedOut = 4,
}

/** The intended first connect of each local slot, asked in non-decreasing slot order. */
export interface FirstConnects {
  atMs(slot: number): number;
}

const TICK_MS = 10;
/** A tunnel whose opening handshake has not finished by then is abandoned (and retried). */
export const HANDSHAKE_TIMEOUT_MS = 15_000;
/** How long close() waits for servers to end the tunnels it sent a close frame. */
export const CLOSE_GRACE_MS = 2_000;

/** A tunnel socket that knows its agent's slot, so one set of handlers serves the whole fleet. */
class AgentSocket extends WebSocket {
  slot = -1;
}

export class TunnelFleet {
  private readonly o: TunnelFleetOptions;
  private readonly sockets: Array<AgentSocket | null>;
  private readonly state: Uint8Array;
  private readonly attempt: Uint16Array;
  private readonly relay: Uint16Array;
  private readonly connectStart: Float64Array;
  private readonly droppedAt: Float64Array;
  private readonly telIntended: Float64Array;
  private readonly telSeq: Uint32Array;
  private readonly telSentAt: Float64Array;
  private readonly reconnectAt: Float64Array;
  private readonly reconnects: MinHeap;
  /** Attempts in flight, in the order they started (so by deadline): slot and start time. */
  private handshakeSlots: number[] = [];
  private handshakeStarts: number[] = [];
  private handshakeHead = 0;
  private readonly handshakeTimeoutMs: number;
  private nextInitial = 0;
  private readonly firstConnects: FirstConnects;
  private timer: NodeJS.Timeout | null = null;
  private timerDueMs = Infinity;
  private lastTickMs = 0;
  private connectBudget = 0;
  private closed = false;
  connected = 0;
  /** Attempts whose handshake has not finished. */
  private connecting = 0;
  /** Attempts started since the last settled wave (the opening phase counts as one wave). */
  private attemptsInWave = 0;
  private openingReported = false;
  /** Telemetry frames sent and not yet acknowledged. */
  pending = 0;
  /** Open tunnels sent a close frame by close() and not yet closed. */
  private closingCount = 0;
  private lastClosed: () => void = () => undefined;

  constructor(o: TunnelFleetOptions) {
    this.o = o;
    const gapMs = 1000 / Math.max(1e-9, o.connectRatePerSec);
    this.firstConnects = o.firstConnects ?? { atMs: (slot) => slot * gapMs };
    this.handshakeTimeoutMs = o.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
    const n = o.agents.count;
    this.sockets = new Array<AgentSocket | null>(n).fill(null);
    this.state = new Uint8Array(n);
    this.attempt = new Uint16Array(n);
    this.relay = new Uint16Array(n);
    this.connectStart = new Float64Array(n);
    this.droppedAt = new Float64Array(n).fill(-1);
    this.telIntended = new Float64Array(n).fill(-1);
    this.telSeq = new Uint32Array(n);
    this.telSentAt = new Float64Array(n);
    this.reconnectAt = new Float64Array(n);
    this.reconnects = new MinHeap(n, this.reconnectAt);
    for (let s = 0; s < n; s++) this.relay[s] = relayFor(o.agents.idAt(s), o.urls.length);
    const fleet = this;
    // `this` is the emitting socket: only AgentSockets are ever given these handlers.
    this.onOpenShared = function (this: WebSocket) {
      fleet.onOpen((this as AgentSocket).slot);
    };
    this.onMessageShared = function (this: WebSocket, data: WebSocket.RawData) {
      fleet.onMessage((this as AgentSocket).slot, data);
    };
    this.onCloseShared = function (this: WebSocket) {
      fleet.onClose((this as AgentSocket).slot, this as AgentSocket);
    };
    this.onErrorShared = function (this: WebSocket, err: NodeJS.ErrnoException) {
      const slot = (this as AgentSocket).slot;
      // A timed-out handshake was already counted as such; its abort error is not a second error.
      if (fleet.state[slot] !== State.TimedOut || fleet.sockets[slot] !== this) fleet.o.recorder.error(`ws:${err.code ?? 'error'}`);
    };
  }

  private readonly onOpenShared: (this: WebSocket) => void;
  private readonly onMessageShared: (this: WebSocket, data: WebSocket.RawData) => void;
  private readonly onCloseShared: (this: WebSocket) => void;
  private readonly onErrorShared: (this: WebSocket, err: NodeJS.ErrnoException) => void;

  /** Begin paced connects; one timer drives first connects and due reconnects alike. */
  start(): void {
    this.lastTickMs = this.o.now();
    this.arm();
  }

  /**
   * One timer, armed only while there is work: every TICK_MS during the first connects, then only
   * for the next due reconnect or handshake deadline. An idle, fully connected fleet has no timer.
   */
  private arm(): void {
    if (this.closed) return;
    let dueMs = Infinity;
    if (this.nextInitial < this.o.agents.count) dueMs = this.firstConnects.atMs(this.nextInitial);
    if (this.reconnects.size > 0) dueMs = Math.min(dueMs, this.reconnectAt[this.reconnects.peek()]);
    if (this.handshakeHead < this.handshakeSlots.length) dueMs = Math.min(dueMs, this.handshakeStarts[this.handshakeHead] + this.handshakeTimeoutMs);
    if (dueMs === Infinity) return;
    const now = this.o.now();
    dueMs = Math.max(dueMs, now + TICK_MS);
    // Already armed early enough (a handshake deadline can be far off when a reconnect comes due).
    if (this.timer && this.timerDueMs <= dueMs) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDueMs = dueMs;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.tick();
      this.arm();
    }, dueMs - now);
  }

  private tick(): void {
    const now = this.o.now();
    this.connectBudget = Math.min(this.connectBudget + ((now - this.lastTickMs) / 1000) * this.o.connectRatePerSec, this.o.connectRatePerSec);
    this.lastTickMs = now;
    // Due reconnects first (they were promised a time), then first connects.
    while (this.reconnects.size > 0 && this.reconnectAt[this.reconnects.peek()] <= now && this.connectBudget >= 1) {
      this.connectBudget--;
      this.open(this.reconnects.pop());
    }
    // First connects at their planned times; they draw on the budget too (it may go below zero),
    // so reconnects wait while the opening wave uses the rate.
    const count = this.o.agents.count;
    while (this.nextInitial < count && this.firstConnects.atMs(this.nextInitial) <= now) {
      this.connectBudget--;
      this.open(this.nextInitial++);
    }
    this.expireHandshakes(now);
  }

  /** Abandon attempts whose handshake outlived the timeout; their close retries them (on a sibling). */
  private expireHandshakes(now: number): void {
    const slots = this.handshakeSlots;
    const starts = this.handshakeStarts;
    while (this.handshakeHead < slots.length) {
      const i = this.handshakeHead;
      const slot = slots[i];
      const current = this.state[slot] === State.Connecting && this.connectStart[slot] === starts[i];
      if (current && starts[i] + this.handshakeTimeoutMs > now) break;
      this.handshakeHead++;
      if (current) {
        this.state[slot] = State.TimedOut;
        this.o.recorder.error('ws:handshake-timeout');
        this.sockets[slot]?.terminate();
      }
    }
    if (this.handshakeHead === slots.length) {
      this.handshakeSlots = [];
      this.handshakeStarts = [];
      this.handshakeHead = 0;
    }
  }

  private open(slot: number): void {
    if (this.closed) return;
    const agents = this.o.agents;
    const addrs = this.o.localAddresses;
    const startMs = this.o.now();
    this.state[slot] = State.Connecting;
    this.connecting++;
    this.attemptsInWave++;
    this.connectStart[slot] = startMs;
    this.handshakeSlots.push(slot);
    this.handshakeStarts.push(startMs);
    const ws = new AgentSocket(this.o.urls[this.relay[slot]], {
      headers: { authorization: `Bearer ${agents.tokenAt(slot)}`, [HEADER_AGENT_ID]: agents.idAt(slot) },
      perMessageDeflate: false,
      localAddress: addrs.length > 0 ? addrs[slot % addrs.length] : undefined,
      rejectUnauthorized: !(this.o.tls?.insecure ?? false),
      ca: this.o.tls?.ca,
    });
    ws.slot = slot;
    this.sockets[slot] = ws;
    ws.on('open', this.onOpenShared);
    ws.on('message', this.onMessageShared);
    ws.on('close', this.onCloseShared);
    ws.on('error', this.onErrorShared);
  }

  private onOpen(slot: number): void {
    const now = this.o.now();
    this.state[slot] = State.Open;
    this.connected++;
    this.connecting--;
    this.checkSettled();
    this.attempt[slot] = 0;
    this.o.recorder.observe('ws-connect', now - this.connectStart[slot]);
    if (this.droppedAt[slot] >= 0) {
      this.o.recorder.observe('ws-reconnect', now - this.droppedAt[slot]);
      this.droppedAt[slot] = -1;
    }
  }

  private onMessage(slot: number, data: WebSocket.RawData): void {
    let frame: TunnelFrame;
    try {
      frame = JSON.parse(data.toString()) as TunnelFrame;
    } catch {
      this.o.recorder.error('ws:bad-frame');
      return;
    }
    if (frame.t === 'ack') {
      const intended = this.telIntended[slot];
      if (intended >= 0 && frame.seq === this.telSeq[slot]) {
        this.o.recorder.done('ws-rtt', intended, this.telSentAt[slot], this.o.now(), true);
        this.telIntended[slot] = -1;
        this.pending--;
      }
    } else if (frame.t === 'cmd') {
      const received = this.o.now();
      const delay = this.o.rng.exponential(this.o.commandDelayMs);
      // Commands are rare: a timer per command is fine (idle agents hold none).
      setTimeout(() => {
        const ws = this.sockets[slot];
        if (!ws || this.state[slot] !== State.Open) return;
        ws.send(JSON.stringify({ t: 'res', id: frame.id, exitCode: 0, output: `ran ${frame.kind} on ${this.o.agents.at(slot).hostname}` } satisfies TunnelFrame));
        this.o.recorder.observe('ws-command', this.o.now() - received);
      }, delay);
    }
  }

  private onClose(slot: number, ws: AgentSocket): void {
    if (this.sockets[slot] !== ws) return;
    this.sockets[slot] = null;
    if (this.closed) {
      // Closed by close(): not a drop, and nothing to reconnect.
      if (this.state[slot] === State.Open) {
        this.connected--;
        if (--this.closingCount === 0) this.lastClosed();
      }
      this.state[slot] = State.Idle;
      return;
    }
    const wasOpen = this.state[slot] === State.Open;
    if (wasOpen) {
      this.connected--;
      this.droppedAt[slot] = this.o.now();
      this.o.recorder.error('ws:tunnel-dropped');
    } else {
      this.connecting--;
      // A failed attempt: the next one goes to a sibling relay.
      this.o.recorder.observe('ws-connect', this.o.now() - this.connectStart[slot], false);
      if (this.droppedAt[slot] < 0) this.droppedAt[slot] = this.connectStart[slot];
      this.relay[slot] = (this.relay[slot] + 1) % this.o.urls.length;
    }
    if (this.telIntended[slot] >= 0) {
      this.o.recorder.done('ws-rtt', this.telIntended[slot], this.telSentAt[slot], this.o.now(), false, 'tunnel-closed');
      this.telIntended[slot] = -1;
      this.pending--;
    }
    this.state[slot] = State.Waiting;
    this.reconnectAt[slot] = this.o.now() + reconnectDelayMs(this.o.reconnect, this.attempt[slot], this.o.rng);
    if (this.attempt[slot] < 65_535) this.attempt[slot]++;
    this.reconnects.push(slot);
    this.arm();
    if (!wasOpen) this.checkSettled();
  }

  private checkSettled(): void {
    if (this.connecting > 0 || this.nextInitial < this.o.agents.count) return;
    if (this.openingReported && this.attemptsInWave < Math.max(256, this.o.agents.count / 20)) return;
    this.openingReported = true;
    this.attemptsInWave = 0;
    this.o.onWaveSettled?.();
  }

  /** A scheduled telemetry send. A down tunnel drops it (counted), never queues it. */
  sendTelemetry(slot: number, intendedMs: number): void {
    const ws = this.sockets[slot];
    if (!ws || this.state[slot] !== State.Open) {
      this.o.recorder.drop('tunnel-down');
      return;
    }
    const now = this.o.now();
    this.o.recorder.sent(now - intendedMs);
    if (this.telIntended[slot] >= 0) {
      // The previous frame was never acknowledged before the next was due.
      this.o.recorder.done('ws-rtt', this.telIntended[slot], this.telSentAt[slot], now, false, 'no-ack');
      this.pending--;
    }
    const seq = ++this.telSeq[slot];
    this.telIntended[slot] = intendedMs;
    this.telSentAt[slot] = now;
    this.pending++;
    ws.send(JSON.stringify({ t: 'tel', seq, cpuPct: this.o.rng.int(100), memPct: 20 + this.o.rng.int(75) } satisfies TunnelFrame));
  }

  /**
   * A `disconnect` fault: that share of the open tunnels (drawn at random) drop at once, as when a
   * network path fails; each agent then reconnects by its policy like after any other drop.
   * Returns how many were dropped.
   */
  disconnect(fraction: number): number {
    if (this.closed) return 0;
    const open: number[] = [];
    for (let slot = 0; slot < this.state.length; slot++) if (this.state[slot] === State.Open && this.sockets[slot]) open.push(slot);
    const n = Math.min(open.length, Math.round(open.length * Math.max(0, Math.min(1, fraction))));
    for (let i = 0; i < n; i++) {
      const j = i + this.o.rng.int(open.length - i);
      [open[i], open[j]] = [open[j]!, open[i]!];
      this.sockets[open[i]!]?.terminate();
    }
    return n;
  }

  /**
   * Stop. Frames still unacknowledged now count as failed (`unacked-at-end`), never vanish.
   *
   * Open tunnels end with a close frame (1001, going away), so the server ends the TCP connection
   * first and the TIME_WAIT is its own. Had the client closed first, every tunnel would leave a
   * TIME_WAIT on the client's side, 60 s each, among the few ephemeral ports of each source
   * address: the next run's connects then spend seconds in the kernel hunting for a free port
   * (measured: a worker stalled 1–9 s in system time). What has not closed within the grace
   * period is terminated. Resolves to how it ended: `unclosed`, the tunnels sent a close frame that
   * were still open when the grace ran out (0: every server closed its end in time).
   */
  async close(graceMs = CLOSE_GRACE_MS): Promise<{ unclosed: number }> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const now = this.o.now();
    for (let slot = 0; slot < this.telIntended.length; slot++) {
      if (this.telIntended[slot] >= 0) {
        this.o.recorder.done('ws-rtt', this.telIntended[slot], this.telSentAt[slot], now, false, 'unacked-at-end');
        this.telIntended[slot] = -1;
      }
    }
    this.pending = 0;
    const closing = new Promise<void>((resolve) => (this.lastClosed = resolve));
    for (let slot = 0; slot < this.sockets.length; slot++) {
      const ws = this.sockets[slot];
      if (!ws) continue;
      if (this.state[slot] === State.Open) {
        this.closingCount++;
        ws.close(1001);
      } else ws.terminate();
    }
    if (this.closingCount > 0) {
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([closing, new Promise<void>((r) => (grace = setTimeout(r, graceMs)))]);
      clearTimeout(grace);
    }
    const unclosed = this.closingCount;
    for (const ws of this.sockets) ws?.terminate();
    this.sockets.fill(null);
    this.connected = 0;
    this.closingCount = 0;
    return { unclosed };
  }
}

/** An agent's home relay: a stable hash of its id, so every worker agrees without coordination. */
export function relayFor(agentId: string, relays: number): number {
  if (relays <= 1) return 0;
  return createHash('sha1').update(agentId).digest().readUInt32BE(0) % relays;
}
