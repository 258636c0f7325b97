import { spanKey, type SpanKey } from '../../common/span/span-kind';
import type { Host } from '../model/host';
import type { MirrorSession } from '../model/mirror-session';
import { localHostsOf, type Port } from '../model/port';
import type { SecurityGroup } from '../model/security-group';
import type { Segment } from '../model/segment';
import type { ChangeRecord } from '../store/change-log';
import type { Tenant } from '../model/tenant';
import { policyDiff } from './firewall-diff';
import { affectedSessions, mirrorChanges } from './mirror-index';
import { samePortEntry } from './resources/port.resource';
import { vtepsOf } from './resources/segment.resource';
import type { SpanIndex } from './span-index';
import { addTo } from './set-map';
import { isBound, type IndexedSpanSource, type SpanSource } from './span-source';

/** What one host must change: keys to (re)send with their current value, keys to remove. */
export interface HostSpanChange {
  upserts: Set<SpanKey>;
  removals: Set<SpanKey>;
}

/**
 * A state rewound to before some records: resources they touched take the value they had
 * before the first of them (their first `o`); everything else reads through to `now`.
 */
export class RewoundSource implements SpanSource {
  private readonly ports = new Map<string, Port | undefined>();
  private readonly hosts = new Map<string, Host | undefined>();
  private readonly segments = new Map<string, Segment | undefined>();
  private readonly groups = new Map<string, SecurityGroup | undefined>();
  private readonly tenants = new Map<string, Tenant | undefined>();
  private readonly mirrorSessions = new Map<string, MirrorSession | undefined>();

  constructor(
    private readonly now: SpanIndex,
    records: ChangeRecord[],
  ) {
    for (const record of records) {
      for (const op of record.ops) {
        const table = this.tableOf(op.k);
        if (!table.has(op.id)) {
          table.set(op.id, op.o ?? undefined);
        }
      }
    }
  }

  private tableOf(kind: ChangeRecord['ops'][number]['k']): Map<string, unknown> {
    switch (kind) {
      case 'port':
        return this.ports;
      case 'host':
        return this.hosts;
      case 'segment':
        return this.segments;
      case 'securityGroup':
        return this.groups;
      case 'tenant':
        return this.tenants;
      case 'mirrorSession':
        return this.mirrorSessions;
    }
  }

  touchedSessions(): Iterable<string> {
    return this.mirrorSessions.keys();
  }

  mirrorSession(id: string): MirrorSession | undefined {
    return this.mirrorSessions.has(id) ? this.mirrorSessions.get(id) : this.now.mirrorSession(id);
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

/**
 * What changed in each host's span between the state before `records` and now. `onlyHost`
 * restricts the answer to one host (resume).
 */
export function changesSince(now: SpanIndex, records: ChangeRecord[], onlyHost?: string): Map<string, HostSpanChange> {
  if (records.length === 0) {
    return new Map(); // an agent already at the current revision (the common reconnect) costs nothing
  }
  const before = new RewoundSource(now, records);
  const changes = spanChanges(now, records, onlyHost, before);
  const hosts = onlyHost !== undefined ? [onlyHost] : new Set([...now.hostIds(), ...before.touchedHosts()]);
  for (const host of hosts) {
    policyDiff(before, now, now.policies, { ports: before.touchedPorts(), tenants: before.touchedTenants() }, now.portsOnHost(host), host, changeOf(changes, host));
  }
  addMirrorChanges(now, before, changes, onlyHost);
  return settle(changes);
}

/**
 * The mirror part of spans (mirror-index.ts) between `before` and now: for the live path (one
 * record; the index already updated for it) and resume alike.
 */
export function addMirrorChanges(now: SpanIndex, before: RewoundSource, changes: Map<string, HostSpanChange>, onlyHost?: string): void {
  const touched = { sessions: before.touchedSessions(), ports: before.touchedPorts(), hosts: before.touchedHosts() };
  mirrorChanges(before, now, affectedSessions(now.mirrors, now, touched), (host) => changeOf(changes, host), onlyHost);
}

export function changeOf(changes: Map<string, HostSpanChange>, host: string): HostSpanChange {
  let change = changes.get(host);
  if (!change) {
    change = { upserts: new Set(), removals: new Set() };
    changes.set(host, change);
  }
  return change;
}

/** Upserts win over removals of the same key (it moved within the span); hosts left with nothing drop out. */
export function settle(changes: Map<string, HostSpanChange>): Map<string, HostSpanChange> {
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
export function spanChanges(now: SpanIndex, records: ChangeRecord[], onlyHost?: string, before = new RewoundSource(now, records)): Map<string, HostSpanChange> {
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
        addTo(touchedBySegment, port.segmentId, id);
      }
    }
  }
  return diffSpans(before, now, touchedBySegment, onlyHost);
}

function diffSpans(before: SpanSource, after: IndexedSpanSource, touchedBySegment: Map<string, Set<string>>, onlyHost?: string): Map<string, HostSpanChange> {
  const changes = new Map<string, HostSpanChange>();
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
        if (!then || !samePortEntry(before, then, after, now)) {
          upserted.push(spanKey('port', id));
        }
      } else if (then) {
        removed.push(spanKey('port', id));
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
      const change = changeOf(changes, host);
      const wasIn = hostsBefore.has(host);
      const isIn = hostsAfter.has(host);
      if (wasIn && !isIn) {
        change.removals.add(spanKey('segment', segmentId));
        for (const id of tableBefore()) {
          change.removals.add(spanKey('port', id));
        }
      } else if (!wasIn && isIn) {
        change.upserts.add(spanKey('segment', segmentId));
        for (const id of after.boundPorts(segmentId)) {
          change.upserts.add(spanKey('port', id));
        }
      } else {
        if (vtepsChanged) {
          change.upserts.add(spanKey('segment', segmentId));
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
  return settle(changes);
}
