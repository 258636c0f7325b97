import type { Host } from '../hosts/host.model';
import { localHostsOf, type Port } from '../ports/port.model';
import type { SecurityGroup } from '../security-groups/security-group.model';
import type { Segment } from '../segments/segment.model';
import type { ChangeRecord } from '../store/change-log';
import { applyChange, type ViewState } from '../store/view-state';
import type { Tenant } from '../tenants/tenant.model';
import { parseMemberId, PolicyIndex, policyDiff, type MemberResource, type PolicyResource } from './policy-index';

export { memberKey, memberId, policyKey, type MemberResource, type PolicyResource, type RuleResource } from './policy-index';

/**
 * A host's span, and how it changes. Pure: no I/O, no clock.
 *
 * A host's span is every segment on which it has a local port, and, for each such segment,
 * every bound port of the segment (its own, and the remote ones: MAC -> VTEP). A segment
 * resource carries the VTEPs of all hosts with local ports on it (the flood list). It also holds
 * the compiled firewall policy of each of its local ports and the IP-set members of every group
 * those policies reference (see policy-index.ts).
 *
 * A host's local ports are those bound to it and those *prepared* on it for an incoming live
 * migration (`localHostsOf`): the destination receives the port, its policy, its sets and its
 * segment's table before the VM arrives, while the port stays bound to the source. The
 * destination also joins the segment's flood list, so that peers, which hold no entry for a
 * migrating MAC (reconcile/plan.ts), reach the VM on either host until the commit.
 *
 * Changes are computed by comparing two states: the current one, and the same state rewound by
 * the old values the change log carries (`o`). The live path rewinds one record; resume rewinds
 * every record since the agent's revision. Both go through `diffSpans`, so they cannot disagree.
 */
export interface SegmentResource {
  id: string;
  tenantId: string;
  vni: number;
  vteps: string[];
}

export interface PortResource {
  id: string;
  segmentId: string;
  mac: string;
  ips: string[];
  hostId: string;
  vtepIp: string;
  vmId: string;
  /** The host the port is prepared on for a live migration, '' when none. */
  preparedHostId: string;
  /** That migration's id, '' when none. */
  migrationId: string;
  /** The prepared host's VTEP, '' when none. */
  preparedVtepIp: string;
}

export type SpanResource =
  | { kind: 'segment'; id: string; segment: SegmentResource }
  | { kind: 'port'; id: string; port: PortResource }
  | { kind: 'policy'; id: string; policy: PolicyResource }
  | { kind: 'member'; id: string; member: MemberResource };

export type SpanKind = SpanResource['kind'];

/** `segment/<id>`, `port/<id>`, `policy/<portId>` or `member/<groupId>/<family>/<cidr>`. */
export type SpanKey = string;

export const segmentKey = (id: string): SpanKey => `segment/${id}`;
export const portKey = (id: string): SpanKey => `port/${id}`;

/** The kind, and the id (everything after the first '/': a member's id is `<groupId>/<family>/<cidr>`). */
export function parseSpanKey(key: SpanKey): { kind: SpanKind; id: string } {
  const slash = key.indexOf('/');
  return { kind: key.slice(0, slash) as SpanKind, id: key.slice(slash + 1) };
}

/** What one host must change: keys to (re)send with their current value, keys to remove. */
export interface HostSpanChange {
  upserts: Set<SpanKey>;
  removals: Set<SpanKey>;
}

/** Read access to one state, as the span computation needs it. */
export interface SpanSource {
  port(id: string): Port | undefined;
  host(id: string): Host | undefined;
  segment(id: string): Segment | undefined;
}

/** A state whose bound ports and hosts per segment are indexed (the current one). */
export interface IndexedSpanSource extends SpanSource {
  /** Ids of the segment's ports that are bound to a host. */
  boundPorts(segmentId: string): ReadonlySet<string>;
  /** Hosts whose span holds the segment (local ports on it, bound or prepared), with how many each: also its flood list. */
  hostCounts(segmentId: string): ReadonlyMap<string, number>;
}

