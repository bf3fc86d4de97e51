import { describe, expect, it } from 'vitest';
import { haproxyName, renderHaproxyConfig, type HaproxyConfig } from '../../src/stack/proxy/haproxy.js';
import { parseHaproxyMetrics } from '../../src/stack/proxy/haproxy-metrics.js';

const cfg: HaproxyConfig = {
  agentPool: ['http://127.0.0.1:7001', 'http://127.0.0.1:7002'],
  userPool: ['http://127.0.0.1:7003'],
  names: { 'http://127.0.0.1:7001': 'web-agent-1', 'http://127.0.0.1:7002': 'web-agent-2', 'http://127.0.0.1:7003': 'web user 1' },
  host: '127.0.0.1',
  port: 7000,
  metricsPort: 7100,
  maxBodyBytes: 1048576,
  connectTimeoutMs: 1000,
  httpRequestTimeoutMs: 10000,
  serverTimeoutMs: 30000,
  clientTimeoutMs: 30000,
  health: { intervalMs: 250, fall: 2, rise: 1 },
  maxConn: 8000,
  tunnelIdleMs: 90000,
  threads: null,
};

/** The lines of one section (`backend user`), indented lines only, trimmed. */
function section(text: string, header: string): string[] {
  const lines = text.split('\n');
  const at = lines.indexOf(header);
  expect(at, header).toBeGreaterThanOrEqual(0);
  const out: string[] = [];
  for (const l of lines.slice(at + 1)) {
    if (!l.startsWith('    ')) break;
    if (!l.trim().startsWith('#')) out.push(l.trim());
  }
  return out;
}

describe('renderHaproxyConfig: the built-in proxy in HAProxy terms', () => {
  const text = renderHaproxyConfig(cfg);

  it('routes /agent/ and /api/, denies admin paths and oversized bodies', () => {
    expect(section(text, 'frontend rmmscale')).toEqual([
      'bind 127.0.0.1:7000',
      'option forwardfor',
      'http-request set-header X-Forwarded-Proto http',
      'acl admin_path path /metrics /healthz',
      'acl admin_path path_beg /admin/',
      'acl agent_path path_beg /agent/',
      'acl user_path path_beg /api/',
      'http-request deny deny_status 404 if admin_path',
      'http-request deny deny_status 404 if !agent_path !user_path',
      'http-request deny deny_status 400 if { path_reg -i (^|/)([.]|%2e)([.]|%2e)?(/|$)|%2f|%5c } || { path_sub \\\\ }',
      'http-request deny deny_status 400 if { req.hdr_cnt(transfer-encoding) gt 0 } !{ req.ver 1.1 }',
      'http-request deny deny_status 413 if { req.hdr_val(content-length) gt 1048576 }',
      'http-request wait-for-body time 10000ms',
      'use_backend agent if agent_path',
      'use_backend user if user_path',
    ]);
  });

  it('balances leastconn with health checks; agent servers back up the user backend', () => {
    const common = ['balance leastconn', 'option httpchk GET /healthz', 'http-check expect status 200', 'http-response set-header X-Served-By %[srv_name]'];
    expect(section(text, 'backend agent')).toEqual([...common, 'server web-agent-1 127.0.0.1:7001 check', 'server web-agent-2 127.0.0.1:7002 check']);
    expect(section(text, 'backend user')).toEqual([
      ...common,
      'option allbackups',
      'server web_user_1 127.0.0.1:7003 check',
      'server web-agent-1 127.0.0.1:7001 check backup',
      'server web-agent-2 127.0.0.1:7002 check backup',
    ]);
  });

  it('retries only connection failures, checks every 250 ms, ejects on the first layer-4 error', () => {
    const d = section(text, 'defaults');
    expect(d).toContain('retries 3');
    expect(d).toContain('retry-on conn-failure');
    expect(d).toContain('timeout server 30000ms');
    expect(d).toContain('timeout tunnel 90000ms');
    expect(d).toContain('default-server inter 250ms fastinter 250ms downinter 250ms fall 2 rise 1 observe layer4 error-limit 1 on-error mark-down');
  });

  it('serves the Prometheus exporter on its own port', () => {
    expect(section(text, 'frontend stats').slice(0, 3)).toEqual([
      'bind 127.0.0.1:7100',
      'http-request use-service prometheus-exporter if { path /metrics }',
      'http-request return status 200 content-type text/plain string ok if { path /healthz }',
    ]);
    expect(section(text, 'global')).toEqual(['maxconn 8000']);
    expect(section(renderHaproxyConfig({ ...cfg, threads: 1 }), 'global')).toEqual(['maxconn 8000', 'nbthread 1']);
  });

  it('makes node names valid server names', () => {
    expect([haproxyName('web-agent-1'), haproxyName('a b/c'), haproxyName('x.y:z_1')]).toEqual(['web-agent-1', 'a_b_c', 'x.y:z_1']);
  });
});

describe('parseHaproxyMetrics', () => {
  const text = [
    '# HELP haproxy_server_http_responses_total Total number of HTTP responses.',
    '# TYPE haproxy_server_http_responses_total counter',
    'haproxy_server_http_responses_total{proxy="agent",server="web-agent-1",code="2xx"} 40',
    'haproxy_server_http_responses_total{proxy="agent",server="web-agent-1",code="5xx"} 2',
    'haproxy_server_http_responses_total{proxy="agent",server="web-agent-2",code="2xx"} 38',
    'haproxy_server_http_responses_total{proxy="user",server="web-agent-1",code="2xx"} 0',
    'haproxy_server_connection_errors_total{proxy="agent",server="web-agent-2"} 3',
    'haproxy_server_current_sessions{proxy="agent",server="web-agent-1"} 5',
    'haproxy_server_status{proxy="agent",server="web-agent-1",state="DOWN"} 0',
    'haproxy_server_status{proxy="agent",server="web-agent-1",state="UP"} 1',
    'haproxy_server_status{proxy="agent",server="web-agent-2",state="UP"} 0',
    'haproxy_server_status{proxy="agent",server="web-agent-2",state="DOWN"} 1',
    'haproxy_backend_http_requests_total{proxy="agent"} 80',
  ].join('\n');

  it('sums response classes into per-server request counts', () => {
    const s = parseHaproxyMetrics(text, 10_000);
    expect(s.servers.map((x) => [x.backend, x.server, x.requests, x.connectionErrors, x.currentSessions, x.up])).toEqual([
      ['agent', 'web-agent-1', 42, 0, 5, true],
      ['agent', 'web-agent-2', 38, 3, 0, false],
      ['user', 'web-agent-1', 0, 0, 0, false],
    ]);
    expect(s.servers[0].responsesByClass).toEqual({ '2xx': 40, '5xx': 2 });
    expect(s.servers[0].ratePerSec).toBeNull();
  });

  it('gives per-server rates against a previous scrape', () => {
    const prev = parseHaproxyMetrics(text.replace('} 40', '} 20').replace('} 38', '} 8'), 8_000);
    const now = parseHaproxyMetrics(text, 10_000, prev);
    expect(now.servers.map((x) => x.ratePerSec)).toEqual([10, 15, 0]);
  });
});
