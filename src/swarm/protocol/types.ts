/**
 * A protocol file as written (schemas/protocol.schema.json) and as resolved for a run. The
 * resolved `ProtocolSpec` is plain data: it travels to the worker processes inside the swarm's
 * configuration, and each worker compiles it (compile-protocol.ts) once.
 */

export interface StepDoc {
  name: string;
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  headers?: Record<string, string>;
  body?: string;
  format?: 'json' | 'text';
  when?: string;
  check?: { status?: number | number[]; exists?: string };
  extract?: Record<string, string>;
}

export interface FlowDoc {
  name: string;
  weight?: number;
  steps: StepDoc[];
}

export interface MatchDoc {
  path: string;
  equals: string | number | boolean;
}

export interface TunnelDoc {
  path?: string;
  headers?: Record<string, string>;
  frame: { name: string; send: string; reply?: MatchDoc };
  replies?: Array<{ name: string; when: MatchDoc; send: string }>;
}

export interface ProtocolDoc {
  name: string;
  description?: string;
  vars?: Record<string, { default?: string; description?: string }>;
  enroll?: StepDoc[];
  /** HTTP agents (--mode http); exactly one of flows and tunnel. */
  flows?: FlowDoc[];
  /** WebSocket agents (--mode ws). */
  tunnel?: TunnelDoc;
  tls?: { clientCert?: { ca: string; caKey: string; commonName?: string } };
  sign?: string;
}

export interface ProtocolSpec {
  name: string;
  /** The protocol file (absolute), or null when written inline in a scenario. */
  file: string | null;
  /** Where the file's relative paths (CA, signing module) resolve from. */
  baseDir: string;
  doc: ProtocolDoc;
  /** Every declared variable's value (from --var or its default). */
  values: Record<string, string>;
}

/** Operation names the gate grammar keeps for itself (src/gate/grammar.ts): a step may not take them. */
export const RESERVED_OP_NAMES = ['latency', 'errors', 'throughput', 'ceiling', 'tier', 'node', 'generator'] as const;
