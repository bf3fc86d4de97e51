import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { RmmscaleError, StackError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';

/**
 * `rmmscale stack fault NODE kill|stop|cont|restart` against a running `stack up`: the stack up
 * process owns its nodes (it started them, it alone can restart one on its port with its spec), so
 * it listens on a loopback control endpoint, named in its state file (mode 0600) beside the secret,
 * and the `stack fault` command asks it. The endpoint takes one request, `POST /fault
 * {"node","action"}`, with the control key (an HMAC of the stack's secret, like every other
 * control surface) as a bearer token.
 */

export const FAULT_ACTIONS = ['kill', 'stop', 'cont', 'restart'] as const;
export type ManualFault = (typeof FAULT_ACTIONS)[number];

/** What the control endpoint acts on (RunningStack). */
export interface ControlledStack {
  readonly nodes: ReadonlyArray<{ name: string; tier: string; pid: number }>;
  kill(name: string, signal: NodeJS.Signals): void;
  restart(name: string): Promise<void>;
}

export interface FaultDone {
  node: string;
  action: ManualFault;
  /** The node's process after the fault (a restart's new one). */
  pid: number;
}

/** A node by name, or a tier by name (its first node), as scenarios' `faults:` name them. */
export function resolveNodeName(stack: Pick<ControlledStack, 'nodes'>, name: string): string | null {
  return (stack.nodes.find((n) => n.name === name) ?? stack.nodes.find((n) => n.tier === name))?.name ?? null;
}

/** Do one fault now; a bad node or action is a StackError naming what is allowed. */
export async function applyFault(stack: ControlledStack, nodeName: string, action: string): Promise<FaultDone> {
  if (!(FAULT_ACTIONS as readonly string[]).includes(action)) throw new StackError(`action: expected one of ${FAULT_ACTIONS.join(', ')}, got ${JSON.stringify(action)}`);
  const node = resolveNodeName(stack, nodeName);
  if (!node) throw new StackError(`node: expected one of ${stack.nodes.map((n) => n.name).join(', ')} (or a tier), got ${JSON.stringify(nodeName)}`);
  const a = action as ManualFault;
  if (a === 'restart') await stack.restart(node);
  else stack.kill(node, a === 'kill' ? 'SIGKILL' : a === 'stop' ? 'SIGSTOP' : 'SIGCONT');
  return { node, action: a, pid: stack.nodes.find((n) => n.name === node)?.pid ?? -1 };
}

function keyMatches(header: string | undefined, key: string): boolean {
  const got = Buffer.from(header?.startsWith('Bearer ') ? header.slice(7) : '');
  const want = Buffer.from(key);
  return got.length === want.length && timingSafeEqual(got, want);
}

const MAX_BODY_BYTES = 4096;

function answer(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), connection: 'close' });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new StackError(`body: expected at most ${MAX_BODY_BYTES} bytes`);
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new StackError('body: expected JSON {"node": NAME, "action": "kill"|"stop"|"cont"|"restart"}');
  }
}

/**
 * The control endpoint on 127.0.0.1 (a free port). `onFault` hears each fault done, for the
 * stack up's own output. Faults run one at a time, in the order they arrive.
 */
export async function startControlServer(stack: ControlledStack, key: string, onFault: (f: FaultDone) => void = () => undefined): Promise<{ url: string; close: () => Promise<void> }> {
  let queue: Promise<unknown> = Promise.resolve();
  const server: Server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/fault') return answer(res, 404, { error: 'expected POST /fault' });
    if (!keyMatches(req.headers.authorization, key)) return answer(res, 401, { error: 'a control key is required (Authorization: Bearer KEY)' });
    const run = async (): Promise<void> => {
      try {
        const body = (await readJson(req)) as { node?: unknown; action?: unknown };
        const done = await applyFault(stack, typeof body?.node === 'string' ? body.node : '', typeof body?.action === 'string' ? body.action : '');
        onFault(done);
        answer(res, 200, done);
      } catch (err) {
        answer(res, err instanceof StackError ? 400 : 500, { error: err instanceof StackError ? err.message : 'internal' });
      }
    };
    queue = queue.then(run, run);
  });
  server.keepAliveTimeout = 1000;
  server.headersTimeout = 5000;
  server.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The `stack fault` side: ask the stack up at `controlUrl` to do one fault. */
export async function requestFault(controlUrl: string, key: string, node: string, action: string, timeoutMs = 60_000): Promise<FaultDone> {
  let res: Response;
  try {
    res = await fetch(`${controlUrl}/fault`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ node, action }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new StackError(`the stack up at ${controlUrl} did not answer: ${(err as Error)?.message ?? String(err)}`);
  }
  const body = (await res.json().catch(() => ({}))) as Partial<FaultDone> & { error?: string };
  // A 400 is the request's fault (an unknown node or action): bad input, exit 2, like any bad flag.
  if (res.status === 400) throw new RmmscaleError('ERR_INVALID_ARGUMENT', body.error ?? 'the stack up refused the fault', EXIT.badInput);
  if (res.status !== 200) throw new StackError(body.error ?? `the stack up answered ${res.status}`);
  return body as FaultDone;
}
