/**
 * The wire contract between the swarm (client) and the reference stacks (server). Anything that
 * both sides must agree on lives here and only here.
 *
 * Agent HTTP API (served by `web` nodes; agent pool behind the proxy):
 *   POST /agent/v1/checkin          full check-in; response carries pending commands
 *   POST /agent/v1/heartbeat        small liveness ping
 *   POST /agent/v1/inventory        software/hardware inventory upload (tens of KB)
 *   POST /agent/v1/command-results  results of commands the agent executed
 *   headers: `authorization: Bearer <agent token>`, `x-agent-id: <agent id>`
 *
 * User / integration API (served by `web` nodes; user pool behind the proxy):
 *   GET  /api/v1/agents?status=offline|online&client=&os=&limit=   dashboard list
 *   GET  /api/v1/stats/by-os          GET /api/v1/stats/by-client  dashboard aggregates
 *   POST /api/v1/agents/:id/commands  {kind, args} → {commandId}
 *   GET  /api/v1/sync/agents?after=&limit=                          integration paging
 *   header: `authorization: Bearer <user token>` (see identity.userToken)
 *
 * Tunnel (served by `relay` nodes): WebSocket upgrade at /agent/v1/tunnel with the same two agent
 * headers. Frames are JSON text, one of TunnelFrame below.
 *   POST /api/v1/sessions  {agentId, protocol, command} on a relay: an operator session brokered to
 *   the agent through its tunnel → {sessionId, agentId, relay, output, exitCode}
 *
 * Node admin surface (every stack node, never reachable through the proxy):
 *   GET /healthz  → 200 {"ok":true,...}    GET /metrics → Prometheus text
 *   GET /admin/hdr → NodeHdrSnapshot (exact server-side histograms, per-second counts)
 */

export const AGENT_PREFIX = '/agent/';
export const USER_PREFIX = '/api/';
export const ADMIN_PATHS = ['/metrics', '/healthz', '/admin/'] as const;

export const AGENT_ROUTES = {
  checkin: '/agent/v1/checkin',
  heartbeat: '/agent/v1/heartbeat',
  inventory: '/agent/v1/inventory',
  commandResults: '/agent/v1/command-results',
  tunnel: '/agent/v1/tunnel',
} as const;

export const USER_ROUTES = {
  agents: '/api/v1/agents',
  statsByOs: '/api/v1/stats/by-os',
  statsByClient: '/api/v1/stats/by-client',
  syncAgents: '/api/v1/sync/agents',
  sessions: '/api/v1/sessions',
} as const;

export const HEADER_AGENT_ID = 'x-agent-id';
export const HEADER_SERVED_BY = 'x-served-by';

/** The message kinds an agent sends; the swarm's mix is weights over the scheduled ones. */
export const MESSAGE_KINDS = ['checkin', 'heartbeat', 'inventory', 'command-result'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

export interface AgentStatus {
  cpuPct: number;
  memPct: number;
  diskFreePct: number;
  uptimeSec: number;
  loggedOnUser: string | null;
}

export interface CheckinRequest {
  agentId: string;
  hostname: string;
  os: string;
  agentVersion: string;
  client: string;
  seq: number;
  status: AgentStatus;
}

export interface PendingCommand {
  id: string;
  kind: string;
  args: Record<string, unknown>;
}

export interface CheckinResponse {
  ok: true;
  commands: PendingCommand[];
  nextCheckinSec: number;
}

export interface CommandResult {
  commandId: string;
  exitCode: number;
  output: string;
  durationMs: number;
}

export type TunnelFrame =
  | { t: 'tel'; seq: number; cpuPct: number; memPct: number; sentMs?: number } // agent → relay: telemetry (sentMs: the agent's send time, epoch ms)
  | { t: 'ack'; seq: number } // relay → agent: telemetry stored (or batched for storage)
  | { t: 'cmd'; id: string; kind: string; args: Record<string, unknown> } // relay → agent
  | { t: 'res'; id: string; exitCode: number; output: string }; // agent → relay

export interface NodeHdrSnapshot {
  node: string;
  role: string;
  /** Wall-clock ms when the node started counting. */
  sinceMs: number;
  /** Encoded (compressed base64) server-side latency histograms in µs, keyed by route. */
  histograms: Record<string, string>;
  /** Requests completed per whole second since start: [{sec: unix seconds, count}], keyed by route. */
  perSecond: Record<string, Array<{ sec: number; count: number }>>;
}
