import { createHash } from 'node:crypto';
import type { ObservedInventory } from '../model/observed-inventory';
import type { Port } from '../model/port';
import type { StoredHostObservation } from '../distribution/host-observation.repository';
import type { ViewState } from '../store/view-state';

/**
 * The audit's vocabulary (NIST SP 800-125B, issue 13). A check is a pure function of an
 * `AuditWorld` (the desired state, what each host's agent last observed, and the agents' status)
 * that answers whether it applies at all and what it found. No clock, no I/O: the same world
 * always gives the same findings, in the same order.
 */

/**
 * `high`/`medium`: the recommendation is not met (the check fails). `low`/`info`: worth a look,
 * not a failure (a single-direction mirror an operator may want, a host with one PCI bus).
 * `unknown`: the evidence the check needs is missing (an agent that never reported, a field no
 * source knows): the check cannot say pass.
 */
export type Severity = 'high' | 'medium' | 'low' | 'info' | 'unknown';
export const SEVERITIES: readonly Severity[] = ['high', 'medium', 'low', 'info', 'unknown'];

/** What a finding is about; only the fields that apply are set. `link` is a device name on `hostId`. */
export interface FindingSubject {
  hostId?: string;
  segmentId?: string;
  portId?: string;
  sessionId?: string;
  securityGroupId?: string;
  tenantId?: string;
  link?: string;
}

/** What a check found. */
export interface CheckFinding {
  severity: Severity;
  subject: FindingSubject;
  /** What was seen, with the values, in words: where each value came from (observed or declared) is said. */
  evidence: string;
  /**
   * What kind of finding it is, telling apart findings of one recommendation about the same
   * subject (two VLANs trunked to one host in vain, a disconnected agent and its refused change):
   * part of the finding's identity, which must not change while the finding stays true (the
   * evidence's values may).
   */
  topic: string;
}

/** A finding as the audit reports it: with its identity and since when it is open. */
export interface Finding {
  /** Stable while the finding stays true: its recommendation, subject and topic, hashed (findingId). */
  id: string;
  severity: Severity;
  subject: FindingSubject;
  evidence: string;
  /** When the finding opened (ISO 8601), from the findings' history; null in a report not recorded in it. */
  since: string | null;
}

export interface CheckResult {
  /** False when the world has nothing the recommendation is about (no team, no VLAN segment, no mirror session...). */
  applicable: boolean;
  findings: CheckFinding[];
}

export type AuditStatus = 'pass' | 'fail' | 'not-applicable' | 'unknown';

/** The status rule: not-applicable; else fail on any high or medium finding; else unknown on any missing evidence; else pass (low and info findings allowed). */
export function statusOf(result: CheckResult): AuditStatus {
  if (!result.applicable) {
    return 'not-applicable';
  }
  if (result.findings.some((f) => f.severity === 'high' || f.severity === 'medium')) {
    return 'fail';
  }
  if (result.findings.some((f) => f.severity === 'unknown')) {
    return 'unknown';
  }
  return 'pass';
}

/** What a host's agent last reported of it; a host absent from `AuditWorld.evidence` never reported. */
export interface HostEvidence {
  /** When it was reported (controller clock, ms). */
  observedAt: number | null;
  taps: StoredHostObservation['taps'];
  bridges: StoredHostObservation['bridges'];
  /** The observed inventory; null when the agent sent none (an older agent, or not collected yet). */
  inventory: ObservedInventory | null;
}

/** A host's agent as the controller sees it. A host absent from `AuditWorld.agents` reads as never connected. */
export interface AgentEvidence {
  connected: boolean;
  /** 0 = never acknowledged anything. */
  appliedRevision: number;
  /** Revisions behind its span's last change; 0 = in sync. */
  lag: number;
  /** Its last NACK's message, null when none. */
  lastError: string | null;
}

export interface AuditWorld {
  view: Pick<ViewState, 'revision' | 'tenants' | 'segments' | 'hosts' | 'ports' | 'securityGroups' | 'mirrorSessions'>;
  evidence: ReadonlyMap<string, HostEvidence>;
  agents: ReadonlyMap<string, AgentEvidence>;
}

/**
 * A check that walks every port (or every port per host) runs as a generator: it yields between
 * slices of its work (SLICE items at most), and its driver (audit.ts) gives the event loop a turn
 * between a few of them. At 500,000 ports one such check took 150-600 ms in one piece, and every
 * agent stream and API call of the replica waited for it.
 */
export type CheckRun = Generator<void, CheckResult, void>;

export type Check = (world: AuditWorld) => CheckResult | CheckRun;

/** Items a check handles between two pauses (a pause costs a `yield`; the driver decides when to give the event loop a turn). */
export const SLICE = 2_048;

