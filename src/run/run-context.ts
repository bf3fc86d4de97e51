import type { Scenario } from '../scenario/types.js';
import type { RunningStack } from '../stack/launcher.js';
import type { CapacityProfile } from '../stack/types.js';
import type { SwarmLedger } from '../swarm/ack-ledger.js';
import type { ProgressSnapshot } from '../swarm/interval-merge.js';
import type { LiveMetrics } from '../swarm/live-metrics.js';
import type { TunnelLog } from '../swarm/tunnel-log.js';
import type { BackgroundTraffic } from './background.js';
import type { NodeCollector } from './collector.js';
import type { FaultRunner } from './faults.js';
import type { WindowResult } from './result-types.js';
import type { Shard } from '../swarm/shard.js';
import type { RunEvent } from './run-event.js';
import type { CoordinatorClient, ShardCoordinator } from './shard-coordinator.js';

/**
 * What the phases of one run share: the scenario, the running stack and its collector, the windows
 * measured so far. runScenario (run.ts) owns it; start-stack, drive and measure-window fill it in.
 */
export interface RunContext {
  sc: Scenario;
  outDir: string;
  allowRemote: boolean;
  secret: string;
  /** The slice of the fleet every window drives (the scenario's shard). */
  shard: Shard;
  /** The first window's t = 0 on the wall clock (`--start-at`); cleared once it is planned. */
  startAtEpochMs: number | null;
  runStartMs: number;
  /** Ctrl-C and the time limit both abort the current window. */
  signal: AbortSignal;
  emit: (e: RunEvent) => void;
  onProgress?: (p: ProgressSnapshot & { window: string }) => void;
  /** The live view (--metrics-port), or null. */
  live: LiveMetrics | null;
  /** Null for an external target (`stack.target`). */
  stack: RunningStack | null;
  collector: NodeCollector | null;
  background: BackgroundTraffic | null;
  profileOf: Map<string, CapacityProfile | undefined>;
  /** Where the swarm sends: the stack's entry URL (HTTP), or every relay's tunnel path (ws). */
  entryUrl: string;
  wsTargets: string[];
  /** The fleet's size now: background traffic scales with it. */
  currentAgents: number;
  windows: WindowResult[];
  hlogFiles: string[];
  warnings: string[];
  /** The scenario's faults (null when it has none). */
  faults: FaultRunner | null;
  /** Every window's tunnel drops, reconnects and returns home (tunnel faults are measured from it). */
  tunnelLog: TunnelLog;
  /** Drop that share of the current window's tunnels (null between windows, or for HTTP). */
  swarmDisconnect: ((fraction: number) => Promise<number>) | null;
  /** Each HTTP window's acknowledged writes, for the ledger (run/ledger.ts). */
  acked: SwarmLedger[];
  /** Where the agents' enrolment is kept between windows (a protocol with `enroll:`), or null; removed at the end. */
  enrolledStateDir: string | null;
  /**
   * A sharded run with a coordinator (shard-coordinator.ts): this shard decides every window and
   * merges its followers' (`coordinator`), or follows its decisions (`follower`); null otherwise.
   */
  coordination: { role: 'coordinator'; coordinator: ShardCoordinator } | { role: 'follower'; client: CoordinatorClient } | null;
  /** End the run now as failed (a node died that no fault named): the run is incomplete. */
  fail: (message: string) => void;
}
