import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseSessionRequest } from '../../src/stack/relay/session-api.js';
import { batchPolicyFrom } from '../../src/stack/roles/relay.js';
import { SessionBroker } from '../../src/stack/relay/sessions.js';
import { TelemetryBatcher, type TelemetryBatchOptions } from '../../src/stack/relay/telemetry-batcher.js';
import type { TelemetrySample } from '../../src/stack/types.js';

/** The relay's pure parts: batch policy, session parsing, the batcher and the session broker, on fake timers. */

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const sample = (i: number): TelemetrySample => ({ agentId: `a${i}`, relay: 'relay-1', atMs: i, cpuPct: 1, memPct: 2 });

/** A batcher over a store whose commits the test resolves by hand. */
function rig(opts: Partial<TelemetryBatchOptions> = {}) {
  const writes: Array<{ samples: TelemetrySample[]; resolve: () => void; reject: (e: Error) => void }> = [];
  const acked: number[] = [];
  let failedSamples = 0;
  const counts = new Map<string, number>();
  const requests: Array<[string, number, number]> = [];
  const b = new TelemetryBatcher<string>(
    { maxSamples: 3, maxDelayMs: 100, maxInFlight: 2, maxBuffered: 10, ...opts },
    {
      write: (samples) => new Promise<void>((resolve, reject) => writes.push({ samples, resolve, reject })),
      committed: (_owner, seq) => acked.push(seq),
      failed: (_err, n) => (failedSamples += n),
      metrics: { count: (n, by = 1) => counts.set(n, (counts.get(n) ?? 0) + by), observeUs: () => undefined, request: (route, status, us) => requests.push([route, status, us]) },
      nowMs: () => Date.now(),
    },
  );
  return { b, writes, acked, counts, requests, failed: () => failedSamples };
}

describe('TelemetryBatcher', () => {
  it('sends a batch at maxSamples at once, acks only after the commit', async () => {
    const { b, writes, acked } = rig();
    for (let i = 1; i <= 3; i++) b.add(sample(i), 'ws', i);
    expect(writes.map((w) => w.samples.length)).toEqual([3]);
    expect(acked).toEqual([]);
    writes[0].resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(acked).toEqual([1, 2, 3]);
  });

  it('sends a partial batch when its oldest sample has waited maxDelayMs, not before', async () => {
    const { b, writes } = rig();
    b.add(sample(1), 'ws', 1);
    await vi.advanceTimersByTimeAsync(60);
    b.add(sample(2), 'ws', 2);
    await vi.advanceTimersByTimeAsync(39);
    expect(writes).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(writes.map((w) => w.samples.map((s) => s.atMs))).toEqual([[1, 2]]);
  });

  it('records each frame as a telemetry request, from its arrival to the commit that acks it: 200, or 503 when the batch failed', async () => {
    const { b, writes, requests } = rig();
    b.add(sample(1), 'ws', 1);
    await vi.advanceTimersByTimeAsync(60);
    b.add(sample(2), 'ws', 2);
    await vi.advanceTimersByTimeAsync(40); // the batch leaves at 100 ms
    await vi.advanceTimersByTimeAsync(30);
    writes[0].resolve(); // committed at 130 ms
    await vi.advanceTimersByTimeAsync(0);
    expect(requests).toEqual([
      ['telemetry', 200, 130_000],
      ['telemetry', 200, 70_000],
    ]);
    for (let i = 3; i <= 5; i++) b.add(sample(i), 'ws', i);
    await vi.advanceTimersByTimeAsync(5);
    writes[1].reject(new Error('db down'));
    await vi.advanceTimersByTimeAsync(0);
    expect(requests.slice(2)).toEqual([
      ['telemetry', 503, 5000],
      ['telemetry', 503, 5000],
      ['telemetry', 503, 5000],
    ]);
  });

  it('keeps at most maxInFlight batches committing; the rest leave when a slot frees', async () => {
    const { b, writes } = rig();
    for (let i = 1; i <= 9; i++) b.add(sample(i), 'ws', i);
    expect(writes.map((w) => w.samples.length)).toEqual([3, 3]);
    expect(b.buffered).toBe(3);
    writes[0].resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(writes.map((w) => w.samples.length)).toEqual([3, 3, 3]);
    expect(b.buffered).toBe(0);
  });

  it('refuses past maxBuffered, and never acks a failed batch', async () => {
    const { b, writes, acked, counts, failed } = rig({ maxInFlight: 1, maxSamples: 5 });
    const taken = Array.from({ length: 17 }, (_, i) => b.add(sample(i), 'ws', i));
    // 5 left in the first batch, 10 buffered behind it, then refusals.
    expect(taken.filter(Boolean)).toHaveLength(15);
    expect(taken.slice(15)).toEqual([false, false]);
    writes[0].reject(new Error('db down'));
    await vi.advanceTimersByTimeAsync(0);
    expect(acked).toEqual([]);
    expect(failed()).toBe(5);
    expect(counts.get('telemetry-batch-failed')).toBe(1);
    expect(writes).toHaveLength(2);
  });

  it('drain sends everything at once and resolves when the commits end', async () => {
    const { b, writes, acked } = rig({ maxInFlight: 1 });
    for (let i = 1; i <= 4; i++) b.add(sample(i), 'ws', i);
    let drained = false;
    void b.drain(5000).then(() => (drained = true));
    expect(writes.map((w) => w.samples.length)).toEqual([3]);
    writes[0].resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(writes.map((w) => w.samples.length)).toEqual([3, 1]); // not held for maxDelayMs
    writes[1].resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(drained).toBe(true);
    expect(acked).toEqual([1, 2, 3, 4]);
  });
});

