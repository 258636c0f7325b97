import { memberId } from '../../common/span/member.kind';
import { spanKey } from '../../common/span/span-kind';
import { localHostsOf, type Port } from '../model/port';
import { compile, effectiveGroupIds, memberEntries, type GroupCatalog } from './firewall';
import { NONE, type PolicyIndex } from './firewall-index';
import { toPolicyResource } from './resources/policy.resource';
import type { HostSpanChange } from './span-diff';
import type { SpanSource } from './span-source';

/** A state (possibly rewound) as the firewall diff reads it. */
type PolicySource = Pick<SpanSource, 'port' | 'securityGroup' | 'tenant'>;

function catalogOf(source: PolicySource): GroupCatalog {
  return { group: (id) => source.securityGroup(id), defaultGroupOf: (tenantId) => source.tenant(tenantId)?.defaultSecurityGroupId };
}

/**
 * What changed in one host's firewall keys between `before` (the state rewound by some records)
 * and `now`: compares the host's policies and referenced sets in both. O(the host's span).
 */
export function policyDiff(
  before: PolicySource,
  now: PolicySource,
  index: PolicyIndex,
  touched: { ports: Iterable<string>; tenants: Iterable<string> },
  portsOnHostNow: ReadonlySet<string>,
  hostId: string,
  change: HostSpanChange,
): void {
  const touchedPorts = new Set(touched.ports);
  const catalogBefore = catalogOf(before);
  const catalogNow = catalogOf(now);
  const isLocal = (port: Port | undefined): boolean => port !== undefined && localHostsOf(port).includes(hostId);
  const hostPorts = (source: PolicySource): string[] => [...new Set([...portsOnHostNow, ...touchedPorts])].filter((id) => isLocal(source.port(id)));
  const policies = (source: PolicySource, catalog: GroupCatalog): { byPort: Map<string, string>; refs: Set<string> } => {
    const byPort = new Map<string, string>();
    const refs = new Set<string>();
    for (const id of hostPorts(source)) {
      const compiled = compile(source.port(id)!, catalog);
      byPort.set(id, JSON.stringify(toPolicyResource(compiled)));
      compiled.remoteGroups.forEach((g) => refs.add(g));
    }
    return { byPort, refs };
  };
  const then = policies(before, catalogBefore);
  const current = policies(now, catalogNow);
  for (const id of then.byPort.keys()) {
    if (!current.byPort.has(id)) {
      change.removals.add(spanKey('policy', id));
    }
  }
  for (const [id, text] of current.byPort) {
    if (then.byPort.get(id) !== text) {
      change.upserts.add(spanKey('policy', id));
    }
  }
  const touchedTenants = [...touched.tenants];
  const membersBefore = (group: string): Set<string> => {
    const candidates = new Set([...index.portsInGroup(group), ...touchedPorts]);
    for (const tenant of touchedTenants) {
      index.fallbackPorts(tenant).forEach((id) => candidates.add(id));
    }
    const out = new Set<string>();
    for (const id of candidates) {
      const port = before.port(id);
      if (port && effectiveGroupIds(port, catalogBefore).includes(group)) {
        memberEntries(port).forEach((e) => out.add(memberId(group, e.family, e.cidr)));
      }
    }
    return out;
  };
  const setsBefore = new Map([...then.refs].map((g) => [g, membersBefore(g)]));
  for (const group of current.refs) {
    const had = setsBefore.get(group);
    for (const id of index.membersOf(group)) {
      if (!had?.has(id)) {
        change.upserts.add(spanKey('member', id));
      }
    }
  }
  for (const [group, had] of setsBefore) {
    const has = current.refs.has(group) ? new Set(index.membersOf(group)) : NONE;
    for (const id of had) {
      if (!has.has(id)) {
        change.removals.add(spanKey('member', id));
      }
    }
  }
}