const isBound = (port: Port | undefined): port is Port & { hostId: string } => port !== undefined && port.hostId !== null;

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

  constructor(private readonly view: ViewState) {
    for (const port of view.ports.values()) {
      this.bind(port);
    }
    this.policies = new PolicyIndex(view);
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
    const changes = spanChanges(this, [record]);
    this.policies.apply(record, (host) => changeOf(changes, host));
    return settle(changes);
  }

  /** The host's whole span (a snapshot). */
  spanOf(hostId: string): SpanKey[] {
    const keys: SpanKey[] = [];
    for (const segmentId of this.segmentsOfHost(hostId)) {
      keys.push(segmentKey(segmentId));
      for (const portId of this.boundPorts(segmentId)) {
        keys.push(portKey(portId));
      }
    }
    keys.push(...this.policies.spanKeys(hostId, this.portsOnHost(hostId)));
    return keys;
  }

  /** The resource a key names, as of now. */
  resource(key: SpanKey): SpanResource | undefined {
    const { kind, id } = parseSpanKey(key);
    if (kind === 'policy') {
      const policy = this.policies.policy(id);
      return policy && { kind, id, policy };
    }
    if (kind === 'member') {
      return this.policies.hasMember(id) ? { kind, id, member: parseMemberId(id) } : undefined;
    }
    return resourceOf(this, key);
  }

  private bind(port: Port): void {
    if (port.hostId === null) {
      return;
    }
    getOrAdd(this.boundBySegment, port.segmentId).add(port.id);
    for (const host of localHostsOf(port)) {
      getOrAdd(this.boundByHost, host).add(port.id);
      count(this.hostsBySegment, port.segmentId, host, 1);
    }
  }

  private unbind(port: Port & { hostId: string }): void {
    deleteFrom(this.boundBySegment, port.segmentId, port.id);
    for (const host of localHostsOf(port)) {
      deleteFrom(this.boundByHost, host, port.id);
      count(this.hostsBySegment, port.segmentId, host, -1);
    }
  }
}

/** Adds `delta` to a per-segment host count, dropping zeros and empty segments. */
function count(bySegment: Map<string, Map<string, number>>, segmentId: string, host: string, delta: number): void {
  let counts = bySegment.get(segmentId);
  if (!counts) {
    counts = new Map();
    bySegment.set(segmentId, counts);
  }
  const n = (counts.get(host) ?? 0) + delta;
  if (n > 0) {
    counts.set(host, n);
  } else {
    counts.delete(host);
    if (counts.size === 0) {
      bySegment.delete(segmentId);
    }
  }
}

const EMPTY: ReadonlySet<string> = new Set();
const EMPTY_COUNTS: ReadonlyMap<string, number> = new Map();

function getOrAdd(map: Map<string, Set<string>>, key: string): Set<string> {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  return set;
}

function deleteFrom(map: Map<string, Set<string>>, key: string, value: string): void {
  const set = map.get(key);
  if (set) {
    set.delete(value);
    if (set.size === 0) {
      map.delete(key);
    }
  }
}

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

/**
 * A state rewound to before some records: resources they touched take the value they had
 * before the first of them (their first `o`); everything else reads through to `now`.
 */
class RewoundSource implements SpanSource {
  private readonly ports = new Map<string, Port | undefined>();
  private readonly hosts = new Map<string, Host | undefined>();
  private readonly segments = new Map<string, Segment | undefined>();
  private readonly groups = new Map<string, SecurityGroup | undefined>();
  private readonly tenants = new Map<string, Tenant | undefined>();

  constructor(
    private readonly now: SpanIndex,
    records: ChangeRecord[],
  ) {
    for (const record of records) {
      for (const op of record.ops) {
        const table =
          op.k === 'port' ? this.ports : op.k === 'host' ? this.hosts : op.k === 'segment' ? this.segments : op.k === 'securityGroup' ? this.groups : op.k === 'tenant' ? this.tenants : undefined;
        if (table && !table.has(op.id)) {
          table.set(op.id, (op.o ?? undefined) as never);
        }
      }
    }
  }

  touchedPorts(): Iterable<string> {
    return this.ports.keys();
  }

  touchedHosts(): Iterable<string> {
    return this.hosts.keys();
  }

  touchedTenants(): Iterable<string> {
    return this.tenants.keys();
  }

  securityGroup(id: string): SecurityGroup | undefined {
    return this.groups.has(id) ? this.groups.get(id) : this.now.securityGroup(id);
  }

  tenant(id: string): Tenant | undefined {
    return this.tenants.has(id) ? this.tenants.get(id) : this.now.tenant(id);
  }

  port(id: string): Port | undefined {
    return this.ports.has(id) ? this.ports.get(id) : this.now.port(id);
  }

