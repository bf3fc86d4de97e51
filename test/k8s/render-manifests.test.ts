import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ConfigMap, PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import yargs from 'yargs';
import { coordinationOf, runCommand } from '../../src/cli/commands/run.js';
import { COORDINATOR_PORT, RESULTS_DIR, shardScript, waitForShardsScript } from '../../src/k8s/k8s-commands.js';
import { parseShard } from '../../src/swarm/shard.js';
import { objectBaseName, parseImage, parseNamespace, parseShards } from '../../src/k8s/k8s-flags.js';
import { manifestsYaml, renderManifests, type RenderInput } from '../../src/k8s/render-manifests.js';
import { runCli } from '../helpers/spawn-cli.js';

/**
 * `rmmscale k8s render`: the objects are validated against the Kubernetes API schemas
 * (kubernetes-models, generated from the Kubernetes OpenAPI spec), read back from the YAML text
 * the command prints; and the pods' shell scripts are run for real under /bin/sh.
 */

const SCENARIO = `name: remote-ceiling
description: a search against a staging stack
stack:
  target: http://staging.example.com:8080
fleet:
  checkin: 30%/min
ceiling:
  start: 10000
  max: 60000
  stepFactor: 1.4
  precision: 0.1
  warmup: 5s
  measure: 10s
  maxSteps: 8
slo:
  p99: 1s
timeLimit: 10m
`;

function input(over: Partial<RenderInput> = {}): RenderInput {
  return { scenarioText: SCENARIO, scenarioFile: 'remote.yaml', shards: 3, image: 'registry.example.com/load/rmmscale:0.1.0', namespace: 'load', storageClass: null, accessMode: 'ReadWriteMany', ...over };
}

/** The model class of each kind rendered. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = { ConfigMap, PersistentVolumeClaim, Service, Job };

/** Every document of the printed YAML, validated by the model of its kind. */
function validatedDocs(yamlText: string): Array<Record<string, unknown>> {
  return parseAllDocuments(yamlText).map((d) => {
    expect(d.errors).toEqual([]);
    const obj = d.toJS() as Record<string, unknown>;
    const Model = MODELS[obj.kind as string];
    expect(Model, `a model for ${String(obj.kind)}`).toBeDefined();
    new Model(obj as never).validate();
    return obj;
  });
}

type Any = Record<string, any>;

