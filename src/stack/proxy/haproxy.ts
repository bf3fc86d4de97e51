import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { StackError } from '../../core/errors.js';
import { parseHaproxyMetrics, type HaproxyScrape } from './haproxy-metrics.js';
import { DEFAULT_LIMITS } from '../runtime/node-server.js';
import { DEFAULT_TUNNELS } from './upgrade.js';

export type { HaproxyScrape, HaproxyServerStats } from './haproxy-metrics.js';

/**
 * `--proxy haproxy`: the system's HAProxy with a haproxy.cfg equivalent to the built-in proxy
 * (src/stack/roles/proxy.ts), run in the foreground (-db) as a child process.
 *
 *   built-in proxy                         haproxy.cfg
 *   least outstanding requests             balance leastconn
 *   GET /healthz every 250 ms, 2 fail      option httpchk GET /healthz; inter 250ms fall 2 rise 1
 *   refused/reset → eject at once          observe layer4 error-limit 1 on-error mark-down
 *   /agent/ → agent, /api/ → user          acl + use_backend
 *   user → agent pool when user is down    agent servers as `backup` in the user backend (+allbackups)
 *   retry only before the request is sent  retries 3 + retry-on conn-failure + option redispatch
 *   X-Served-By                            http-response set-header X-Served-By %[srv_name]
 *   /metrics, /healthz, /admin/ → 404      http-request deny deny_status 404
 *   413 over the body limit                deny 413 on Content-Length (chunked: the backend's limit)
 *   upstream timeouts → 504                timeout server
 *   the proxy's own /metrics               a separate frontend: prometheus-exporter, /healthz, /stats
 */

export interface HaproxyPools {
  agentPool: string[];
  userPool: string[];
  /** Backend URL → node name (HAProxy server name, and X-Served-By). */
  names: Record<string, string>;
}

export interface HaproxyConfig extends HaproxyPools {
  host: string;
  port: number;
  metricsPort: number;
  maxBodyBytes: number;
  connectTimeoutMs: number;
  /** Client-side: the whole request must arrive within this (slow headers → 408). */
  httpRequestTimeoutMs: number;
  /** Upstream inactivity (waiting for response headers or body) → 504. */
  serverTimeoutMs: number;
  clientTimeoutMs: number;
  health: { intervalMs: number; fall: number; rise: number };
  maxConn: number;
  /** A tunnel (after a 101) with no byte either way for this long is closed. */
  tunnelIdleMs: number;
  /** Worker threads; null: HAProxy's default (one per core). */
  threads: number | null;
}

export const HAPROXY_DEFAULTS = {
  /**
   * Also HAProxy's retry turn-around (min(timeout connect, 1 s)): a request that met a refused
   * connection waits this long before its retry, so keep it short on loopback.
   */
  connectTimeoutMs: 250,
  clientTimeoutMs: 30_000,
  health: { intervalMs: 250, fall: 2, rise: 1 },
  maxConn: 8000,
} as const;

/** A name HAProxy accepts as a server id: letters, digits, `_ . : -`. */
export function haproxyName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.:-]/g, '_');
}

function address(url: string): string {
  const u = new URL(url);
  const port = u.port || '80';
  return u.hostname.startsWith('[') ? `ipv6@${u.hostname.slice(1, -1)}:${port}` : `${u.hostname}:${port}`;
}