describe('SessionBroker', () => {
  it('settles by the agent’s answer, by timeout, or when its tunnel closes; refuses past its bounds', async () => {
    const broker = new SessionBroker(3, 2);
    const sent: Array<{ id: string; kind: string; args: Record<string, unknown> }> = [];
    const send = (f: string) => sent.push(JSON.parse(f) as { id: string; kind: string; args: Record<string, unknown> });
    const a = broker.open('agent-a', 'shell', { command: 'id' }, 1000, send) as Promise<unknown>;
    const b = broker.open('agent-a', 'shell', { command: 'ls' }, 500, send) as Promise<unknown>;
    expect(broker.open('agent-a', 'shell', {}, 500, send)).toEqual({ kind: 'agent-busy', maxPerAgent: 2 });
    const c = broker.open('agent-b', 'shell', {}, 1000, send) as Promise<unknown>;
    expect(broker.open('agent-c', 'shell', {}, 1000, send)).toEqual({ kind: 'relay-full', maxPending: 3 });
    expect(sent.map((f) => f.kind)).toEqual(['shell', 'shell', 'shell']);

    expect(broker.result('agent-b', { id: sent[0].id, exitCode: 0, output: 'x' })).toBe(false); // not agent-b's session
    expect(broker.result('agent-a', { id: sent[0].id, exitCode: 0, output: 'uid=0' })).toBe(true);
    expect(await a).toEqual({ kind: 'answered', sessionId: sent[0].id, exitCode: 0, output: 'uid=0' });
    await vi.advanceTimersByTimeAsync(500);
    expect(await b).toEqual({ kind: 'timeout', sessionId: sent[1].id, timeoutMs: 500 });
    broker.tunnelClosed('agent-b');
    expect(await c).toEqual({ kind: 'tunnel-closed', sessionId: sent[2].id });
    expect(broker.size).toBe(0);
  });
});

describe('session requests and the batch policy hook', () => {
  it.each([
    [null, 'body: expected a JSON object {"agentId", "protocol", "command", "args"?, "timeoutMs"?}'],
    [{ protocol: 'shell', command: 'id' }, 'agentId: expected a string of 1-128 characters'],
    [{ agentId: 'a', command: 'id' }, 'protocol: expected a string of 1-64 characters (e.g. "shell")'],
    [{ agentId: 'a', protocol: 'shell', command: '' }, 'command: expected a string of 1-4096 characters'],
    [{ agentId: 'a', protocol: 'shell', command: 'id', args: [] }, 'args: expected an object'],
    [{ agentId: 'a', protocol: 'shell', command: 'id', timeoutMs: 60_001 }, 'timeoutMs: expected an integer 1-60000, got 60001'],
  ])('%j → %s', (body, problem) => {
    expect(parseSessionRequest(body)).toBe(problem);
  });

  it('fills defaults for a valid request', () => {
    expect(parseSessionRequest({ agentId: 'a', protocol: 'shell', command: 'id' })).toEqual({ agentId: 'a', protocol: 'shell', command: 'id', args: {}, timeoutMs: 10_000 });
  });

  it.each([
    [undefined, { maxSamples: 500, maxDelayMs: 250, maxInFlight: 4, maxBuffered: 50_000 }],
    ['1:0:32', { maxSamples: 1, maxDelayMs: 0, maxInFlight: 32, maxBuffered: 50_000 }],
    ['100:50', { maxSamples: 100, maxDelayMs: 50, maxInFlight: 4, maxBuffered: 50_000 }],
  ])('RMMSCALE_RELAY_BATCH=%j', (raw, policy) => {
    expect(batchPolicyFrom(raw)).toEqual(policy);
  });

  it.each(['0:10', '500', 'a:b', '1:0:0', '1:70000'])('refuses RMMSCALE_RELAY_BATCH=%j in one line', (raw) => {
    expect(() => batchPolicyFrom(raw)).toThrow(`RMMSCALE_RELAY_BATCH: expected SAMPLES:DELAY_MS[:IN_FLIGHT] with 1-10000 samples, 0-60000 ms, 1-256 in flight, got ${JSON.stringify(raw)}`);
  });
});
