import { readFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { InvalidArgumentError } from '../../core/errors.js';
import { EXIT, type ExitCode } from '../../core/exit-codes.js';

/**
 * `rmmscale k8s render SCENARIO --shards N [--image IMAGE] [--namespace NS]`: prints the
 * Kubernetes objects that run SCENARIO as N shards and merge them (src/k8s/render-manifests.ts;
 * docs/k8s.md has the whole flow). Nothing is applied: the YAML goes to stdout for `kubectl apply -f -`.
 */
export const k8sCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'k8s <action> [scenario]',
  describe: 'render Kubernetes manifests that run a scenario as N shards (an Indexed Job) and merge their results',
  builder: (y: Argv) =>
    y
      .positional('action', { type: 'string', describe: 'render' })
      .positional('scenario', { type: 'string', describe: 'a scenario file whose stack is an external target: the pods can reach' })
      .option('shards', { type: 'string', describe: 'shards: the Indexed Job runs this many pods at once (1-1000)', requiresArg: true })
      .option('image', { type: 'string', describe: 'the rmmscale image the pods run (Dockerfile) [default rmmscale:VERSION]', requiresArg: true })
      .option('namespace', { type: 'string', describe: 'namespace of every object [default: none written; kubectl -n decides]', requiresArg: true })
      .option('storage-class', { type: 'string', describe: 'StorageClass of the results volume [default: the cluster default]', requiresArg: true })
      .option('access-mode', { type: 'string', describe: 'results volume: ReadWriteMany (shards on several machines) | ReadWriteOnce (a one-node cluster) [default ReadWriteMany]', requiresArg: true }) as Argv<
      Record<string, unknown>
    >,
  handler: async (argv) => {
    process.exitCode = await runK8sCli(argv);
  },
};

export async function runK8sCli(argv: Record<string, unknown>): Promise<ExitCode> {
  if (argv.action !== 'render') throw new InvalidArgumentError('ACTION', argv.action, 'render');
  const { parseAccessMode, parseImage, parseNamespace, parseShards, parseStorageClass } = await import('../../k8s/k8s-flags.js');
  const { manifestsYaml, renderManifests } = await import('../../k8s/render-manifests.js');
  const { toolVersion } = await import('../../core/version.js');
  if (argv.shards === undefined) throw new InvalidArgumentError('--shards', undefined, 'a whole number of shards from 1 to 1000');
  const shards = parseShards(argv.shards);
  const image = parseImage(argv.image ?? `rmmscale:${toolVersion()}`);
  const namespace = argv.namespace === undefined ? null : parseNamespace(argv.namespace);
  const storageClass = argv.storageClass === undefined ? null : parseStorageClass(argv.storageClass);
  const accessMode = parseAccessMode(argv.accessMode ?? 'ReadWriteMany');
  const file = argv.scenario;
  if (typeof file !== 'string' || file === '') throw new InvalidArgumentError('SCENARIO', file, 'a scenario file');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError('SCENARIO', file, `a readable scenario file (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  process.stdout.write(manifestsYaml(renderManifests({ scenarioText: text, scenarioFile: file, shards, image, namespace, storageClass, accessMode })));
  return EXIT.ok;
}
