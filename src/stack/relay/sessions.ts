import { randomUUID } from 'node:crypto';
import type { TunnelFrame } from '../../core/protocol.js';

/**
 * Operator sessions in flight on one relay: a command frame went down an agent's tunnel and the
 * operator's HTTP request waits for the agent's `res` frame. Sessions live only here, in memory:
 * brokering is stateless, so a relay that restarts loses exactly its pending sessions.
 *
 * Bounded: at most `maxPending` sessions on the relay and `maxPerAgent` per agent (refused, never
 * queued); each ends by the agent's answer, its timeout, or its tunnel closing, whichever is first.
 */

export type SessionOutcome =
  | { kind: 'answered'; sessionId: string; exitCode: number; output: string }
  | { kind: 'timeout'; sessionId: string; timeoutMs: number }
  | { kind: 'tunnel-closed'; sessionId: string };

export type SessionRefusal = { kind: 'relay-full'; maxPending: number } | { kind: 'agent-busy'; maxPerAgent: number };

interface Pending {
  agentId: string;
  settle(outcome: SessionOutcome): void;
}

export class SessionBroker {
  private readonly pending = new Map<string, Pending>();
  /** Session ids by agent, only for agents with sessions in flight. */
  private readonly byAgent = new Map<string, Set<string>>();

  constructor(
    private readonly maxPending: number,
    private readonly maxPerAgent: number,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /**
   * Send a command down `send` and wait for the agent's answer. A refusal comes back at once,
   * without sending anything.
   */
  open(agentId: string, kind: string, args: Record<string, unknown>, timeoutMs: number, send: (frame: string) => void): SessionRefusal | Promise<SessionOutcome> {
    if (this.pending.size >= this.maxPending) return { kind: 'relay-full', maxPending: this.maxPending };
    const mine = this.byAgent.get(agentId);
    if (mine && mine.size >= this.maxPerAgent) return { kind: 'agent-busy', maxPerAgent: this.maxPerAgent };
    const sessionId = randomUUID();
    return new Promise<SessionOutcome>((resolve) => {
      const timer = setTimeout(() => p.settle({ kind: 'timeout', sessionId, timeoutMs }), timeoutMs);
      const p: Pending = {
        agentId,
        settle: (outcome) => {
          if (!this.pending.delete(sessionId)) return;
          clearTimeout(timer);
          const set = this.byAgent.get(agentId);
          set?.delete(sessionId);
          if (set && set.size === 0) this.byAgent.delete(agentId);
          resolve(outcome);
        },
      };
      this.pending.set(sessionId, p);
      if (mine) mine.add(sessionId);
      else this.byAgent.set(agentId, new Set([sessionId]));
      send(JSON.stringify({ t: 'cmd', id: sessionId, kind, args } satisfies TunnelFrame));
    });
  }

  /** An agent's `res` frame. False when no session of this agent has that id (late, or not its own). */
  result(agentId: string, frame: { id: string; exitCode: number; output: string }): boolean {
    const p = this.pending.get(frame.id);
    if (!p || p.agentId !== agentId) return false;
    p.settle({ kind: 'answered', sessionId: frame.id, exitCode: frame.exitCode, output: frame.output });
    return true;
  }

  /** The agent has no tunnel here any more: its sessions fail now rather than at their timeouts. */
  tunnelClosed(agentId: string): void {
    const ids = this.byAgent.get(agentId);
    if (!ids) return;
    for (const id of [...ids]) this.pending.get(id)?.settle({ kind: 'tunnel-closed', sessionId: id });
  }

  /** Shutdown: every pending session fails as if its tunnel closed. */
  closeAll(): void {
    for (const [id, p] of [...this.pending]) p.settle({ kind: 'tunnel-closed', sessionId: id });
  }
}
