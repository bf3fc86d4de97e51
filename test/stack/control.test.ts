import { afterEach, describe, expect, it } from 'vitest';
import { applyFault, requestFault, startControlServer, type ControlledStack } from '../../src/stack/control.js';

/** A stack that records what it was asked to do; a restart gives the node a new pid. */
function fakeStack(): ControlledStack & { log: string[] } {
  const nodes = [
    { name: 'db', tier: 'db', pid: 100 },
    { name: 'web-agent-1', tier: 'web-agent', pid: 101 },
    { name: 'web-agent-2', tier: 'web-agent', pid: 102 },
  ];
  const log: string[] = [];
  return {
    nodes,
    log,
    kill: (name, signal) => void log.push(`${signal} ${name}`),
    restart: async (name) => {
      log.push(`restart ${name}`);
      nodes.find((n) => n.name === name)!.pid += 1000;
    },
  };
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

describe('stack fault: the control endpoint of a running stack up', () => {
  it('applies kill, stop, cont and restart; a tier name picks its first node', async () => {
    const s = fakeStack();
    expect(await applyFault(s, 'web-agent', 'kill')).toEqual({ node: 'web-agent-1', action: 'kill', pid: 101 });
    await applyFault(s, 'db', 'stop');
    await applyFault(s, 'db', 'cont');
    expect(await applyFault(s, 'web-agent-2', 'restart')).toEqual({ node: 'web-agent-2', action: 'restart', pid: 1102 });
    expect(s.log).toEqual(['SIGKILL web-agent-1', 'SIGSTOP db', 'SIGCONT db', 'restart web-agent-2']);
  });

  it('refuses an unknown node or action with what is allowed', async () => {
    const s = fakeStack();
    await expect(applyFault(s, 'web-9', 'kill')).rejects.toThrow('node: expected one of db, web-agent-1, web-agent-2 (or a tier), got "web-9"');
    await expect(applyFault(s, 'db', 'pause')).rejects.toThrow('action: expected one of kill, stop, cont, restart, got "pause"');
    expect(s.log).toEqual([]);
  });

  it('over HTTP: the key is required, a good request is done and reported, a bad one is a 400 with the reason', async () => {
    const s = fakeStack();
    const heard: string[] = [];
    const ctl = await startControlServer(s, 'k3y', (f) => heard.push(`${f.action} ${f.node}`));
    closers.push(ctl.close);
    expect(ctl.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const bare = await fetch(`${ctl.url}/fault`, { method: 'POST', body: JSON.stringify({ node: 'db', action: 'kill' }) });
    expect(bare.status).toBe(401);
    await expect(requestFault(ctl.url, 'wrong', 'db', 'kill')).rejects.toThrow('a control key is required');
    expect(s.log).toEqual([]);
    expect(await requestFault(ctl.url, 'k3y', 'web-agent-1', 'restart')).toEqual({ node: 'web-agent-1', action: 'restart', pid: 1101 });
    await expect(requestFault(ctl.url, 'k3y', 'nope', 'kill')).rejects.toThrow('node: expected one of');
    expect(heard).toEqual(['restart web-agent-1']);
    expect((await fetch(`${ctl.url}/other`, { method: 'POST' })).status).toBe(404);
  });

  it('a stack up that is gone: one line naming where it looked', async () => {
    const s = fakeStack();
    const ctl = await startControlServer(s, 'k');
    await ctl.close();
    await expect(requestFault(ctl.url, 'k', 'db', 'kill', 2000)).rejects.toThrow(`the stack up at ${ctl.url} did not answer`);
  });
});
