import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../core/errors.js';
import { resolveScenario } from './resolve-scenario.js';
import type { Scenario } from './types.js';
import { parseYamlChecked } from './yaml-checked.js';

/**
 * Scenario files: YAML, checked against schemas/scenario.schema.json (the same file editors use
 * for completion), then for what a schema cannot say (units, exactly one of stages and ceiling,
 * topology names, fleet sizes against stages). Every problem is collected and reported on its own
 * line with the file, the line and the path, then all of them are thrown as one ValidationError:
 *
 *   scenarios/x.yaml:14 stages[2].rate: expected "N/s" or "N%/min", got "fast"
 *
 * Schema problems take their wording from the schema (`errorMessage`, which editors show too);
 * semantic ones (src/scenario/resolve-scenario.ts) from the shared unit parsers. A path that already has a
 * schema problem gets no second, semantic one (src/scenario/yaml-checked.ts, shared with mapping files).
 */

// ---------------------------------------------------------------------------------------------
// Entry points

/**
 * Read, validate and resolve a scenario file; throws ValidationError listing every problem.
 * `agentVars` (`rmmscale run --var`) override the scenario's own.
 */
export function loadScenario(file: string, agentVars: ReadonlyMap<string, string> = new Map()): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError('SCENARIO', file, `a readable scenario file (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  return parseScenario(text, file, agentVars);
}

/** Validate and resolve scenario text; `file` names it in messages and anchors relative paths. */
export function parseScenario(text: string, file: string, agentVars: ReadonlyMap<string, string> = new Map()): Scenario {
  return parseYamlChecked(text, file, 'scenario', (data, p) => resolveScenario(data, p, file, agentVars));
}