/** True every SLICE calls of the same counter: `if (pause(++n)) { yield; }`. */
export const pause = (n: number): boolean => n % SLICE === 0;

/** The stored observation as a check's evidence. */
export function evidenceOf(observation: StoredHostObservation): HostEvidence {
  return { observedAt: observation.at ?? null, taps: observation.taps ?? [], bridges: observation.bridges ?? [], inventory: observation.inventory ?? null };
}

/** Whether nothing was ever heard of a host's agent: never connected, never acknowledged, never reported an observation. */
export function neverHeardFrom(world: AuditWorld, hostId: string): boolean {
  const agent = world.agents.get(hostId);
  return (!agent || (!agent.connected && agent.appliedRevision === 0)) && !world.evidence.has(hostId);
}

/** `topic`: what kind of finding this is (`member-down`, `vlan-sprawl:300`), part of its identity. */
export const finding = (severity: Severity, subject: FindingSubject, evidence: string, topic: string): CheckFinding => ({ severity, subject, evidence, topic });

/** The subject's fields in a fixed order, `key=value` joined: the same subject always gives the same text. */
function subjectKey(subject: FindingSubject): string {
  return Object.entries(subject)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v as string}`)
    .join(',');
}

/** A finding's identity: its recommendation, subject and topic, hashed to 16 hex digits (URL-safe, fixed length). */
export function findingId(recommendation: string, finding: { subject: FindingSubject; topic?: string }): string {
  return createHash('sha256')
    .update(`${recommendation}|${subjectKey(finding.subject)}|${finding.topic ?? ''}`)
    .digest('hex')
    .slice(0, 16);
}

export const iso = (ms: number | null): string => (ms === null ? 'an unknown time' : new Date(ms).toISOString());

/** Sorted by id: checks list what they find in a fixed order. */
export const byId = <T extends { id: string }>(items: Iterable<T>): T[] => [...items].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

const portsByWorld = new WeakMap<AuditWorld, Port[]>();

/**
 * The world's ports sorted by id, sorted once per world (several checks walk every port), in
 * slices: at 500,000 ports one sort took ~190 ms of the event loop. The ports are those of the
 * view when the first check asked; later checks walk the same list.
 */
export function* sortedPorts(world: AuditWorld): Generator<void, Port[], void> {
  let ports = portsByWorld.get(world);
  if (!ports) {
    const all: Port[] = [];
    for (const port of world.view.ports.values()) {
      all.push(port);
      if (pause(all.length)) {
        yield;
      }
    }
    ports = yield* sortOwnInSlices(all, (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    portsByWorld.set(world, ports);
  }
  return ports;
}

/** Items sorted at once before the merges (a few ms each). */
const SORT_RUN = 4_096;

/**
 * `items` sorted by `compare` (a new array; the same order as a stable `sort`), yielding between
 * slices: runs of SORT_RUN sorted with `Array.prototype.sort`, then merged pairwise, SLICE
 * elements a step.
 */
export function* sortInSlices<T>(items: readonly T[], compare: (a: T, b: T) => number): Generator<void, T[], void> {
  return yield* sortOwnInSlices(items.slice(), compare);
}

/** sortInSlices of an array the caller gives up (sorted in place before the merges, no copy). */
function* sortOwnInSlices<T>(items: T[], compare: (a: T, b: T) => number): Generator<void, T[], void> {
  let src = items;
  for (let lo = 0; lo < src.length; lo += SORT_RUN) {
    const run = src.slice(lo, lo + SORT_RUN).sort(compare);
    for (let k = 0; k < run.length; k++) {
      src[lo + k] = run[k];
    }
    yield;
  }
  let dst = new Array<T>(src.length);
  let steps = 0;
  for (let width = SORT_RUN; width < src.length; width *= 2) {
    for (let lo = 0; lo < src.length; lo += 2 * width) {
      const mid = Math.min(lo + width, src.length);
      const hi = Math.min(lo + 2 * width, src.length);
      let i = lo;
      let j = mid;
      let k = lo;
      while (i < mid && j < hi) {
        // The left run's first on ties: stable, as `sort` is.
        dst[k++] = compare(src[j], src[i]) < 0 ? src[j++] : src[i++];
        if (pause(++steps)) {
          yield;
        }
      }
      while (i < mid) {
        dst[k++] = src[i++];
      }
      while (j < hi) {
        dst[k++] = src[j++];
      }
    }
    [src, dst] = [dst, src];
    yield;
  }
  return src;
}

/** Runs a check's generator to its end (no pause): for a caller that wants the result now. */
export function finish<T>(run: Generator<void, T, void>): T {
  for (;;) {
    const step = run.next();
    if (step.done) {
      return step.value;
    }
  }
}
