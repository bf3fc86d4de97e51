import { describe, expect, it } from 'vitest';
import {
  agentId,
  agentToken,
  deriveAgent,
  deriveFleet,
  deriveKey,
  generateSecret,
  parseSessionScope,
  sameCredential,
  userToken,
  verifyAgentToken,
  verifyUserToken,
  verifyUserTokenScope,
} from '../../src/core/identity.js';

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

describe('control-plane keys and session scopes', () => {
  it('derives one key per purpose, none equal to the secret, a token or another purpose', () => {
    const keys = (['admin', 'db-rpc', 'relay-forward'] as const).map((p) => deriveKey('secret', p));
    expect(new Set(keys).size).toBe(3);
    for (const k of keys) expect(k).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(deriveKey('secret', 'admin')).not.toBe(deriveKey('other', 'admin'));
    expect(sameCredential(keys[0], deriveKey('secret', 'admin'))).toBe(true);
    expect(sameCredential(undefined, keys[0])).toBe(false);
    expect(sameCredential(keys[1], keys[0])).toBe(false);
    expect(generateSecret()).not.toBe(generateSecret());
  });

  it('carries a scope inside the HMAC: it verifies as written and cannot be widened', () => {
    const t = userToken('secret', 'ann', 'group:client-007@shell');
    expect(verifyUserTokenScope('secret', t)).toEqual({ user: 'ann', scope: 'group:client-007@shell' });
    expect(verifyUserToken('secret', t)).toBe('ann');
    const [u, name, , mac] = t.split('.');
    const widened = [u, name, Buffer.from('*').toString('base64url'), mac].join('.');
    expect(verifyUserTokenScope('secret', widened)).toBeNull();
    expect(verifyUserTokenScope('secret', userToken('secret', 'ann'))).toEqual({ user: 'ann', scope: null });
  });

  it('parses scopes, and names the field for a bad one', () => {
    const id = 'agt-0123456789abcdef';
    expect(parseSessionScope('s', '*')).toEqual({ agents: 'all', protocols: null });
    expect(parseSessionScope('s', `agents:${id}@shell,files`)).toEqual({ agents: new Set([id]), protocols: new Set(['shell', 'files']) });
    expect(parseSessionScope('s', 'group:client-007/windows')).toEqual({ agents: { group: 'client-007/windows' }, protocols: null });
    for (const bad of ['', 'all', 'agents:', 'agents:nope', 'group:', '*@', 'group:a b']) {
      expect(() => parseSessionScope('--scope', bad)).toThrow(/^--scope: expected a session scope: \*, agents:ID\[,ID…\] or group:NAME/);
    }
  });
});
