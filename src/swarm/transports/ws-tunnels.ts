import { createHash } from 'node:crypto';
import WebSocket from 'ws';
import { HEADER_AGENT_ID, type TunnelFrame } from '../../core/protocol.js';
import type { Rng } from '../../core/random.js';
import { MinHeap } from '../min-heap.js';
import type { LocalAgents } from '../local-agents.js';
import type { SwarmRecorder } from '../recorder.js';
import { homeProbeDelayMs, reconnectDelayMs, type ReconnectPolicy, type ReturnHomePolicy } from '../reconnect.js';
import type { TunnelEventKind } from '../tunnel-log.js';
import { PacedFirstConnects } from '../connect-plan.js';

/**
 * Persistent agent tunnels (the relay topology): one WebSocket per agent, opened at a paced rate,
 * carrying telemetry on the swarm's schedule, answering server-initiated commands, and coming back
 * by the reconnect policy after a drop. Each agent's home relay is hash(id) mod N; a failed connect
 * moves it to the next sibling, and an agent away from home probes home by the return-home policy
 * (reconnect.ts) and moves back once home answers.
 *
 * Per-agent state lives in typed arrays; the only per-agent object is the socket itself, and it
 * carries no closure of its own: the fleet's four handlers are shared, finding the agent by the
 * socket's `slot`. Ids and tokens are held as bytes (LocalAgents). Pending reconnects and
 * handshake deadlines share one timer, so a held or waiting fleet costs no timer per agent.
 *
 * Operations recorded: `ws-connect` (first connects and reconnects, from the attempt), `ws-rtt`
 * (telemetry → ack, from the intended send time), `ws-command` (command received → result sent),
 * `ws-reconnect` (drop → back, per agent: the reconnect curve). Drops, reconnects and returns home
 * are also logged agent by agent (takeEvents; tunnel-log.ts), so a run can tell which agents a fault
 * dropped and where each went.
 */

/**
 * What a tunnel says, when a protocol file's `tunnel:` replaces rmmscale's relay frames
 * (src/swarm/protocol/tunnel-codec.ts). Without one, the fleet speaks TunnelFrame.
 */
export interface TunnelCodec {
  /** The periodic frame's operation name (rmmscale's own: ws-rtt). */
  readonly frameOp: string;
  url(base: string, slot: number): string;
  headers(slot: number): Record<string, string>;
  frame(slot: number, seq: number): string;
  /** Whether the server answers the periodic frame (else it counts as done when sent). */
  readonly expectsReply: boolean;
  isReply(frame: unknown): boolean;
  /** The agent's answer to a server-initiated frame, or null when none matches. */
  answer(slot: number, frame: unknown): { op: string; text: string } | null;
}