  host(id: string): Host | undefined {
    return this.hosts.has(id) ? this.hosts.get(id) : this.now.host(id);
  }

  segment(id: string): Segment | undefined {
    return this.segments.has(id) ? this.segments.get(id) : this.now.segment(id);
  }
}

function vtepsOf(source: SpanSource, hosts: Set<string>): string[] {
  return [...new Set([...hosts].map((h) => source.host(h)?.vtepIp).filter((v): v is string => v !== undefined))].sort();
}

export function resourceOf(source: IndexedSpanSource, key: SpanKey): SpanResource | undefined {
  const { kind, id } = parseSpanKey(key);
  if (kind === 'segment') {
    const segment = source.segment(id);
    if (!segment) {
      return undefined;
    }
    const vteps = vtepsOf(source, new Set(source.hostCounts(id).keys()));
    return { kind, id, segment: { id, tenantId: segment.tenantId, vni: segment.vni, vteps } };
  }
  const port = kind === 'port' ? source.port(id) : undefined;
  if (!isBound(port)) {
    return undefined;
  }
  const vtepIp = source.host(port.hostId)?.vtepIp ?? '';
  const migration = port.migration ?? undefined;
  return {
    kind: 'port',
    id,
    port: {
      id,
      segmentId: port.segmentId,
      mac: port.mac,
      ips: port.ips,
      hostId: port.hostId,
      vtepIp,
      vmId: port.vmId ?? '',
      preparedHostId: migration?.destinationHostId ?? '',
      migrationId: migration?.id ?? '',
      preparedVtepIp: migration ? (source.host(migration.destinationHostId)?.vtepIp ?? '') : '',
    },
  };
}

/**
 * What changed in each host's span between the state before `records` and now. `onlyHost`
 * restricts the answer to one host (resume).
 */
export function changesSince(now: SpanIndex, records: ChangeRecord[], onlyHost?: string): Map<string, HostSpanChange> {
  if (records.length === 0) {
    return new Map(); // an agent already at the current revision (the common reconnect) costs nothing
  }
  const changes = spanChanges(now, records, onlyHost);
  const before = new RewoundSource(now, records);
  const hosts = onlyHost !== undefined ? [onlyHost] : new Set([...now.hostIds(), ...before.touchedHosts()]);
  for (const host of hosts) {
    policyDiff(before, now, now.policies, { ports: before.touchedPorts(), tenants: before.touchedTenants() }, now.portsOnHost(host), host, changeOf(changes, host));
  }
  return settle(changes);
}

function changeOf(changes: Map<string, HostSpanChange>, host: string): HostSpanChange {
  let change = changes.get(host);
  if (!change) {
    change = { upserts: new Set(), removals: new Set() };
    changes.set(host, change);
  }
  return change;
}

/** Upserts win over removals of the same key (it moved within the span); hosts left with nothing drop out. */
function settle(changes: Map<string, HostSpanChange>): Map<string, HostSpanChange> {
  for (const [host, change] of changes) {
    for (const key of change.upserts) {
      change.removals.delete(key);
    }
    if (change.upserts.size === 0 && change.removals.size === 0) {
      changes.delete(host);
    }
  }
  return changes;
}

/** Segment and port entries only (the forwarding part of spans). */
function spanChanges(now: SpanIndex, records: ChangeRecord[], onlyHost?: string): Map<string, HostSpanChange> {
  const before = new RewoundSource(now, records);
  const touched = new Set(before.touchedPorts());
  // A host whose VTEP changed changes every port entry bound to it (bindings are unchanged).
  for (const hostId of before.touchedHosts()) {
    for (const id of now.portsOnHost(hostId)) {
      touched.add(id);
    }
  }
  // Touched ports by the segments they were or are bound on: only those segments can change.
  const touchedBySegment = new Map<string, Set<string>>();
  for (const id of touched) {
    for (const port of [before.port(id), now.port(id)]) {
      if (isBound(port)) {
        getOrAdd(touchedBySegment, port.segmentId).add(id);
      }
    }
  }
  return diffSpans(before, now, touchedBySegment, onlyHost);
}

