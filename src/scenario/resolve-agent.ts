import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { RmmscaleError, ValidationError } from '../core/errors.js';
import { checkProtocol, loadProtocolFile } from '../swarm/protocol/load-protocol.js';
import type { ProtocolSpec } from '../swarm/protocol/types.js';
import { formatPath, type Problems, type Segment } from './resolve-scenario.js';

/**
 * A scenario's `agent:`: a protocol file relative to the scenario's folder (its own problems are
 * listed under the scenario's line, `agent: /abs/p.yaml:14 flows[0]…`), or a protocol written
 * inline (its problems at their own lines, `agent.flows[0].steps[1].body: …`). `agentVars` fills
 * the protocol's declared variables, as `--var` does for `rmmscale swarm`; `rmmscale run --var`
 * (`overrides`) wins over it, and a problem with one of those is reported as `--var`'s.
 */
export function resolveAgent(
  raw: unknown,
  rawVars: unknown,
  p: Problems,
  baseDir: string,
  transport: 'http' | 'ws',
  overrides: ReadonlyMap<string, string> = new Map(),
): ProtocolSpec | null {
  const spec = protocolOf(raw, rawVars, p, baseDir, overrides);
  if (spec && (spec.doc.tunnel !== undefined) !== (transport === 'ws')) {
    p.expectedWords(['agent'], `a protocol with ${transport === 'ws' ? 'tunnel:' : 'flows:'} for fleet.transport ${transport}`, `${spec.name}, which has ${spec.doc.tunnel ? 'a tunnel' : 'flows'}`);
  }
  return spec;
}

function protocolOf(raw: unknown, rawVars: unknown, p: Problems, baseDir: string, overrides: ReadonlyMap<string, string>): ProtocolSpec | null {
  if (raw === undefined) {
    if (rawVars !== undefined) p.expected(['agentVars'], 'agentVars only with agent: (a protocol file or an inline protocol)', rawVars);
    return null;
  }
  const vars = new Map<string, string>();
  if (rawVars !== null && typeof rawVars === 'object' && !Array.isArray(rawVars)) {
    for (const [k, v] of Object.entries(rawVars)) if (typeof v === 'string') vars.set(k, v);
  }
  for (const [k, v] of overrides) vars.set(k, v);
  // A variable problem names the scenario's agentVars, unless the value came from `run --var`.
  const varLine = (line: string): string => {
    const flag = [...overrides].some(([k, v]) => line.endsWith(`got ${JSON.stringify(`${k}=${v}`)}`));
    return flag ? line : line.replace(/^--var:/, 'agentVars:');
  };
  const at: Segment[] = ['agent'];
  if (typeof raw === 'string') {
    const abs = resolve(baseDir, raw);
    if (!existsSync(abs)) {
      p.expectedWords(at, 'a readable protocol file', `${JSON.stringify(raw)} (${abs} does not exist)`);
      return null;
    }
    try {
      return loadProtocolFile(abs, [...vars].map(([k, v]) => `${k}=${v}`), 'agent');
    } catch (err) {
      if (err instanceof ValidationError) for (const line of err.problems) p.add(at, `${formatPath(at)}: ${varLine(line)}`);
      else if (err instanceof RmmscaleError) p.add(at, `${formatPath(at)}: ${err.message}`);
      else throw err;
      return null;
    }
  }
  const check = checkProtocol(raw, null, baseDir, vars);
  for (const pr of check.problems) p.add([...at, ...pr.at], `${formatPath([...at, ...pr.at])}: ${pr.detail}`);
  for (const line of check.flagProblems) p.add(['agentVars'], varLine(line));
  return check.spec;
}
