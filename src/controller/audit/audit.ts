import { checkFwR1, checkFwR2, checkFwR3, checkFwR4 } from './checks/fw.checks';
import { checkMpR1, checkMpR2, checkMpR3 } from './checks/mp.checks';
import { checkTmR1, checkTmR2, checkTmR3 } from './checks/tm.checks';
import { checkVnR1, checkVnR2, checkVnR3 } from './checks/vn.checks';
import { performance } from 'node:perf_hooks';
import { finish, findingId, statusOf, type AuditStatus, type AuditWorld, type Check, type CheckFinding, type CheckResult, type CheckRun, type Finding } from './audit.types';

/** The 13 recommendations of NIST SP 800-125B, in the document's order, with the check of each (titles in our words). */
export const RECOMMENDATIONS: readonly { id: string; title: string; check: Check }[] = [
  { id: 'VM-VN-R1', title: "Hosts' switch ports carry the VLANs their VMs use, and no others", check: checkVnR1 },
  { id: 'VM-VN-R2', title: 'Overlay segments with distinct VNIs; tenants kept apart', check: checkVnR2 },
  { id: 'VM-VN-R3', title: "Every host's overlay module configured by the SDN controller", check: checkVnR3 },
  { id: 'VM-MP-R1', title: "A NIC team's members use different drivers", check: checkMpR1 },
  { id: 'VM-MP-R2', title: "A NIC team's members sit on different PCI buses", check: checkMpR2 },
  { id: 'VM-MP-R3', title: "A NIC team's members reach different switches; teams are redundant and carry the VTEP", check: checkMpR3 },
  { id: 'VM-FW-R1', title: 'Every VM port filtered inside its host (no hairpin to a physical firewall)', check: checkFwR1 },
  { id: 'VM-FW-R2', title: "Firewall rules in the hypervisor's kernel, realized on every host", check: checkFwR2 },
  { id: 'VM-FW-R3', title: 'Firewall policies provisioned centrally from security groups', check: checkFwR3 },
  { id: 'VM-FW-R4', title: 'Security-group rules that keep default deny', check: checkFwR4 },
  { id: 'VM-TM-R1', title: 'Mirroring covers both directions of a VM port', check: checkTmR1 },
  { id: 'VM-TM-R2', title: 'Promiscuous access only for analyzer ports, never a whole segment', check: checkTmR2 },
  { id: 'VM-TM-R3', title: 'Mirrored copies go to an analyzer port, a host NIC or a remote collector', check: checkTmR3 },
];

export interface RecommendationReport {
  id: string;
  title: string;
  status: AuditStatus;
  findings: Finding[];
}

export interface AuditReport {
  generatedAt: string;
  revision: number;
  recommendations: RecommendationReport[];
}

/**
 * A check's findings with their ids. Two findings of one check with the same identity (a check
 * that forgot a topic) keep distinct ids, numbered in the check's order, rather than merging
 * into one history.
 */
export function identified(recommendation: string, findings: CheckFinding[]): Finding[] {
  const seen = new Map<string, number>();
  return findings.map(({ severity, subject, evidence, topic }) => {
    const base = findingId(recommendation, { subject, topic });
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return { id: n === 1 ? base : `${base}-${n}`, severity, subject, evidence, since: null };
  });
}

const isRun = (result: CheckResult | CheckRun): result is CheckRun => typeof (result as CheckRun).next === 'function';

function* report(recommendation: (typeof RECOMMENDATIONS)[number], world: AuditWorld): Generator<void, RecommendationReport, void> {
  const { id, title, check } = recommendation;
  const run = check(world);
  const result = isRun(run) ? yield* run : run;
  return { id, title, status: statusOf(result), findings: result.applicable ? identified(id, result.findings) : [] };
}

/** Pure: every check over `world`; `generatedAt` is passed in (the service's clock). `since` is left null (the history fills it). */
export function runAudit(world: AuditWorld, generatedAt: string): AuditReport {
  return { generatedAt, revision: world.view.revision, recommendations: RECOMMENDATIONS.map((r) => finish(report(r, world))) };
}

/** How long the audit works before it rests, and rests before it works again. */
export const AUDIT_TURN_MS = 5;

/**
 * `runAudit` in turns of AUDIT_TURN_MS of work, each followed by as long a rest: the checks that
 * walk every port pause every few thousand of them (audit.types.ts, SLICE). At 500,000 ports the
 * whole audit takes a few seconds of CPU, and a check in one piece held the replica's agent
 * streams and API 150-600 ms (the scale bench's propagation tail); turns back to back
 * (`setImmediate`) still took every moment the event loop had no I/O, and a write's delta, which
 * takes several turns of the loop from the tail's read to the agents' streams, waited a slice at
 * each. Resting as long as it works, the audit takes at most half of the loop, and what arrives
 * while it rests is served at once; it finds nothing sooner for being quicker (it runs every
 * OVERLAY_AUDIT_INTERVAL_MS). The live view changes in place, so a
 * write applied meanwhile shows in what is read after it only; the ports the port checks walk
 * are those of the first that asked (sortedPorts), and `revision` is the one the first check saw
 * (the next evaluation settles the rest).
 */
export async function runAuditInTurns(world: AuditWorld, generatedAt: string): Promise<AuditReport> {
  const revision = world.view.revision;
  const recommendations: RecommendationReport[] = [];
  let turnStart = performance.now();
  for (const r of RECOMMENDATIONS) {
    const run = report(r, world);
    for (;;) {
      const step = run.next();
      if (step.done) {
        recommendations.push(step.value);
        break;
      }
      if (performance.now() - turnStart >= AUDIT_TURN_MS) {
        await new Promise<void>((resolve) => setTimeout(resolve, AUDIT_TURN_MS));
        turnStart = performance.now();
      }
    }
  }
  return { generatedAt, revision, recommendations };
}