export interface TunnelFleetOptions {
  /** A protocol file's tunnel; default rmmscale's relay frames. */
  codec?: TunnelCodec;
  urls: string[];
  agents: LocalAgents;
  localAddresses: string[];
  reconnect: ReconnectPolicy;
  /** How an agent that failed over goes home (null: it stays). Default: null. */
  returnHome?: ReturnHomePolicy | null;
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
   * connectRatePerSec. Started late, the slots already due open at connectRatePerSec from the
   * start, not at once (PacedFirstConnects).
   */
  firstConnects?: FirstConnects;
  tls?: { ca?: Buffer; insecure: boolean };
  /**
   * rmmscale's frames: a frame's `seq` is seqBase + n (n: the agent's frames in this swarm, from 1),
   * so that with the agent id it is the frame's idempotency key across the run's swarms
   * (ack-ledger.ts). Default 0.
   */
  seqBase?: number;
  /** The start instant (epoch ms) of the fleet's clock: frames carry their send time as epoch ms. Default 0. */
  startAtEpochMs?: number;
  /** A telemetry frame (n) of a local slot was acked by a relay: the ledger records it. */
  onAck?: (slot: number, n: number) => void;
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
/**
 * How long an agent that went home keeps its sibling's tunnel open before closing it. The sibling
 * clears the agent's presence on that close only while the database still names the sibling
 * (presence-writer.ts), a read then a delete; both relays coalesce presence writes for 250 ms, so
 * closing at once could let the sibling's clear land after home's claim and erase it.
 */
export const LEAVE_LINGER_MS = 1_000;
/** How long close() waits for servers to end the tunnels it sent a close frame. */
export const CLOSE_GRACE_MS = 2_000;

/** A tunnel socket that knows its agent's slot, so one set of handlers serves the whole fleet. */
class AgentSocket extends WebSocket {
  slot = -1;
  /** A probe of the agent's home relay, not (yet) its tunnel. */
  probe = false;
}

/** One logged tunnel event: kind, local slot, relay index, ms on the fleet's clock. */
export interface FleetEvent {
  kind: TunnelEventKind;
  slot: number;
  relay: number;
  atMs: number;
}

export class TunnelFleet {
  private readonly o: TunnelFleetOptions;
  private readonly sockets: Array<AgentSocket | null>;
  private readonly state: Uint8Array;
  private readonly attempt: Uint16Array;
  private readonly relay: Uint16Array;
  private readonly home: Uint16Array;
  /** Home probes: the probe socket, when the next is due, how many failed, whether queued. */
  private readonly probes: Array<AgentSocket | null>;
  private readonly probeAt: Float64Array;
  private readonly probeCount: Uint16Array;
  private readonly probeQueued: Uint8Array;
  private readonly probeHeap: MinHeap;
  /** The drop being recovered from was a `disconnect` fault's cut. */
  private readonly cut: Uint8Array;
  private events: FleetEvent[] = [];
  /** Siblings' tunnels left behind by agents that went home, until LEAVE_LINGER_MS has passed. */
  private readonly leaving = new Set<AgentSocket>();
  private readonly connectStart: Float64Array;
  private readonly droppedAt: Float64Array;
  private readonly telIntended: Float64Array;
  private readonly telSeq: Uint32Array;
  private readonly telSentAt: Float64Array;
  /** When each tunnel's last ping went out (-1: none awaiting its pong), for `ws-ping`. */
  private readonly pingSentAt: Float64Array;
  /** A hash of each agent's id: its telemetry values follow from it and the frame's n (telemetryCpuPct). */
  private readonly idHash: Uint32Array;
  private readonly seqBase: number;
  /** The periodic frame's operation: ws-rtt, or a protocol file's frame name. */
  private readonly frameOp: string;
  private readonly reconnectAt: Float64Array;
  private readonly reconnects: MinHeap;
  /** Attempts in flight, in the order they started (so by deadline): slot and start time. */
  private handshakeSlots: number[] = [];
  private handshakeStarts: number[] = [];
  private handshakeHead = 0;
  private readonly handshakeTimeoutMs: number;
  private nextInitial = 0;
  private firstConnects: FirstConnects;
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
    this.frameOp = o.codec?.frameOp ?? 'ws-rtt';
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
    this.pingSentAt = new Float64Array(n).fill(-1);
    this.idHash = new Uint32Array(n);
    for (let s = 0; s < n; s++) this.idHash[s] = fnv1a(o.agents.idAt(s));
    this.seqBase = o.seqBase ?? 0;
    this.reconnectAt = new Float64Array(n);
    this.reconnects = new MinHeap(n, this.reconnectAt);
    this.home = new Uint16Array(n);
    this.probes = new Array<AgentSocket | null>(n).fill(null);
    this.probeAt = new Float64Array(n);
    this.probeCount = new Uint16Array(n);
    this.probeQueued = new Uint8Array(n);
    this.probeHeap = new MinHeap(n, this.probeAt);
    this.cut = new Uint8Array(n);
    for (let s = 0; s < n; s++) this.relay[s] = this.home[s] = relayFor(o.agents.idAt(s), o.urls.length);
    const fleet = this;
    // `this` is the emitting socket: only AgentSockets are ever given these handlers.
    this.onOpenShared = function (this: WebSocket) {
      const ws = this as AgentSocket;
      if (ws.probe) fleet.onProbeOpen(ws.slot, ws);
      else fleet.onOpen(ws.slot);
    };
    this.onMessageShared = function (this: WebSocket, data: WebSocket.RawData) {
      fleet.onMessage((this as AgentSocket).slot, this as AgentSocket, data);
    };
    this.onCloseShared = function (this: WebSocket) {
      const ws = this as AgentSocket;
      if (ws.probe) fleet.onProbeClose(ws.slot, ws);
      else fleet.onClose(ws.slot, ws);
    };
    this.onPongShared = function (this: WebSocket) {
      const ws = this as AgentSocket;
      if (ws.probe || fleet.sockets[ws.slot] !== ws) return;
      const sent = fleet.pingSentAt[ws.slot];
      if (sent < 0) return;
      fleet.pingSentAt[ws.slot] = -1;
      fleet.o.recorder.observe('ws-ping', fleet.o.now() - sent);
    };
    this.onErrorShared = function (this: WebSocket, err: NodeJS.ErrnoException) {
      const slot = (this as AgentSocket).slot;
      // A home probe that fails is the normal case while home is down: not an error.
      if ((this as AgentSocket).probe) return;
      // A timed-out handshake was already counted as such; its abort error is not a second error.
      if (fleet.state[slot] !== State.TimedOut || fleet.sockets[slot] !== this) fleet.o.recorder.error(`ws:${err.code ?? 'error'}`);
    };
  }