/** haproxy.cfg for one stack. Pure: the same input always renders the same text. */
export function renderHaproxyConfig(c: HaproxyConfig): string {
  const name = (u: string): string => haproxyName(c.names[u] ?? address(u));
  const servers = (pool: string[], extra = ''): string[] => pool.map((u) => `    server ${name(u)} ${address(u)} check${extra}`);
  const bind = `${c.host.includes(':') ? `ipv6@${c.host}` : c.host}`;
  const backendCommon = ['    balance leastconn', '    option httpchk GET /healthz', '    http-check expect status 200', '    http-response set-header X-Served-By %[srv_name]'];
  return [
    '# Rendered by rmmscale (src/stack/proxy/haproxy.ts): the built-in proxy\'s behaviour in HAProxy terms.',
    'global',
    `    maxconn ${c.maxConn}`,
    ...(c.threads ? [`    nbthread ${c.threads}`] : []),
    '',
    'defaults',
    '    mode http',
    `    timeout connect ${c.connectTimeoutMs}ms`,
    `    timeout client ${c.clientTimeoutMs}ms`,
    `    timeout server ${c.serverTimeoutMs}ms`,
    `    timeout http-request ${c.httpRequestTimeoutMs}ms`,
    '    timeout http-keep-alive 5s',
    `    timeout queue ${c.serverTimeoutMs}ms`,
    '    option http-keep-alive',
    `    timeout tunnel ${c.tunnelIdleMs}ms`,
    '    # A retry on another server only when the connection failed, never once the request was sent.',
    '    retries 3',
    '    retry-on conn-failure',
    '    option redispatch 1',
    `    default-server inter ${c.health.intervalMs}ms fastinter ${c.health.intervalMs}ms downinter ${c.health.intervalMs}ms fall ${c.health.fall} rise ${c.health.rise} observe layer4 error-limit 1 on-error mark-down`,
    '',
    'frontend rmmscale',
    `    bind ${bind}:${c.port}`,
    '    option forwardfor',
    '    http-request set-header X-Forwarded-Proto http',
    '    acl admin_path path /metrics /healthz',
    '    acl admin_path path_beg /admin/',
    '    acl agent_path path_beg /agent/',
    '    acl user_path path_beg /api/',
    '    http-request deny deny_status 404 if admin_path',
    '    http-request deny deny_status 404 if !agent_path !user_path',
    '    # As the built-in proxy: dot segments, encoded slashes or backslashes, and Transfer-Encoding outside HTTP/1.1.',
    '    http-request deny deny_status 400 if { path_reg -i (^|/)([.]|%2e)([.]|%2e)?(/|$)|%2f|%5c } || { path_sub \\\\ }',
    '    http-request deny deny_status 400 if { req.hdr_cnt(transfer-encoding) gt 0 } !{ req.ver 1.1 }',
    `    http-request deny deny_status 413 if { req.hdr_val(content-length) gt ${c.maxBodyBytes} }`,
    '    # The whole body (up to the buffer) must arrive within timeout http-request, before a server is picked: a slow body is a 408.',
    `    http-request wait-for-body time ${c.httpRequestTimeoutMs}ms`,
    '    use_backend agent if agent_path',
    '    use_backend user if user_path',
    '',
    'backend agent',
    ...backendCommon,
    ...servers(c.agentPool),
    '',
    'backend user',
    ...backendCommon,
    '    # The agent servers take user traffic only when every user server is down.',
    '    option allbackups',
    ...servers(c.userPool),
    ...servers(c.agentPool, ' backup'),
    '',
    'frontend stats',
    `    bind ${bind}:${c.metricsPort}`,
    '    http-request use-service prometheus-exporter if { path /metrics }',
    '    http-request return status 200 content-type text/plain string ok if { path /healthz }',
    '    stats enable',
    '    stats uri /stats',
    '    stats refresh 5s',
    '',
  ].join('\n');
}

export interface StartHaproxyOptions extends HaproxyPools {
  host?: string;
  /** 0 or absent: a free port. */
  port?: number;
  metricsPort?: number;
  limits?: { headersTimeoutMs?: number; requestTimeoutMs?: number; maxBodyBytes?: number };
  threads?: number;
  /** Where haproxy.cfg goes; default a temporary folder removed by stop(). */
  dir?: string;
  /** The executable (default `haproxy` on PATH, or RMMSCALE_HAPROXY). */
  binary?: string;
  readyTimeoutMs?: number;
  /** Test hook: how a free port is picked (default: bind port 0 on host, read it, close). */
  pickPort?: (host: string) => Promise<number>;
}

