import { describe, expect, it } from 'vitest';
import { agentId, agentToken, deriveAgent, deriveFleet, userToken, verifyAgentToken, verifyUserToken } from '../../src/core/identity.js';

describe('deterministic identities', () => {
  it('gives the same fleet for the same seed and another for another seed', () => {
    expect(deriveFleet('s1', 'k', 50)).toEqual(deriveFleet('s1', 'k', 50));
    expect(agentId('s1', 0)).not.toBe(agentId('s2', 0));
    expect(agentId('s1', 0)).toMatch(/^agt-[0-9a-f]{16}$/);
    expect(new Set(deriveFleet('s1', 'k', 5000).map((a) => a.id)).size).toBe(5000);
  });

  it('derives tokens a stack with the same secret accepts, and no other', () => {
    const a = deriveAgent('seed', 'secret', 7);
    expect(verifyAgentToken('secret', a.id, a.token)).toBe(true);
    expect(verifyAgentToken('other-secret', a.id, a.token)).toBe(false);
    const b = deriveAgent('seed', 'secret', 8);
    expect(verifyAgentToken('secret', b.id, a.token)).toBe(false); // someone else's token
    expect(verifyAgentToken('secret', 'agt-0000000000000000', a.token)).toBe(false);
    expect(verifyAgentToken('secret', 'not-an-id', agentToken('secret', 'not-an-id'))).toBe(false);
  });

  it('mixes OS families and versions in realistic shares', () => {
    const fleet = deriveFleet('mix', 'k', 10_000);
    const windows = fleet.filter((a) => a.os === 'windows').length / fleet.length;
    expect(windows).toBeGreaterThan(0.79);
    expect(windows).toBeLessThan(0.85);
    expect(new Set(fleet.map((a) => a.agentVersion)).size).toBe(3);
    expect(fleet[0].hostname).toMatch(/^(DESKTOP-|MBP-|lnx-)/);
  });

  it('keeps user tokens and agent tokens apart', () => {
    const t = userToken('secret', 'alice');
    expect(verifyUserToken('secret', t)).toBe('alice');
    expect(verifyUserToken('wrong', t)).toBeNull();
    const a = deriveAgent('seed', 'secret', 1);
    expect(verifyUserToken('secret', a.token)).toBeNull();
    expect(verifyAgentToken('secret', a.id, t)).toBe(false);
  });
});