  private readonly onOpenShared: (this: WebSocket) => void;
  private readonly onMessageShared: (this: WebSocket, data: WebSocket.RawData) => void;
  private readonly onCloseShared: (this: WebSocket) => void;
  private readonly onErrorShared: (this: WebSocket, err: NodeJS.ErrnoException) => void;
  private readonly onPongShared: (this: WebSocket) => void;

  /** Begin paced connects; one timer drives first connects and due reconnects alike. */
  start(): void {
    this.lastTickMs = this.o.now();
    // Late (ready after t = 0), what is already due keeps the rate instead of opening in one tick.
    this.firstConnects = new PacedFirstConnects(this.firstConnects, this.lastTickMs, 1000 / Math.max(1e-9, this.o.connectRatePerSec));
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
    if (this.probeHeap.size > 0) dueMs = Math.min(dueMs, this.probeAt[this.probeHeap.peek()]);
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
    // Home probes last: an agent away from home still has a tunnel.
    while (this.probeHeap.size > 0 && this.probeAt[this.probeHeap.peek()] <= now && this.connectBudget >= 1) {
      const slot = this.probeHeap.pop();
      this.probeQueued[slot] = 0;
      if (this.awayFromHome(slot) && !this.probes[slot]) {
        this.connectBudget--;
        this.openProbe(slot);
      }
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
    const startMs = this.o.now();
    this.state[slot] = State.Connecting;
    this.connecting++;
    this.attemptsInWave++;
    this.connectStart[slot] = startMs;
    this.handshakeSlots.push(slot);
    this.handshakeStarts.push(startMs);
    this.sockets[slot] = this.socket(slot, this.relay[slot], false);
  }

  private socket(slot: number, relay: number, probe: boolean): AgentSocket {
    const agents = this.o.agents;
    const addrs = this.o.localAddresses;
    const codec = this.o.codec;
    const base = this.o.urls[relay];
    const ws = new AgentSocket(codec ? codec.url(base, slot) : base, {
      headers: codec ? codec.headers(slot) : { authorization: `Bearer ${agents.tokenAt(slot)}`, [HEADER_AGENT_ID]: agents.idAt(slot) },
      perMessageDeflate: false,
      localAddress: addrs.length > 0 ? addrs[slot % addrs.length] : undefined,
      rejectUnauthorized: !(this.o.tls?.insecure ?? false),
      ca: this.o.tls?.ca,
      handshakeTimeout: probe ? this.handshakeTimeoutMs : undefined,
    });
    ws.slot = slot;
    ws.probe = probe;
    ws.on('open', this.onOpenShared);
    ws.on('message', this.onMessageShared);
    ws.on('close', this.onCloseShared);
    ws.on('error', this.onErrorShared);
    ws.on('pong', this.onPongShared);
    return ws;
  }

  private log(kind: TunnelEventKind, slot: number, relay: number): void {
    if (this.events.length < 1_000_000) this.events.push({ kind, slot, relay, atMs: this.o.now() });
  }

  /** The tunnel events since the last call (drops, cuts, reconnects, returns home). */
  takeEvents(): FleetEvent[] {
    const e = this.events;
    this.events = [];
    return e;
  }

  /** Open on a sibling while a home relay exists to go back to. */
  private awayFromHome(slot: number): boolean {
    return !this.closed && !!this.o.returnHome && this.state[slot] === State.Open && this.relay[slot] !== this.home[slot];
  }

  private scheduleProbe(slot: number): void {
    const p = this.o.returnHome;
    if (!p || this.probeQueued[slot]) return;
    this.probeAt[slot] = this.o.now() + homeProbeDelayMs(p, this.probeCount[slot], this.o.rng);
    this.probeQueued[slot] = 1;
    this.probeHeap.push(slot);
    this.arm();
  }

  private openProbe(slot: number): void {
    this.probes[slot] = this.socket(slot, this.home[slot], true);
  }

  /** Home answered: move onto it once no telemetry ack is awaited on the sibling (else at that ack). */
  private onProbeOpen(slot: number, ws: AgentSocket): void {
    if (this.probes[slot] !== ws) return;
    if (!this.awayFromHome(slot)) {
      this.probes[slot] = null;
      ws.close(1000);
      return;
    }
    if (this.telIntended[slot] < 0) this.goHome(slot);
  }

  private probeReady(slot: number): boolean {
    const p = this.probes[slot];
    return !!p && p.readyState === WebSocket.OPEN;
  }

  private goHome(slot: number): void {
    const probe = this.probes[slot]!;
    const old = this.sockets[slot];
    this.probes[slot] = null;
    probe.probe = false;
    this.sockets[slot] = probe;
    this.relay[slot] = this.home[slot];
    this.probeCount[slot] = 0;
    this.log('home', slot, this.home[slot]);
    // The sibling's tunnel is no longer the agent's: its close is not a drop (onClose ignores it).
    if (!old) return;
    this.leaving.add(old);
    setTimeout(() => {
      if (this.leaving.delete(old)) old.close(1000);
    }, LEAVE_LINGER_MS).unref();
  }

  private onProbeClose(slot: number, ws: AgentSocket): void {
    if (this.probes[slot] !== ws) return;
    this.probes[slot] = null;
    if (this.probeCount[slot] < 65_535) this.probeCount[slot]++;
    if (this.awayFromHome(slot)) this.scheduleProbe(slot);
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
      this.log('back', slot, this.relay[slot]);
    }
    if (this.relay[slot] !== this.home[slot]) this.scheduleProbe(slot);
  }

