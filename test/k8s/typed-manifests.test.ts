import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { renderManifests, type K8sObject } from '../../src/k8s/render-manifests.js';

/**
 * The schema validators of kubernetes-models check types and required fields, but let an unknown
 * field through (the API server would refuse or drop it: a typo like `publishNotReadyAddress`).
 * So the rendered objects are also type-checked, as object literals, against the models' own
 * TypeScript interfaces, where an unknown field at any depth is an excess-property error.
 */

const INTERFACES: Record<string, { module: string; name: string }> = {
  ConfigMap: { module: 'kubernetes-models/v1/ConfigMap', name: 'IConfigMap' },
  PersistentVolumeClaim: { module: 'kubernetes-models/v1/PersistentVolumeClaim', name: 'IPersistentVolumeClaim' },
  Service: { module: 'kubernetes-models/v1/Service', name: 'IService' },
  Job: { module: 'kubernetes-models/batch/v1/Job', name: 'IJob' },
};

/** Type errors of `const oI: IKind = <object>` for each object, one line each. */
function typeErrors(objects: readonly unknown[]): string[] {
  const file = fileURLToPath(new URL('./__rendered__.ts', import.meta.url));
  const lines: string[] = [];
  const kinds = new Set<string>();
  objects.forEach((o, i) => {
    const kind = (o as K8sObject).kind;
    kinds.add(kind);
    lines.push(`export const o${i}: ${INTERFACES[kind].name} = ${JSON.stringify(o, null, 1)};`);
  });
  const source = [...[...kinds].map((k) => `import type { ${INTERFACES[k].name} } from '${INTERFACES[k].module}';`), ...lines].join('\n');
  const options: ts.CompilerOptions = { strict: true, noEmit: true, skipLibCheck: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, types: [] };
  const host = ts.createCompilerHost(options);
  const read = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) => (name === file ? ts.createSourceFile(name, source, lang) : read(name, lang, ...rest));
  host.fileExists = ((exists) => (name: string) => name === file || exists(name))(host.fileExists.bind(host));
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' '));
}

const SCENARIO = 'name: typed\nstack:\n  target: http://staging.example.com:8080\nfleet:\n  checkin: 30%/min\nstages:\n  - { duration: 30s, agents: 1000 }\n';

describe('k8s render: every field is one the Kubernetes API knows', () => {
  it('the rendered objects type-check against the kubernetes-models interfaces', () => {
    const objects = renderManifests({ scenarioText: SCENARIO, scenarioFile: 'typed.yaml', shards: 3, image: 'rmmscale:test', namespace: 'load', storageClass: 'nfs', accessMode: 'ReadWriteMany' });
    expect(typeErrors(objects)).toEqual([]);
  });

  it('the check can fail: an unknown field deep in a pod template is an error', () => {
    const objects = renderManifests({ scenarioText: SCENARIO, scenarioFile: 'typed.yaml', shards: 2, image: 'rmmscale:test', namespace: null, storageClass: null, accessMode: 'ReadWriteOnce' });
    const job = structuredClone(objects[3]) as K8sObject & { spec: { template: { spec: { containers: Array<Record<string, unknown>> } } } };
    job.spec.template.spec.containers[0].restartPolicyTypo = 'Never';
    const errors = typeErrors([job]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^Object literal may only specify known properties, and '"restartPolicyTypo"' does not exist in type 'IContainer'\.$/);
  });
});
