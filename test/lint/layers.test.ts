import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/**
 * The import-layer rule of eslint.config.js, on code written for the test: a lower folder of src/
 * never imports a higher one (core, metrics < swarm, stack, analysis < scenario < run, k8s <
 * report, gate < cli). `npm test` runs the linter over the whole tree; this checks the rule itself.
 */
const eslint = new ESLint({ cwd: process.cwd() });

async function problems(file: string, code: string): Promise<string[]> {
  const [r] = await eslint.lintText(code, { filePath: file });
  return (r?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
}

describe('eslint: the layers of src/', () => {
  it.each([
    ['src/core/x.ts', "import { runScenario } from '../run/run.js';", 'src/core'],
    ['src/metrics/x.ts', "import type { Scenario } from '../scenario/types.js';", 'src/metrics'],
    ['src/swarm/transports/x.ts', "import { assemble } from '../../run/assemble.js';", 'src/swarm'],
    ['src/stack/relay/x.ts', "import { main } from '../../cli/main.js';", 'src/stack'],
    ['src/run/x.ts', "import { fmtPct } from '../report/format.js';", 'src/run'],
    ['src/gate/x.ts', "import { main } from '../cli/main.js';", 'src/gate'],
    ['src/k8s/x.ts', "import { fmtPct } from '../report/format.js';", 'src/k8s'],
  ])('%s importing a higher layer is an error', async (file, code, folder) => {
    const found = await problems(file, code);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(new RegExp(`^no-restricted-imports: '${code.split("'")[1]!.replace(/\./g, '\\.')}' import is restricted from being used by a pattern\\. ${folder} sits below src/`));
    expect(found[0]).toContain('move the shared code down a layer instead');
  });

  it.each([
    ['src/run/x.ts', "import { round } from '../core/units.js';\nimport { runSwarm } from '../swarm/coordinator.js';\nimport type { Scenario } from '../scenario/types.js';"],
    ['src/cli/x.ts', "import { renderMarkdown } from '../report/markdown.js';\nimport { runScenario } from '../run/run.js';"],
    ['src/stack/runtime/x.ts', "import { CapacityLimiter } from '../capacity.js';\nimport { round } from '../../core/units.js';"],
    ['test/x.ts', "import { main } from '../src/cli/main.js';"],
    ['src/k8s/x.ts', "import { parseScenario } from '../scenario/load.js';\nimport { isLoopbackHost } from '../core/loopback.js';"],
  ])('%s importing its own layer or lower is fine', async (file, code) => {
    expect(await problems(file, code)).toEqual([]);
  });

  it('no `any` in shipped code', async () => {
    expect(await problems('src/core/x.ts', 'export function f(x: any): number {\n  return x;\n}\n')).toEqual(['@typescript-eslint/no-explicit-any: Unexpected any. Specify a different type.']);
  });
});