  private onMessage(slot: number, from: AgentSocket, data: WebSocket.RawData): void {
    if (this.o.codec) return this.onCodecMessage(slot, data, this.o.codec);
    let frame: TunnelFrame;
    try {
      frame = JSON.parse(data.toString()) as TunnelFrame;
    } catch {
      this.o.recorder.error('ws:bad-frame');
      return;
    }
    if (frame.t === 'ack') {
      const intended = this.telIntended[slot];
      if (intended >= 0 && frame.seq === this.seqBase + this.telSeq[slot]) {
        this.o.recorder.done('ws-rtt', intended, this.telSentAt[slot], this.o.now(), true);
        this.o.onAck?.(slot, this.telSeq[slot]);
        this.telIntended[slot] = -1;
        this.pending--;
        if (this.probeReady(slot) && this.awayFromHome(slot)) this.goHome(slot);
      }
    } else if (frame.t === 'cmd') {
      const received = this.o.now();
      const delay = this.o.rng.exponential(this.o.commandDelayMs);
      // Commands are rare: a timer per command is fine (idle agents hold none).
      // Answered on the tunnel it came down (a home probe's, or a sibling's just left), if still open.
      setTimeout(() => {
        const ws = from.readyState === WebSocket.OPEN ? from : null;
        if (!ws || this.closed) return;
        ws.send(JSON.stringify({ t: 'res', id: frame.id, exitCode: 0, output: `ran ${frame.kind} on ${this.o.agents.at(slot).hostname}` } satisfies TunnelFrame));
        this.o.recorder.observe('ws-command', this.o.now() - received);
      }, delay);
    }
  }