export interface RunningHaproxy {
  url: string;
  metricsUrl: string;
  pid: number;
  configPath: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function answers(url: string): Promise<boolean> {
  try {
    const r = await request(url, { headersTimeout: 500, bodyTimeout: 500 });
    await r.body.dump();
    return r.statusCode > 0;
  } catch {
    return false;
  }
}

/**
 * Run the system's haproxy with a rendered config, wait until both frontends answer, and hand
 * back its URLs, PID and stop(). A guard process (`sh`, reading a pipe from this process) kills
 * haproxy by PID if this process dies without calling stop(), so no haproxy outlives its stack.
 */
export async function startHaproxy(o: StartHaproxyOptions): Promise<RunningHaproxy> {
  const host = o.host ?? '127.0.0.1';
  // HAProxy cannot bind port 0 and report it, so free ports are picked here; one can be taken
  // between the pick and haproxy's bind. Then pick again (ports the caller chose are not retried).
  for (let attempt = 1; ; attempt++) {
    const pick = o.pickPort ?? freePort;
    const port = o.port || (await pick(host));
    const metricsPort = o.metricsPort || (await pick(host));
    try {
      return await startHaproxyOn(o, host, port, metricsPort);
    } catch (err) {
      const picked = !o.port || !o.metricsPort;
      if (!(err instanceof PortTakenError) || !picked || attempt >= PORT_ATTEMPTS) throw err;
    }
  }
}

const PORT_ATTEMPTS = 3;

/** haproxy could not bind a port it was given. */
class PortTakenError extends StackError {}

async function startHaproxyOn(o: StartHaproxyOptions, host: string, port: number, metricsPort: number): Promise<RunningHaproxy> {
  const binary = o.binary ?? process.env.RMMSCALE_HAPROXY ?? 'haproxy';
  const tempDir = o.dir ? null : mkdtempSync(join(tmpdir(), 'rmmscale-haproxy-'));
  const configPath = join(o.dir ?? tempDir!, 'haproxy.cfg');
  const requestMs = o.limits?.requestTimeoutMs ?? DEFAULT_LIMITS.requestTimeoutMs;
  writeFileSync(
    configPath,
    renderHaproxyConfig({
      agentPool: o.agentPool,
      userPool: o.userPool,
      names: o.names,
      host,
      port,
      metricsPort,
      maxBodyBytes: o.limits?.maxBodyBytes ?? DEFAULT_LIMITS.maxBodyBytes,
      connectTimeoutMs: HAPROXY_DEFAULTS.connectTimeoutMs,
      httpRequestTimeoutMs: o.limits?.headersTimeoutMs ?? DEFAULT_LIMITS.headersTimeoutMs,
      serverTimeoutMs: requestMs,
      clientTimeoutMs: HAPROXY_DEFAULTS.clientTimeoutMs,
      health: HAPROXY_DEFAULTS.health,
      maxConn: HAPROXY_DEFAULTS.maxConn,
      tunnelIdleMs: DEFAULT_TUNNELS.idleMs,
      threads: o.threads ?? null,
    }),
  );
  const child = spawn(binary, ['-db', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<{ code: number | null; signal: string | null; error?: Error }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
  });
  const removeDir = (): void => {
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  };
  const spawnFailed = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 50))]);
  if (spawnFailed?.error) {
    removeDir();
    const missing = (spawnFailed.error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new StackError(missing ? `--proxy haproxy: ${binary} is not installed (apt-get install haproxy), or set RMMSCALE_HAPROXY` : `--proxy haproxy: cannot run ${binary}: ${spawnFailed.error.message}`);
  }
  const pid = child.pid!;
  const guard = spawn('sh', ['-c', `read _; kill -TERM ${pid} 2>/dev/null`], { stdio: ['pipe', 'ignore', 'ignore'] });
  guard.stdin!.on('error', () => undefined);
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      guard.kill('SIGKILL');
      if (child.exitCode === null && child.signalCode === null) {
        const hard = setTimeout(() => child.kill('SIGKILL'), 3000);
        child.kill('SIGTERM');
        await exited;
        clearTimeout(hard);
      }
      removeDir();
    })());
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const statsBase = `http://${host.includes(':') ? `[${host}]` : host}:${metricsPort}`;
  const deadline = Date.now() + (o.readyTimeoutMs ?? 10_000);
  let dead: { code: number | null; signal: string | null } | null = null;
  void exited.then((e) => (dead = e));
  for (;;) {
    if (dead !== null) {
      await stop();
      const why = stderr.trim().split('\n').filter((l) => /ALERT|error/i.test(l)).slice(0, 3).join('; ') || stderr.trim().slice(0, 300);
      const message = `--proxy haproxy: ${binary} exited (${(dead as { code: number | null }).code ?? 'signal'}) at start: ${why}`;
      throw /cannot bind socket|Address already in use/i.test(stderr) ? new PortTakenError(message) : new StackError(message);
    }
    if ((await answers(`${statsBase}/healthz`)) && (await answers(`${url}/healthz`))) break;
    if (Date.now() > deadline) {
      await stop();
      throw new StackError(`--proxy haproxy: no answer on ${url} within ${o.readyTimeoutMs ?? 10_000} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, metricsUrl: `${statsBase}/metrics`, pid, configPath, child, stop };
}

/** Scrape HAProxy's Prometheus exporter: per-server request totals, and rates against `previous`. */
export async function scrapeHaproxy(metricsUrl: string, previous?: HaproxyScrape): Promise<HaproxyScrape> {
  const r = await request(metricsUrl, { headersTimeout: 5000, bodyTimeout: 5000 });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new StackError(`haproxy exporter ${metricsUrl} answered ${r.statusCode}`);
  return parseHaproxyMetrics(text, Date.now(), previous);
}
