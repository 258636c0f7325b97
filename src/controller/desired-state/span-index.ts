import { parseMemberId } from '../../common/span/member.kind';
import { parseSpanKey, spanKey, type ResourceOf, type SpanKey, type SpanKindName, type SpanRun } from '../../common/span/span-kind';
import type { Host } from '../model/host';
import type { MirrorSession } from '../model/mirror-session';
import { localHostsOf, type Port } from '../model/port';
import type { SecurityGroup } from '../model/security-group';
import type { Segment } from '../model/segment';
import type { ChangeRecord } from '../store/change-log';
import { applyChange, type ViewState } from '../store/view-state';
import type { Tenant } from '../model/tenant';
import { PolicyIndex } from './firewall-index';
import { MirrorIndex } from './mirror-index';
import { mirrorSinkResource, mirrorTapResource } from './resources/mirror.resource';
import { portResource } from './resources/port.resource';
import { segmentResource } from './resources/segment.resource';
import { encodeSpanResource, type SpanResource } from './resources/span-resource';
import { addMirrorChanges, changeOf, RewoundSource, settle, spanChanges, type HostSpanChange } from './span-diff';
import { addCount, addTo, removeFrom } from './set-map';
import { isBound, type IndexedSpanSource } from './span-source';

/**
 * A host's span, and how it changes. Pure: no I/O, no clock.
 *
 * A host's span is every segment on which it has a local port, and, for each such segment,
 * every bound port of the segment (its own, and the remote ones: MAC -> VTEP). A segment
 * resource carries the VTEPs of all hosts with local ports on it (the flood list). It also holds
 * the compiled firewall policy of each of its local ports and the IP-set members of every group
 * those policies reference (see firewall-index.ts).
 *
 * A host's local ports are those bound to it and those *prepared* on it for an incoming live
 * migration (`localHostsOf`): the destination receives the port, its policy, its sets and its
 * segment's table before the VM arrives, while the port stays bound to the source. The
 * destination also joins the segment's flood list, so that peers, which hold no entry for a
 * migrating MAC (reconcile/plan.ts), reach the VM on either host until the commit.
 *
 * Its own ports that are sources of enabled mirror sessions bring their MirrorTaps, and a session
 * whose sink is on the host its MirrorSink (see mirror-index.ts).
 *
 * Changes are computed by comparing two states: the current one, and the same state rewound by
 * the old values the change log carries (`o`). The live path rewinds one record; resume rewinds
 * every record since the agent's revision. Both go through `diffSpans` (span-diff.ts), so they
 * cannot disagree.
 */

/**
 * Indexes the view by what spans need (bound ports per segment and per host), and keeps them
 * current as change records are applied. Reads records and resources from the `ViewState` it
 * is given, which the caller keeps current (apply the record to the view first, then here).
 */
export class SpanIndex implements IndexedSpanSource {
  private readonly boundBySegment = new Map<string, Set<string>>();
  private readonly boundByHost = new Map<string, Set<string>>();
  private readonly hostsBySegment = new Map<string, Map<string, number>>();
  /** The firewall part of spans. */
  readonly policies: PolicyIndex;
  /** The mirror part of spans. */
  readonly mirrors: MirrorIndex;

  constructor(private readonly view: ViewState) {
    for (const port of view.ports.values()) {
      this.bind(port);
    }
    this.policies = new PolicyIndex(view);
    this.mirrors = new MirrorIndex(this);
  }

  mirrorSession(id: string): MirrorSession | undefined {
    return this.view.mirrorSessions.get(id);
  }

  mirrorSessionIds(): Iterable<string> {
    return this.view.mirrorSessions.keys();
  }

  securityGroup(id: string): SecurityGroup | undefined {
    return this.view.securityGroups.get(id);
  }

  tenant(id: string): Tenant | undefined {
    return this.view.tenants.get(id);
  }

  /** Every host the view knows. */
  hostIds(): Iterable<string> {
    return this.view.hosts.keys();
  }

  port(id: string): Port | undefined {
    return this.view.ports.get(id);
  }

  host(id: string): Host | undefined {
    return this.view.hosts.get(id);
  }

  segment(id: string): Segment | undefined {
    return this.view.segments.get(id);
  }

  boundPorts(segmentId: string): ReadonlySet<string> {
    return this.boundBySegment.get(segmentId) ?? EMPTY;
  }

  hostCounts(segmentId: string): ReadonlyMap<string, number> {
    return this.hostsBySegment.get(segmentId) ?? EMPTY_COUNTS;
  }

  portsOnHost(hostId: string): ReadonlySet<string> {
    return this.boundByHost.get(hostId) ?? EMPTY;
  }

  /** Segments on which the host has a local port (bound or prepared). */
  segmentsOfHost(hostId: string): Set<string> {
    const out = new Set<string>();
    for (const id of this.portsOnHost(hostId)) {
      out.add(this.view.ports.get(id)!.segmentId);
    }
    return out;
  }

  /**
   * Updates the index for a record already applied to the view, and returns what changed for
   * every host whose span it touches.
   */
  apply(record: ChangeRecord): Map<string, HostSpanChange> {
    const before = new RewoundSource(this, [record]);
    for (const op of record.ops) {
      if (op.k === 'port') {
        const old = (op.o ?? undefined) as Port | undefined;
        const next = (op.v ?? undefined) as Port | undefined;
        if (isBound(old)) {
          this.unbind(old);
        }
        if (isBound(next)) {
          this.bind(next);
        }
      }
    }
    this.mirrors.update({ sessions: before.touchedSessions(), ports: before.touchedPorts() });
    const changes = spanChanges(this, [record], undefined, before);
    this.policies.apply(record, (host) => changeOf(changes, host));
    addMirrorChanges(this, before, changes);
    return settle(changes);
  }

