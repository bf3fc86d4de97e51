/**
 * The commands the rendered pods run, in one place: the shard run (issue 16's `--shard`,
 * `--coordinator`, `--coordinator-url`) and the merge (`rmmscale merge`). Everything else in the
 * manifests (render-manifests.ts) only places these.
 *
 * The scripts run under `/bin/sh -c` in the container. Kubernetes expands `$(NAME)` in a
 * container's command itself, so the scripts use the shell's `${NAME}` and backquotes only.
 */

/** Where the pods mount the scenario's ConfigMap and the shared results volume. */
export const SCENARIO_DIR = '/scenario';
export const SCENARIO_KEY = 'scenario.yaml';
export const RESULTS_DIR = '/results';
/** The merged result, and the file the merge container is Ready on. */
export const MERGED_RESULT = `${RESULTS_DIR}/result.json`;
/** The coordinator's control endpoint (index 0), behind the coordinator Service. */
export const COORDINATOR_PORT = 7470;
/** Each shard's live view (--metrics-port, loopback only: reach it with `kubectl port-forward`). */
export const METRICS_PORT = 9464;
/** How long the merge pod stays up after merging, so the result can be collected. */
export const MERGE_HOLD_SEC = 3600;

/** Exit codes after which a shard has written its result: ok, target failed, untrustworthy, a threshold failed. */
const RESULT_WRITTEN_CODES = [0, 3, 4, 5];

export interface ShardCommandInput {
  shards: number;
  coordinatorUrl: string;
  /** The scenario's target is outside loopback (always, on a cluster). */
  allowRemote: boolean;
}

/** A shard's output folder (its result.json inside); `index` is a shell word (`${JOB_COMPLETION_INDEX}`) or a number. */
export function shardResultDir(index: string | number): string {
  return `${RESULTS_DIR}/shard-${index}`;
}

/** A shard's result file. */
export function shardResultPath(index: string | number): string {
  return `${shardResultDir(index)}/result.json`;
}

/** The file a shard writes its exit code to, whatever happened. */
export function shardExitPath(index: string | number): string {
  return `${RESULTS_DIR}/shard-${index}.exit`;
}

/** The coordinator's flags (index 0): it listens on every address of its pod, behind its Service. */
export function coordinatorFlags(): string {
  return `--coordinator --coordinator-host 0.0.0.0 --coordinator-port ${COORDINATOR_PORT}`;
}

/** A follower's flags (every other index): the coordinator's Service URL. */
export function followerFlags(i: ShardCommandInput): string {
  return `--coordinator-url ${i.coordinatorUrl}`;
}

/** The `rmmscale run` of one shard, without its role (`$role`: coordinatorFlags or followerFlags). */
export function shardRunCommand(i: ShardCommandInput, index: string): string {
  return [
    'rmmscale run',
    `${SCENARIO_DIR}/${SCENARIO_KEY}`,
    `--shard ${index}/${i.shards}`,
    `--out ${shardResultDir(index)}`,
    `--metrics-port ${METRICS_PORT}`,
    ...(i.allowRemote ? ['--allow-remote'] : []),
  ].join(' ');
}

/**
 * The merge of every shard's result into one. With a coordinator (index 0), its result is already
 * the merge of every window; `rmmscale merge` checks the others are its shards and writes it.
 */
export function mergeCommand(): string {
  return `rmmscale merge ${shardResultPath('*')} --out ${MERGED_RESULT}`;
}

/**
 * A shard pod's script: the soft open-file limit raised to the hard one (a node process cannot
 * raise its own, and 100,000 tunnels need that many sockets), the shard run, and its exit code
 * kept beside its result. A shard whose run wrote a result (exit 0, 3, 4 or 5) completes: the
 * verdict belongs to the merged result, which is judged as a whole. Any other exit fails the pod.
 */
export function shardScript(i: ShardCommandInput): string {
  const index = '${JOB_COMPLETION_INDEX}';
  return [
    'ulimit -n `ulimit -Hn` 2>/dev/null || true',
    `role="${followerFlags(i)}"`,
    `if [ "${index}" = 0 ]; then role="${coordinatorFlags()}"; fi`,
    `${shardRunCommand(i, index)} $role`,
    'code=$?',
    `echo "$code" > ${shardExitPath(index)}`,
    `case "$code" in ${RESULT_WRITTEN_CODES.join('|')}) exit 0 ;; *) exit "$code" ;; esac`,
  ].join('\n');
}

/**
 * The merge pod's init container: wait until every shard has written its exit code; give up at
 * once when one ended without a result. (The Job's deadline bounds the wait.)
 */
export function waitForShardsScript(shards: number): string {
  return [
    'while :; do',
    '  done_count=0',
    `  i=0; while [ "$i" -lt ${shards} ]; do`,
    `    f=${shardExitPath('$i')}`,
    '    if [ -f "$f" ]; then',
    '      code=`cat "$f"`',
    `      case "$code" in ${RESULT_WRITTEN_CODES.join('|')}) done_count=\`expr "$done_count" + 1\` ;; *) echo "shard $i exited $code without a result"; exit 1 ;; esac`,
    '    fi',
    '    i=`expr "$i" + 1`',
    '  done',
    `  if [ "$done_count" -eq ${shards} ]; then echo "all ${shards} shards wrote their results"; exit 0; fi`,
    `  echo "$done_count of ${shards} shards done"; sleep 5`,
    'done',
  ].join('\n');
}

/** The merge container: merge, stay up for collection (Ready once the result exists), exit with the merge's code. */
export function mergeScript(): string {
  return [mergeCommand(), 'code=$?', `echo "merge exited $code; collect ${MERGED_RESULT} within ${MERGE_HOLD_SEC} s"`, `sleep ${MERGE_HOLD_SEC}`, 'exit "$code"'].join('\n');
}