/** Whether a port's forwarding entry (what `resourceOf` sends for it) is the same in both states. */
function sameEntry(before: SpanSource, then: Port & { hostId: string }, after: SpanSource, now: Port & { hostId: string }): boolean {
  const vtep = (source: SpanSource, host: string | undefined) => (host === undefined ? '' : (source.host(host)?.vtepIp ?? ''));
  const dest = (port: Port) => port.migration?.destinationHostId;
  return (
    then.mac === now.mac &&
    then.hostId === now.hostId &&
    (then.vmId ?? '') === (now.vmId ?? '') &&
    then.ips.length === now.ips.length &&
    then.ips.every((ip, i) => ip === now.ips[i]) &&
    (then.migration?.id ?? '') === (now.migration?.id ?? '') &&
    dest(then) === dest(now) &&
    vtep(before, then.hostId) === vtep(after, now.hostId) &&
    vtep(before, dest(then)) === vtep(after, dest(now))
  );
}

function diffSpans(before: SpanSource, after: IndexedSpanSource, touchedBySegment: Map<string, Set<string>>, onlyHost?: string): Map<string, HostSpanChange> {
  const changes = new Map<string, HostSpanChange>();
  const changeOf = (host: string): HostSpanChange => {
    let change = changes.get(host);
    if (!change) {
      change = { upserts: new Set(), removals: new Set() };
      changes.set(host, change);
    }
    return change;
  };
  // Cost: O(hosts on the segment + ports touched), except for a host joining or leaving a
  // segment, which needs the segment's whole table.
  for (const [segmentId, touched] of touchedBySegment) {
    const boundHere = (source: SpanSource, id: string): (Port & { hostId: string }) | undefined => {
      const port = source.port(id);
      return isBound(port) && port.segmentId === segmentId ? port : undefined;
    };
    // Rewind the segment's host counts (span membership and flood list) by the touched ports.
    const countsAfter = after.hostCounts(segmentId);
    const countsBefore = new Map(countsAfter);
    const add = (counts: Map<string, number>, host: string, delta: number) => counts.set(host, (counts.get(host) ?? 0) + delta);
    const upserted: string[] = [];
    const removed: string[] = [];
    for (const id of touched) {
      const now = boundHere(after, id);
      const then = boundHere(before, id);
      if (now) {
        localHostsOf(now).forEach((h) => add(countsBefore, h, -1));
        // A change that leaves the port's entry as it was (its security groups, say) is not sent
        // to the segment's hosts; a host that joins the segment gets the whole table anyway.
        if (!then || !sameEntry(before, then, after, now)) {
          upserted.push(portKey(id));
        }
      } else if (then) {
        removed.push(portKey(id));
      }
      if (then) {
        localHostsOf(then).forEach((h) => add(countsBefore, h, 1));
      }
    }
    const present = (counts: Map<string, number>) => new Set([...counts].filter(([, n]) => n > 0).map(([h]) => h));
    const hostsAfter = new Set(countsAfter.keys());
    const hostsBefore = present(countsBefore);
    const vtepsChanged = vtepsOf(before, hostsBefore).join() !== vtepsOf(after, hostsAfter).join();
    let portsBefore: Set<string> | undefined;
    const tableBefore = (): Set<string> => {
      if (!portsBefore) {
        portsBefore = new Set(after.boundPorts(segmentId));
        for (const id of touched) {
          if (boundHere(before, id)) {
            portsBefore.add(id);
          } else {
            portsBefore.delete(id);
          }
        }
      }
      return portsBefore;
    };
    for (const host of new Set([...hostsBefore, ...hostsAfter])) {
      if (onlyHost !== undefined && host !== onlyHost) {
        continue;
      }
      const change = changeOf(host);
      const wasIn = hostsBefore.has(host);
      const isIn = hostsAfter.has(host);
      if (wasIn && !isIn) {
        change.removals.add(segmentKey(segmentId));
        for (const id of tableBefore()) {
          change.removals.add(portKey(id));
        }
      } else if (!wasIn && isIn) {
        change.upserts.add(segmentKey(segmentId));
        for (const id of after.boundPorts(segmentId)) {
          change.upserts.add(portKey(id));
        }
      } else {
        if (vtepsChanged) {
          change.upserts.add(segmentKey(segmentId));
        }
        for (const key of upserted) {
          change.upserts.add(key);
        }
        for (const key of removed) {
          change.removals.add(key);
        }
      }
    }
  }
  // A port that left one of the host's segments for another of them is an upsert, not a removal.
  for (const [host, change] of changes) {
    for (const key of change.upserts) {
      change.removals.delete(key);
    }
    if (change.upserts.size === 0 && change.removals.size === 0) {
      changes.delete(host);
    }
  }
  return changes;
}