describe('k8s render: the manifests', () => {
  it.each([1, 2, 3, 7])('%i shards: every object validates against the API schema, in apply order', (n) => {
    const docs = validatedDocs(manifestsYaml(renderManifests(input({ shards: n })))) as Any[];
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([
      'ConfigMap/rmmscale-remote-ceiling-scenario',
      'PersistentVolumeClaim/rmmscale-remote-ceiling-results',
      'Service/rmmscale-remote-ceiling-coordinator',
      'Job/rmmscale-remote-ceiling',
      'Job/rmmscale-remote-ceiling-merge',
    ]);
    for (const d of docs) expect(d.metadata.namespace).toBe('load');
    const [cm, pvc, svc, shards, merge] = docs;
    expect(cm.data['scenario.yaml']).toBe(SCENARIO);
    expect(pvc.spec.accessModes).toEqual(['ReadWriteMany']);
    expect(shards.spec).toMatchObject({ completionMode: 'Indexed', completions: n, parallelism: n, backoffLimit: 0, activeDeadlineSeconds: 600 + 900 });
    const pod = shards.spec.template.spec;
    // The Service selects exactly the shard pod of index 0: labels the pod template carries, plus the controller's index label.
    expect(svc.spec.selector).toEqual({ 'app.kubernetes.io/instance': 'rmmscale-remote-ceiling', 'app.kubernetes.io/component': 'shard', 'batch.kubernetes.io/job-completion-index': '0' });
    for (const [k, v] of Object.entries(svc.spec.selector)) if (k !== 'batch.kubernetes.io/job-completion-index') expect(shards.spec.template.metadata.labels[k]).toBe(v);
    expect(svc.spec.ports[0].port).toBe(pod.containers[0].ports[0].containerPort);
    const script: string = pod.containers[0].command[2];
    expect(script).toContain(`rmmscale run /scenario/scenario.yaml --shard \${JOB_COMPLETION_INDEX}/${n} --out /results/shard-\${JOB_COMPLETION_INDEX} --metrics-port 9464 --allow-remote $role`);
    expect(script).toContain('role="--coordinator-url http://rmmscale-remote-ceiling-coordinator.load.svc:7470"');
    expect(script).toContain('then role="--coordinator --coordinator-host 0.0.0.0 --coordinator-port 7470"; fi');
    // Kubernetes expands $(NAME) in commands itself: none may appear.
    for (const d of [shards, merge]) expect(JSON.stringify(d)).not.toMatch(/\$\(/);
    expect(pod.containers[0].env).toEqual([{ name: 'RMMSCALE_SECRET', valueFrom: { secretKeyRef: { name: 'rmmscale-stack', key: 'secret' } } }]);
    expect(pod.containers[0].resources.limits).toBeUndefined();
    const mergePod = merge.spec.template.spec;
    expect(mergePod.initContainers[0].command[2]).toContain(`while [ "$i" -lt ${n} ]`);
    expect(mergePod.containers[0].command[2]).toContain('rmmscale merge /results/shard-*/result.json --out /results/result.json');
    expect(mergePod.containers[0].readinessProbe.exec.command).toEqual(['test', '-f', '/results/result.json']);
    expect(mergePod.volumes).toEqual(pod.volumes);
  });

  it('the validator can fail: a broken Job is refused', () => {
    const docs = validatedDocs(manifestsYaml(renderManifests(input()))) as Any[];
    const job = docs[3];
    job.spec.parallelism = 'three';
    expect(() => new Job(job as never).validate()).toThrow(/parallelism must be integer/);
  });

  it('no namespace: none written, the coordinator by its short name; a storage class and ReadWriteOnce as asked; a scenario secret needs no Secret', () => {
    const withSecret = SCENARIO.replace('  checkin: 30%/min', '  checkin: 30%/min\n  secret: s3cret-for-test');
    const docs = validatedDocs(manifestsYaml(renderManifests(input({ namespace: null, storageClass: 'nfs-client', accessMode: 'ReadWriteOnce', scenarioText: withSecret })))) as Any[];
    for (const d of docs) expect(d.metadata.namespace).toBeUndefined();
    expect(docs[1].spec).toMatchObject({ accessModes: ['ReadWriteOnce'], storageClassName: 'nfs-client' });
    expect(docs[3].spec.template.spec.containers[0].command[2]).toContain('--coordinator-url http://rmmscale-remote-ceiling-coordinator:7470"');
    expect(docs[3].spec.template.spec.containers[0].env).toEqual([]);
  });

  it('refuses a scenario that starts its own stack, or targets loopback, naming the file and line', () => {
    const own = 'name: own\nstack:\n  topology: split3\nfleet:\n  checkin: 30%/min\nstages:\n  - { duration: 10s, agents: 100 }\n';
    expect(() => renderManifests(input({ scenarioText: own, scenarioFile: 'own.yaml' }))).toThrow(
      'own.yaml:3 stack.topology: expected stack.target (an external stack every shard pod loads) for k8s render, got topology "split3" (each pod would start its own stack)',
    );
    const loop = SCENARIO.replace('http://staging.example.com:8080', 'http://127.0.0.1:8080');
    expect(() => renderManifests(input({ scenarioText: loop }))).toThrow('remote.yaml:4 stack.target: expected an address the pods can reach, got "http://127.0.0.1:8080" (loopback is each pod itself)');
    expect(() => renderManifests(input({ scenarioText: SCENARIO.replace('p99: 1s', 'p99: fast') }))).toThrow(/^remote\.yaml:16 slo\.p99/);
  });
});

describe('k8s render: the shipped example', () => {
  it('examples/k8s-staging.yaml renders and validates; names are DNS-1123 labels short enough for pod names', () => {
    const text = readFileSync(new URL('../../examples/k8s-staging.yaml', import.meta.url), 'utf8');
    const docs = validatedDocs(manifestsYaml(renderManifests(input({ scenarioText: text, scenarioFile: 'examples/k8s-staging.yaml', shards: 4 })))) as Any[];
    expect(docs.map((d) => d.metadata.name)).toEqual(['rmmscale-staging-50k-scenario', 'rmmscale-staging-50k-results', 'rmmscale-staging-50k-coordinator', 'rmmscale-staging-50k', 'rmmscale-staging-50k-merge']);
    expect(docs[3].spec.activeDeadlineSeconds).toBe(20 * 60 + 900);
  });

  it.each([
    ['My.Scenario_v2', 'rmmscale-my-scenario-v2'],
    ['a-very-long-scenario-name-that-goes-on-and-on-and-on', 'rmmscale-a-very-long-scenario-name-that'],
    ['___', 'rmmscale'],
  ])('scenario %s → objects named %s…', (name, base) => {
    expect(objectBaseName(name)).toBe(base);
    expect(`${base}-coordinator`.length).toBeLessThanOrEqual(63);
  });
});

describe('k8s render: the flags', () => {
  it.each([
    ['0', '--shards: expected a whole number of shards from 1 to 1000, got "0"'],
    ['1.5', '--shards: expected a whole number of shards from 1 to 1000, got "1.5"'],
    ['1001', '--shards: expected a whole number of shards from 1 to 1000, got "1001"'],
    ['four', '--shards: expected a whole number of shards from 1 to 1000, got "four"'],
  ])('--shards %s', (v, msg) => expect(() => parseShards(v)).toThrow(msg));

  it('--shards takes 1 to 1000', () => {
    expect([parseShards('1'), parseShards('7'), parseShards('1000')]).toEqual([1, 7, 1000]);
  });

  it.each(['Load', 'load_test', '-load', 'load-', 'a'.repeat(64), ''])('--namespace %j is refused', (v) => {
    expect(() => parseNamespace(v)).toThrow(`--namespace: expected a Kubernetes namespace: at most 63 lower-case letters, digits or "-", starting and ending with a letter or digit, got ${JSON.stringify(v)}`);
  });

  it('--namespace takes DNS-1123 labels', () => {
    expect([parseNamespace('load'), parseNamespace('load-test-2'), parseNamespace('a'.repeat(63))]).toEqual(['load', 'load-test-2', 'a'.repeat(63)]);
  });

  it.each(['rmmscale', 'rmmscale:0.1.0', 'registry.example.com:5000/team/rmmscale:0.1.0', 'ghcr.io/acme/load/rmmscale@sha256:' + 'a'.repeat(64), 'localhost/rmmscale:dev_1.2', '[::1]:5000/rmmscale:x'])('--image %s is an image reference', (v) => {
    expect(parseImage(v)).toBe(v);
  });

  it.each(['Rmmscale:1', 'rmmscale:', 'rmmscale:-x', 'registry.example.com/rmmscale@sha256:abc', 'a b', 'https://registry/rmmscale'])('--image %s is refused', (v) => {
    expect(() => parseImage(v)).toThrow(/^--image: expected an image reference like registry\.example\.com\/team\/rmmscale:0\.1\.0/);
  });
});

describe('k8s render: the pods\' scripts under /bin/sh', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rmmscale-k8s-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A script with /results moved into the test's folder. */
  const here = (script: string): string => script.split(`${RESULTS_DIR}/`).join(`${dir}/results/`);

  /** A fake `rmmscale` on PATH that records its arguments and exits with $FAKE_EXIT. */
  function fakeRmmscale(): string {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    mkdirSync(join(dir, 'results'));
    writeFileSync(join(bin, 'rmmscale'), `#!/bin/sh\necho "$@" > "${dir}/args"\nexit "$FAKE_EXIT"\n`);
    chmodSync(join(bin, 'rmmscale'), 0o755);
    return bin;
  }

  it.each([
    ['0', 0, 0, true],
    ['1', 4, 0, false], // untrustworthy: a result was written, the merged result judges
    ['2', 5, 0, false],
    ['1', 2, 2, false], // bad input: no result, the pod fails
  ])('index %s, rmmscale exits %i: the pod exits %i, the exit code is kept', (index, code, podExit, coordinator) => {
    const bin = fakeRmmscale();
    const script = here(shardScript({ shards: 3, coordinatorUrl: 'http://c:7470', allowRemote: true }));
    const r = spawnSync('/bin/sh', ['-c', script], { env: { PATH: `${bin}:/usr/bin:/bin`, JOB_COMPLETION_INDEX: index, FAKE_EXIT: String(code) }, encoding: 'utf8' });
    expect(r.status).toBe(podExit);
    expect(readFileSync(join(dir, 'args'), 'utf8').trim()).toBe(
      `run /scenario/scenario.yaml --shard ${index}/3 --out ${dir}/results/shard-${index} --metrics-port 9464 --allow-remote ${coordinator ? '--coordinator --coordinator-host 0.0.0.0 --coordinator-port 7470' : '--coordinator-url http://c:7470'}`,
    );
    expect(readFileSync(join(dir, 'results', `shard-${index}.exit`), 'utf8')).toBe(`${code}\n`);
  });

  it.each(['0', '2'])('index %s: the rendered shard command is accepted by rmmscale run\'s own parser, as the role it must take', async (index) => {
    const bin = fakeRmmscale();
    const rendered = renderManifests(input()).find((d) => (d as Any).kind === 'Job' && (d as Any).spec.completionMode === 'Indexed') as Any;
    const script = here(rendered.spec.template.spec.containers[0].command[2] as string);
    const r = spawnSync('/bin/sh', ['-c', script], { env: { PATH: `${bin}:/usr/bin:/bin`, JOB_COMPLETION_INDEX: index, FAKE_EXIT: '0' }, encoding: 'utf8' });
    expect(r.status).toBe(0);
    const args = readFileSync(join(dir, 'args'), 'utf8').trim().split(/\s+/);
    // yargs with the run command's own builder, strict as bin/rmmscale is; the handler is not run.
    let parsed: Record<string, unknown> | null = null;
    await yargs(args)
      .strict()
      .exitProcess(false)
      .fail((msg) => {
        throw new Error(msg);
      })
      .command({ ...runCommand, handler: (argv) => void (parsed = argv) })
      .parseAsync();
    const a = parsed as unknown as Record<string, unknown>;
    expect(a.shard).toBe(`${index}/3`);
    const shard = parseShard('--shard', a.shard);
    const role = coordinationOf(
      { scenario: String(a.scenario), allowRemote: a.allowRemote === true, coordinator: a.coordinator === true, coordinatorUrl: a['coordinator-url'] as string | undefined, coordinatorPort: a['coordinator-port'] as number | undefined, coordinatorHost: a['coordinator-host'] as string | undefined },
      shard,
      true,
    );
    if (index === '0') expect(role).toEqual({ role: 'coordinator', host: '0.0.0.0', port: COORDINATOR_PORT });
    else expect(role).toEqual({ role: 'follower', url: 'http://rmmscale-remote-ceiling-coordinator.load.svc:7470' });
  });

  it('the merge waits for every shard, and gives up at once on a shard without a result', () => {
    mkdirSync(join(dir, 'results'));
    for (const [i, code] of [[0, 0], [1, 4], [2, 3]]) writeFileSync(join(dir, 'results', `shard-${i}.exit`), `${code}\n`);
    const ok = spawnSync('/bin/sh', ['-c', here(waitForShardsScript(3))], { encoding: 'utf8', timeout: 10_000 });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe('all 3 shards wrote their results\n');
    writeFileSync(join(dir, 'results', 'shard-1.exit'), '2\n');
    const bad = spawnSync('/bin/sh', ['-c', here(waitForShardsScript(3))], { encoding: 'utf8', timeout: 10_000 });
    expect(bad.status).toBe(1);
    expect(bad.stdout).toBe('shard 1 exited 2 without a result\n');
  });
});