  /** The host's whole span (a snapshot), as runs of one kind (see SpanRun): segments, each followed by its bound ports, then policies, members and mirror resources. */
  spanRuns(hostId: string): SpanRun[] {
    const runs: SpanRun[] = [];
    for (const segmentId of this.segmentsOfHost(hostId)) {
      runs.push({ kind: 'segment', ids: [segmentId] }, { kind: 'port', ids: this.boundPorts(segmentId) });
    }
    runs.push(...this.policies.spanRuns(hostId, this.portsOnHost(hostId)));
    runs.push(...this.mirrors.spanRuns(hostId, this.portsOnHost(hostId)));
    return runs;
  }

  /** The host's whole span as keys. */
  spanOf(hostId: string): SpanKey[] {
    return this.spanRuns(hostId).flatMap(({ kind, ids }) => Array.from(ids, (id) => spanKey(kind, id)));
  }

  /**
   * The resource a key names in `hostId`'s span, as of now. Most are the same in every span; a
   * MirrorTap is not (its sink is resolved from the host holding it: see HOST_RELATIVE).
   */
  resource(key: SpanKey, hostId: string): SpanResource | undefined {
    const { kind, id } = parseSpanKey(key);
    return this.resourceOf(kind, id, hostId);
  }

  /** The same by kind and id. */
  resourceOf(kind: SpanKindName, id: string, hostId: string): SpanResource | undefined {
    const value = RESOURCE_OF[kind](this, id, hostId);
    return value && ({ kind, id, [kind]: value } as SpanResource);
  }
  /** The bytes of that resource (encodeSpanResource); a policy's from its group set's rules encoded once. */
  encodedResource(kind: SpanKindName, id: string, hostId: string): Uint8Array | undefined {
    if (kind === 'policy') {
      return this.policies.encodedPolicy(id);
    }
    const resource = this.resourceOf(kind, id, hostId);
    return resource && encodeSpanResource(resource);
  }


  private bind(port: Port): void {
    if (port.hostId === null) {
      return;
    }
    addTo(this.boundBySegment, port.segmentId, port.id);
    for (const host of localHostsOf(port)) {
      addTo(this.boundByHost, host, port.id);
      addCount(this.hostsBySegment, port.segmentId, host, 1);
    }
  }

  private unbind(port: Port & { hostId: string }): void {
    removeFrom(this.boundBySegment, port.segmentId, port.id);
    for (const host of localHostsOf(port)) {
      removeFrom(this.boundByHost, host, port.id);
      addCount(this.hostsBySegment, port.segmentId, host, -1);
    }
  }
}

/**
 * How the current state makes each kind's resource from its id (for the span of `hostId`):
 * undefined when it is in no span (or not in that host's).
 */
const RESOURCE_OF: { [N in SpanKindName]: (index: SpanIndex, id: string, hostId: string) => ResourceOf<N> | undefined } = {
  segment: segmentResource,
  port: portResource,
  policy: (index, id) => index.policies.policy(id),
  member: (index, id) => (index.policies.hasMember(id) ? parseMemberId(id) : undefined),
  mirror: mirrorTapResource,
  mirrorSink: mirrorSinkResource,
};

/**
 * Kinds whose encodings are never sent to a second host: each of their resources is in one host's
 * span (a port's policy: its host's, and during a migration the destination's) or differs from one
 * span to another (a MirrorTap: its sink is resolved from the host holding it). A cache of
 * encodings keeps only the other kinds: in a storm of snapshots, keeping 100,000 policies that no
 * other host asks for cost memory and garbage collection for nothing (docs/benchmarks.md).
 */
const NOT_SHARED: ReadonlySet<SpanKindName> = new Set(['policy', 'mirror']);

/** Whether a resource's encoding is the same in every span that holds it, and may be held by several: worth keeping for the next host. */
export function sharedEncoding(kind: SpanKindName): boolean {
  return !NOT_SHARED.has(kind);
}

const EMPTY: ReadonlySet<string> = new Set();
const EMPTY_COUNTS: ReadonlyMap<string, number> = new Map();

/**
 * Replays change records on a state and says, for each, which hosts' spans it changed: the live
 * path's computation (`SpanIndex.apply`, as the SpanFeed runs it) run again, for the revisions a
 * replica no longer remembers (the state is first rewound with `rewindChange` to before them).
 * Owns `state`: it is changed as records are applied. Building it indexes the whole state.
 */
export class SpanReplay {
  private readonly index: SpanIndex;

  constructor(private readonly state: ViewState) {
    this.index = new SpanIndex(state);
  }

  get revision(): number {
    return this.state.revision;
  }

  /** Applies the next record (the one after the state's revision); the hosts whose span it changed. */
  apply(record: ChangeRecord): string[] {
    if (record.revision !== this.state.revision + 1) {
      throw new Error(`record ${record.revision} does not follow revision ${this.state.revision}`);
    }
    applyChange(this.state, record);
    return [...this.index.apply(record).keys()];
  }
}

