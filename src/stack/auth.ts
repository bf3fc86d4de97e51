import type { IncomingMessage } from 'node:http';
import { verifyAgentToken, verifyUserToken } from '../core/identity.js';
import { HEADER_AGENT_ID } from '../core/protocol.js';

/**
 * Who is calling, from headers alone (never the body, so a refused caller costs no body read).
 * Agents: `authorization: Bearer <agent token>` + `x-agent-id`; the token is an HMAC of the id
 * under the stack secret, so an id the stack never issued cannot pass, whatever token it shows.
 * Users and integrations: `authorization: Bearer <user token>`. Agent tokens never pass as user
 * tokens, nor the other way round: the two HMACs are over different domains and shapes.
 */

export function bearerToken(req: IncomingMessage): string | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^Bearer +(\S+)\s*$/i.exec(h);
  return m ? m[1] : null;
}

/** The authenticated agent id, or null. */
export function authenticateAgent(req: IncomingMessage, secret: string): string | null {
  const token = bearerToken(req);
  const id = req.headers[HEADER_AGENT_ID];
  if (!token || typeof id !== 'string') return null;
  return verifyAgentToken(secret, id, token) ? id : null;
}

/** The authenticated user name, or null. */
export function authenticateUser(req: IncomingMessage, secret: string): string | null {
  const token = bearerToken(req);
  return token ? verifyUserToken(secret, token) : null;
}
