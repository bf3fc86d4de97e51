import type { AgentIdentity } from '../core/identity.js';
import type { CommandResult, MessageKind } from '../core/protocol.js';
import { Rng } from '../core/random.js';

/**
 * Request bodies with realistic sizes, built once per agent kind and stitched per send with cheap
 * string concatenation (no JSON.stringify of big objects on the send path).
 *
 * | kind           | typical size | what real agents send                                  |
 * | -------------- | ------------ | ------------------------------------------------------ |
 * | heartbeat      | ~120 B       | id + sequence                                          |
 * | checkin        | ~1.2 KB      | status, counters, services, pending reboot, patches    |
 * | inventory      | ~40 KB       | installed software (≈300 titles), hardware, disks      |
 * | command-result | ~0.3–2 KB    | exit code and captured output per command              |
 */

function softwareList(rng: Rng, n: number): string {
  const vendors = ['Microsoft', 'Adobe', 'Google', 'Mozilla', 'Oracle', 'Zoom', 'Cisco', 'Dell', 'HP', 'Lenovo', 'VMware', 'Citrix'];
  const items: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = vendors[rng.int(vendors.length)];
    items.push(
      `{"name":"${v} Component ${i} (x64)","vendor":"${v} Corporation","version":"${rng.int(30)}.${rng.int(10)}.${rng.int(9999)}","installedOn":"2025-0${1 + rng.int(9)}-1${rng.int(9)}","sizeKb":${rng.int(900_000)}}`,
    );
  }
  return items.join(',');
}

export class PayloadFactory {
  private readonly inventoryTail: string;
  private readonly checkinTail: string;

  constructor(seed: string) {
    const rng = new Rng(`${seed}\0payloads`);
    this.inventoryTail =
      `"hardware":{"cpu":"Intel(R) Core(TM) i7-1185G7 @ 3.00GHz","cores":8,"ramMb":32768,"bios":"1.21.0","serial":"5CG${rng.int(1e7)}"},` +
      `"disks":[{"mount":"C:","sizeGb":476,"freeGb":${rng.int(400)}},{"mount":"D:","sizeGb":931,"freeGb":${rng.int(900)}}],` +
      `"software":[${softwareList(rng, 300)}]}`;
    const services = Array.from({ length: 18 }, (_, i) => `{"name":"svc${i}","state":"${i % 7 === 0 ? 'stopped' : 'running'}"}`).join(',');
    this.checkinTail =
      `"services":[${services}],"pendingReboot":false,"patches":{"missing":${rng.int(12)},"failed":0,"lastScan":"2026-11-20T02:00:00Z"},` +
      `"av":{"product":"Defender","defsAgeHours":${rng.int(48)},"realtime":true}}`;
  }

  /** `seq`: the write's sequence number; with the agent id, its idempotency key (ack-ledger.ts). */
  body(kind: MessageKind, agent: AgentIdentity, seq: number, rng: Rng, results?: CommandResult[]): string {
    switch (kind) {
      case 'heartbeat':
        return `{"agentId":"${agent.id}","seq":${seq},"uptimeSec":${86_400 + (seq % 1_000_000) * 60}}`;
      case 'checkin':
        return (
          `{"agentId":"${agent.id}","hostname":"${agent.hostname}","os":"${agent.os}","agentVersion":"${agent.agentVersion}",` +
          `"client":"${agent.client}","seq":${seq},"status":{"cpuPct":${rng.int(100)},"memPct":${20 + rng.int(75)},` +
          `"diskFreePct":${5 + rng.int(90)},"uptimeSec":${86_400 + (seq % 1_000_000) * 300},"loggedOnUser":"user${agent.index % 997}"},` +
          this.checkinTail
        );
      case 'inventory':
        return `{"agentId":"${agent.id}","seq":${seq},` + this.inventoryTail;
      case 'command-result':
        return JSON.stringify({ agentId: agent.id, seq, results: results ?? [] });
    }
  }
}
