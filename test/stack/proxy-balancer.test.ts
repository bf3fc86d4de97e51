import { describe, expect, it } from 'vitest';
import { leastOutstanding, pickBackend, poolOf, type Balanceable } from '../../src/stack/proxy/balancer.js';
import { connectionTokens, requestHeaders, responseHeaders } from '../../src/stack/proxy/headers.js';

type B = Balanceable & { id: string };
const b = (id: string, outstanding: number, healthy = true): B => ({ id, outstanding, healthy });

describe('leastOutstanding', () => {
  const table: Array<{ pool: B[]; tried: string[]; start: number; want: string | null }> = [
    { pool: [b('A', 2), b('B', 0), b('C', 0)], tried: [], start: 0, want: 'B' },
    { pool: [b('A', 2), b('B', 0), b('C', 0)], tried: [], start: 2, want: 'C' },
    { pool: [b('A', 2), b('B', 0), b('C', 0)], tried: ['C'], start: 2, want: 'B' },
    { pool: [b('A', 0), b('B', 0), b('C', 0)], tried: [], start: 4, want: 'B' },
    { pool: [b('A', 0, false), b('B', 5), b('C', 3)], tried: [], start: 0, want: 'C' },
    { pool: [b('A', 0, false), b('B', 5, false)], tried: [], start: 0, want: null },
    { pool: [b('A', 1), b('B', 1)], tried: ['A', 'B'], start: 0, want: null },
    { pool: [], tried: [], start: 7, want: null },
  ];
  it.each(table)('pool $pool.length, tried $tried, start $start → $want', ({ pool, tried, start, want }) => {
    const t = new Set(pool.filter((x) => tried.includes(x.id)));
    expect(leastOutstanding(pool, t, start)?.id ?? null).toBe(want);
  });

  it('spreads idle traffic round-robin as start advances', () => {
    const pool = [b('A', 0), b('B', 0), b('C', 0)];
    expect([0, 1, 2, 3, 4, 5].map((s) => leastOutstanding(pool, new Set(), s)?.id)).toEqual(['A', 'B', 'C', 'A', 'B', 'C']);
  });
});

describe('pickBackend: agent paths to the agent pool, user paths to the user pool with fallback', () => {
  const agent = [b('a1', 3), b('a2', 1)];
  it('routes by path prefix', () => {
    expect(poolOf('/agent/v1/checkin')).toBe('agent');
    expect(poolOf('/api/v1/agents')).toBe('user');
    expect(poolOf('/metrics')).toBeNull();
    expect(poolOf('/agentx')).toBeNull();
  });
  it('uses the user pool while one user backend is healthy', () => {
    expect(pickBackend({ agent, user: [b('u1', 9)] }, 'user', new Set(), 0)?.id).toBe('u1');
  });
  it('falls back to the least-loaded agent backend when every user backend is down or tried', () => {
    const u1 = b('u1', 0, false);
    expect(pickBackend({ agent, user: [u1] }, 'user', new Set(), 0)?.id).toBe('a2');
    const u2 = b('u2', 0);
    expect(pickBackend({ agent, user: [u2] }, 'user', new Set([u2]), 0)?.id).toBe('a2');
  });
  it('never sends agent paths to the user pool', () => {
    expect(pickBackend({ agent: [b('a1', 0, false)], user: [b('u1', 0)] }, 'agent', new Set(), 0)).toBeNull();
  });
});

describe('hop-by-hop headers', () => {
  it('parses Connection tokens', () => {
    expect([...connectionTokens('keep-alive, X-Foo ,, close')]).toEqual(['keep-alive', 'x-foo', 'close']);
    expect([...connectionTokens(['a', 'b, c'])]).toEqual(['a', 'b', 'c']);
    expect(connectionTokens(undefined).size).toBe(0);
  });

  it('drops hop-by-hop and Connection-named headers upstream, adds X-Forwarded-*', () => {
    const out = requestHeaders(
      {
        host: 'proxy:80',
        connection: 'keep-alive, x-private',
        'keep-alive': 'timeout=5',
        'x-private': 'secret',
        te: 'trailers',
        trailer: 'x-t',
        'transfer-encoding': 'chunked',
        upgrade: 'h2c',
        'proxy-authorization': 'Basic x',
        'proxy-connection': 'keep-alive',
        'content-length': '12',
        expect: '100-continue',
        authorization: 'Bearer t',
        'x-agent-id': 'a-1',
        'x-forwarded-for': '10.0.0.1',
      },
      '127.0.0.9',
      'http',
    );
    expect(out).toEqual({ authorization: 'Bearer t', 'x-agent-id': 'a-1', 'x-forwarded-for': '10.0.0.1, 127.0.0.9', 'x-forwarded-proto': 'http' });
  });

  it('drops hop-by-hop headers downstream and names the backend', () => {
    const out = responseHeaders(
      { 'content-type': 'application/json', 'content-length': '2', connection: 'x-c', 'x-c': '1', 'keep-alive': 'timeout=5', 'transfer-encoding': 'chunked', 'proxy-authenticate': 'Basic', 'set-cookie': ['a=1', 'b=2'] },
      'web-agent-2',
    );
    expect(out).toEqual({ 'content-type': 'application/json', 'content-length': '2', 'set-cookie': ['a=1', 'b=2'], 'x-served-by': 'web-agent-2' });
  });
});