  /** A protocol file's frames: a reply to the periodic frame, or a server frame to answer. */
  private onCodecMessage(slot: number, data: WebSocket.RawData, codec: TunnelCodec): void {
    let frame: unknown;
    try {
      frame = JSON.parse(data.toString());
    } catch {
      this.o.recorder.error('ws:bad-frame');
      return;
    }
    if (codec.expectsReply && codec.isReply(frame)) {
      const intended = this.telIntended[slot];
      if (intended >= 0) {
        this.o.recorder.done(codec.frameOp, intended, this.telSentAt[slot], this.o.now(), true);
        this.telIntended[slot] = -1;
        this.pending--;
      }
      return;
    }
    const received = this.o.now();
    const answer = codec.answer(slot, frame);
    if (!answer) return;
    setTimeout(() => {
      const ws = this.sockets[slot];
      if (!ws || this.state[slot] !== State.Open) return;
      ws.send(answer.text);
      this.o.recorder.observe(answer.op, this.o.now() - received);
    }, this.o.rng.exponential(this.o.commandDelayMs));
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
    // A probe of home in flight is abandoned: the agent reconnects as after any drop.
    const probe = this.probes[slot];
    if (probe) {
      this.probes[slot] = null;
      probe.terminate();
    }
    if (wasOpen) {
      this.connected--;
      this.droppedAt[slot] = this.o.now();
      this.o.recorder.error('ws:tunnel-dropped');
      this.log(this.cut[slot] ? 'cut' : 'drop', slot, this.relay[slot]);
      this.cut[slot] = 0;
    } else {
      this.connecting--;
      // A failed attempt: the next one goes to a sibling relay.
      this.o.recorder.observe('ws-connect', this.o.now() - this.connectStart[slot], false);
      if (this.droppedAt[slot] < 0) this.droppedAt[slot] = this.connectStart[slot];
      this.relay[slot] = (this.relay[slot] + 1) % this.o.urls.length;
    }
    this.pingSentAt[slot] = -1;
    if (this.telIntended[slot] >= 0) {
      this.o.recorder.done(this.frameOp, this.telIntended[slot], this.telSentAt[slot], this.o.now(), false, 'tunnel-closed');
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
      this.o.recorder.done(this.frameOp, this.telIntended[slot], this.telSentAt[slot], now, false, 'no-ack');
      this.telIntended[slot] = -1;
      this.pending--;
    }
    // Home answered while an ack was awaited on the sibling: move now, before the next frame.
    if (this.probeReady(slot) && this.awayFromHome(slot)) this.goHome(slot);
    const tunnel = this.sockets[slot]!;
    const seq = ++this.telSeq[slot];
    const codec = this.o.codec;
    if (codec) {
      tunnel.send(codec.frame(slot, seq));
      if (!codec.expectsReply) return this.o.recorder.done(codec.frameOp, intendedMs, now, now, true);
    }
    this.telIntended[slot] = intendedMs;
    this.telSentAt[slot] = now;
    this.pending++;
    if (codec) return;
    // The tunnel's own latency, apart from telemetry's: a ping with each frame, its pong timed as
    // `ws-ping` (the relay's ws answers it, whatever happens to telemetry downstream).
    if (this.pingSentAt[slot] < 0) {
      this.pingSentAt[slot] = now;
      tunnel.ping();
    }
    const sentMs = Math.round((this.o.startAtEpochMs ?? 0) + now);
    const frame: TunnelFrame = { t: 'tel', seq: this.seqBase + seq, cpuPct: telemetryCpuPct(this.idHash[slot]!, seq), memPct: 20 + this.o.rng.int(75), sentMs };
    tunnel.send(JSON.stringify(frame));
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
      this.cut[open[i]!] = 1;
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
    for (let slot = 0; slot < this.probes.length; slot++) {
      const p = this.probes[slot];
      this.probes[slot] = null;
      p?.terminate();
    }
    for (const ws of this.leaving) ws.close(1001);
    this.leaving.clear();
    const now = this.o.now();
    for (let slot = 0; slot < this.telIntended.length; slot++) {
      if (this.telIntended[slot] >= 0) {
        this.o.recorder.done(this.frameOp, this.telIntended[slot], this.telSentAt[slot], now, false, 'unacked-at-end');
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
    for (const ws of this.probes) ws?.terminate();
    this.probes.fill(null);
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

/** FNV-1a of a string: a stable 32-bit hash, the same in every worker. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * An agent's CPU figure in its n-th frame: 0–99, a mix of the agent id's hash and n, so the same
 * seed sends the same values whatever the split into workers or the timing. About 5% of frames are
 * at 95 or more, the analytics node's alert rule (src/stack/analytics/analytics-store.ts).
 */
export function telemetryCpuPct(idHash: number, n: number): number {
  let h = (idHash ^ Math.imul(n, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) % 100;
}
