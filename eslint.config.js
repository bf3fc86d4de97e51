// ESLint for `npm test`: the layers of src/ (a lower folder never imports a higher one), and no
// `any` in the code we ship. Layers, lowest first:
//   core, metrics  <  swarm, stack, analysis  <  scenario  <  run, k8s  <  report, gate  <  cli
// A folder may import its own layer and the layers below it. bench/ and test/ may import anything.
import tseslint from 'typescript-eslint';

const LAYERS = [['core', 'metrics'], ['swarm', 'stack', 'analysis'], ['scenario'], ['run', 'k8s'], ['report', 'gate'], ['cli']];

/** The folders a folder of layer `i` must not import: every folder of a higher layer. */
function higherThan(i) {
  return LAYERS.slice(i + 1).flat();
}

const layerRules = LAYERS.flatMap((folders, i) => {
  const banned = higherThan(i);
  if (banned.length === 0) return [];
  return folders.map((folder) => ({
    files: [`src/${folder}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              // A relative import that climbs out of src/<folder> into a higher folder.
              regex: `^(\\.\\./)+(${banned.join('|')})(/|$)`,
              message: `src/${folder} sits below ${banned.map((b) => `src/${b}`).join(', ')} (core, metrics < swarm, stack, analysis < scenario < run, k8s < report, gate < cli): move the shared code down a layer instead.`,
            },
          ],
        },
      ],
    },
  }));
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'reports/**', 'examples/**', 'baselines/**'] },
  {
    files: ['src/**/*.ts', 'bench/**/*.ts', 'test/**/*.ts', 'vitest.config.ts'],
    languageOptions: { parser: tseslint.parser, ecmaVersion: 2023, sourceType: 'module' },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {},
  },
  {
    files: ['src/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'error' },
  },
  ...layerRules,
);
