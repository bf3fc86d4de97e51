import { isMap, isNode, isScalar, LineCounter, parseDocument, stringify } from 'yaml';
import { ValidationError } from '../core/errors.js';
import { isLoopbackHost } from '../core/loopback.js';
import { parseScenario } from '../scenario/load.js';
import type { Scenario } from '../scenario/types.js';
import { COORDINATOR_PORT, MERGE_HOLD_SEC, MERGED_RESULT, mergeScript, RESULTS_DIR, SCENARIO_DIR, SCENARIO_KEY, shardScript, waitForShardsScript } from './k8s-commands.js';
import { objectBaseName, type AccessMode } from './k8s-flags.js';

/**
 * `rmmscale k8s render`: a scenario as Kubernetes objects, in the order `kubectl apply` wants them:
 *
 *   ConfigMap  NAME-scenario     the scenario file, mounted read-only at /scenario in every pod
 *   PVC        NAME-results      one volume every shard writes its result to, and the merge reads
 *   Service    NAME-coordinator  headless, selecting only the pod of completion index 0
 *   Job        NAME              Indexed, n completions, n at once: pod i runs shard i/n
 *   Job        NAME-merge        waits for n results on the volume, merges them, holds the merged
 *                                result for collection (Ready once it exists)
 *
 * The Service picks index 0 by the label the Job controller puts on each pod of an Indexed Job,
 * `batch.kubernetes.io/job-completion-index` (Kubernetes 1.28 and later), together with this
 * render's own instance and component labels. `publishNotReadyAddresses` gives the coordinator a
 * DNS name as soon as its pod has an address. The commands the pods run are in k8s-commands.ts.
 */

export interface RenderInput {
  /** The scenario file's text, as it goes into the ConfigMap, and its name for messages. */
  scenarioText: string;
  scenarioFile: string;
  shards: number;
  image: string;
  /** null: no namespace in the objects (`kubectl apply -n NS` decides). */
  namespace: string | null;
  storageClass: string | null;
  accessMode: AccessMode;
}

/** Kubernetes objects as plain data (validated against the API schemas in the tests). */
export type K8sObject = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels: Record<string, string> } };

const INDEX_LABEL = 'batch.kubernetes.io/job-completion-index';
/** Beyond the scenario's own time limit: image pulls, scheduling, the start barrier. */
const DEADLINE_MARGIN_SEC = 900;
const UID = 1000; // the `node` user of the node:20-slim image (Dockerfile)