describe('rmmscale k8s render (the CLI)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rmmscale-k8s-cli-'));
    writeFileSync(join(dir, 'remote.yaml'), SCENARIO);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('prints manifests that validate', async () => {
    const r = await runCli(['k8s', 'render', join(dir, 'remote.yaml'), '--shards', '2', '--image', 'rmmscale:test', '--namespace', 'load']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const docs = validatedDocs(r.stdout) as Any[];
    expect(docs).toHaveLength(5);
    expect(docs[3].spec.template.spec.containers[0].image).toBe('rmmscale:test');
  });

  it.each([
    [['--shards', '0'], 'rmmscale: --shards: expected a whole number of shards from 1 to 1000, got "0"'],
    [[], 'rmmscale: --shards: expected a whole number of shards from 1 to 1000, got nothing'],
    [['--shards', '2', '--namespace', 'Load'], 'rmmscale: --namespace: expected a Kubernetes namespace: at most 63 lower-case letters, digits or "-", starting and ending with a letter or digit, got "Load"'],
    [['--shards', '2', '--access-mode', 'RWX'], 'rmmscale: --access-mode: expected ReadWriteMany or ReadWriteOnce, got "RWX"'],
  ])('bad flags %j: one line, exit 2', async (flags, line) => {
    const r = await runCli(['k8s', 'render', join(dir, 'remote.yaml'), ...flags]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`${line}\n`);
  });
});
