import type { Rng } from '../../core/random.js';
import type { LocalAgents } from '../local-agents.js';
import type { TunnelCodec } from '../transports/ws-tunnels.js';
import type { CompiledMatch, CompiledTunnel } from './compile-protocol.js';
import { readJsonPath } from './json-path.js';
import { RenderState } from './template.js';

/**
 * A protocol file's `tunnel:` as the tunnel fleet's codec (transports/ws-tunnels.ts): the connect
 * URL and headers, the periodic frame, whether a server frame answers it, and the answers to
 * server-initiated frames ({{prev PATH}} reads the server's frame). Templates were compiled once;
 * the fleet keeps its pacing, reconnects and per-agent typed arrays.
 */

function matches(m: CompiledMatch, frame: unknown): boolean {
  return readJsonPath(frame, m.path) === m.equals;
}

export function tunnelCodec(t: CompiledTunnel, agents: LocalAgents, rng: Rng, epochMs: () => number): TunnelCodec {
  const st = new RenderState();
  st.rng = rng;
  const at = (slot: number, seq: number, prev: unknown): RenderState => {
    st.agent = agents.at(slot);
    st.slot = slot;
    st.seq = seq;
    st.nowMs = epochMs();
    st.prev = prev;
    return st;
  };
  const reply = t.frame.reply;
  return {
    frameOp: t.frame.name,
    expectsReply: reply !== null,
    url: (base, slot) => (t.path.isStatic && t.path.source === '' ? base : base + t.path.render(at(slot, 0, undefined))),
    headers: (slot) => {
      const out: Record<string, string> = {};
      for (const [k, v] of t.headers) out[k] = v.render(at(slot, 0, undefined));
      return out;
    },
    frame: (slot, seq) => t.frame.send.render(at(slot, seq, undefined)),
    isReply: (frame) => reply !== null && matches(reply, frame),
    answer: (slot, frame) => {
      for (const r of t.replies) if (matches(r.when, frame)) return { op: r.name, text: r.send.render(at(slot, 0, frame)) };
      return null;
    },
  };
}