export function renderManifests(input: RenderInput): K8sObject[] {
  const sc = clusterScenario(input.scenarioText, input.scenarioFile);
  const base = objectBaseName(sc.name);
  const ns = input.namespace === null ? {} : { namespace: input.namespace };
  const labels = (component: string): Record<string, string> => ({ 'app.kubernetes.io/name': 'rmmscale', 'app.kubernetes.io/instance': base, 'app.kubernetes.io/component': component });
  const names = { config: `${base}-scenario`, results: `${base}-results`, service: `${base}-coordinator`, shards: base, merge: `${base}-merge` };
  const deadlineSec = Math.ceil(sc.timeLimitMs / 1000) + DEADLINE_MARGIN_SEC;
  const coordinatorUrl = `http://${names.service}${input.namespace === null ? '' : `.${input.namespace}.svc`}:${COORDINATOR_PORT}`;
  const targets = (sc.stack.target ?? '').split(',').map((t) => new URL(t.trim()).hostname);

  const secretEnv =
    sc.fleet.secret === null ? [{ name: 'RMMSCALE_SECRET', valueFrom: { secretKeyRef: { name: 'rmmscale-stack', key: 'secret' } } }] : [];
  const podSecurity = { runAsNonRoot: true, runAsUser: UID, runAsGroup: UID, fsGroup: UID };
  const containerSecurity = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };
  const volumes = [
    { name: 'scenario', configMap: { name: names.config } },
    { name: 'results', persistentVolumeClaim: { claimName: names.results } },
  ];
  const mounts = [
    { name: 'scenario', mountPath: SCENARIO_DIR, readOnly: true },
    { name: 'results', mountPath: RESULTS_DIR },
  ];

  const configMap: K8sObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: names.config, ...ns, labels: labels('scenario') }, data: { [SCENARIO_KEY]: input.scenarioText } };
  const pvc: K8sObject = {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: names.results, ...ns, labels: labels('results') },
    spec: { accessModes: [input.accessMode], resources: { requests: { storage: '1Gi' } }, ...(input.storageClass === null ? {} : { storageClassName: input.storageClass }) },
  };
  const service: K8sObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: names.service, ...ns, labels: labels('coordinator') },
    spec: {
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: { 'app.kubernetes.io/instance': base, 'app.kubernetes.io/component': 'shard', [INDEX_LABEL]: '0' },
      ports: [{ name: 'coordinator', port: COORDINATOR_PORT, targetPort: COORDINATOR_PORT, protocol: 'TCP' }],
    },
  };
  const shardJob: K8sObject = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: names.shards, ...ns, labels: labels('shard') },
    spec: {
      completionMode: 'Indexed',
      completions: input.shards,
      parallelism: input.shards,
      // A shard started again would send its schedule late: a failed shard fails the run instead.
      backoffLimit: 0,
      activeDeadlineSeconds: deadlineSec,
      template: {
        metadata: { labels: labels('shard') },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          securityContext: podSecurity,
          // One shard per machine where the cluster has enough of them.
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: labels('shard') } }],
          containers: [
            {
              name: 'shard',
              image: input.image,
              command: ['/bin/sh', '-c', shardScript({ shards: input.shards, coordinatorUrl, allowRemote: targets.some((h) => !isLoopbackHost(h)) })],
              env: secretEnv,
              ports: [{ name: 'coordinator', containerPort: COORDINATOR_PORT, protocol: 'TCP' }],
              // No CPU limit: a throttled generator sends late and its windows turn untrustworthy.
              resources: { requests: { cpu: '1', memory: '1Gi' } },
              securityContext: containerSecurity,
              volumeMounts: mounts,
            },
          ],
          volumes,
        },
      },
    },
  };
  const mergeJob: K8sObject = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: names.merge, ...ns, labels: labels('merge') },
    spec: {
      completions: 1,
      parallelism: 1,
      backoffLimit: 0,
      activeDeadlineSeconds: deadlineSec + MERGE_HOLD_SEC,
      template: {
        metadata: { labels: labels('merge') },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          securityContext: podSecurity,
          initContainers: [
            { name: 'wait-for-shards', image: input.image, command: ['/bin/sh', '-c', waitForShardsScript(input.shards)], securityContext: containerSecurity, volumeMounts: mounts },
          ],
          containers: [
            {
              name: 'merge',
              image: input.image,
              command: ['/bin/sh', '-c', mergeScript()],
              readinessProbe: { exec: { command: ['test', '-f', MERGED_RESULT] }, periodSeconds: 5 },
              resources: { requests: { cpu: '100m', memory: '256Mi' } },
              securityContext: containerSecurity,
              volumeMounts: mounts,
            },
          ],
          volumes,
        },
      },
    },
  };
  return [configMap, pvc, service, shardJob, mergeJob];
}

/** Objects as one YAML stream (`---` between documents), as `kubectl apply -f -` reads it. */
export function manifestsYaml(objects: readonly K8sObject[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');
}

/**
 * The scenario, validated as `rmmscale run` would, and fit for a cluster: its stack must be an
 * external `target:` the pods can reach (a stack each shard started for itself would be n stacks,
 * and a loopback target is the pod itself).
 */
function clusterScenario(text: string, file: string): Scenario {
  const sc = parseScenario(text, file);
  if (sc.stack.target === null) {
    throw new ValidationError([`${file}:${lineOf(text, ['stack', 'topology'])} stack.topology: expected stack.target (an external stack every shard pod loads) for k8s render, got topology ${JSON.stringify(sc.stack.topology ?? 'single')} (each pod would start its own stack)`]);
  }
  for (const t of sc.stack.target.split(',')) {
    if (isLoopbackHost(new URL(t.trim()).hostname)) {
      throw new ValidationError([`${file}:${lineOf(text, ['stack', 'target'])} stack.target: expected an address the pods can reach, got ${JSON.stringify(t.trim())} (loopback is each pod itself)`]);
    }
  }
  return sc;
}

/** The line of the deepest key on `path` that the document has (1 when none). */
function lineOf(text: string, path: readonly string[]): number {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter });
  let node: unknown = doc.contents;
  let offset = 0;
  for (const key of path) {
    if (!isMap(node)) break;
    const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
    if (!pair) break;
    if (isNode(pair.key) && pair.key.range) offset = pair.key.range[0];
    node = pair.value;
  }
  return counter.linePos(offset).line;
}
