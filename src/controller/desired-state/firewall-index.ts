import { memberAddress, memberIdOf, parseMemberId } from '../../common/span/member.kind';
import { encodePolicy } from '../../common/span/policy.kind';
import { spanKey, type SpanRun } from '../../common/span/span-kind';
import { localHostsOf, type Port } from '../model/port';
import type { ChangeRecord } from '../store/change-log';
import type { ViewState } from '../store/view-state';
import { compile, compileRules, effectiveGroupIds, groupCatalog, memberEntries, policyHead, type CompiledRules, type GroupCatalog } from './firewall';
import { encodeCompiledRules, toPolicyResource, type PolicyResource } from './resources/policy.resource';

/** A policy without rules (no port security). */
const NO_RULES = new Uint8Array(0);
import { addCount, addTo, removeFrom } from './set-map';
import type { HostSpanChange } from './span-diff';

/**
 * The firewall part of a host's span, indexed. Pure: no I/O, no clock.
 *
 * A host's span holds, for each of its own (bound) ports, the port's compiled policy
 * (`policy/<portId>`), and, for every group those policies name as a peer, the entries of the
 * group's IP sets (`member/<groupId>/<family>/<cidr>`): the addresses of every port whose
 * effective groups include the group, and their allowed address pairs (`memberEntries`). A
 * member carries nothing but its key, so a port joining or leaving a group costs each host
 * that references the group one upsert or removal per address, and never a policy.
 *
 * The live path (`PolicyIndex.apply`) keeps counts: members per group, referenced groups per
 * host; resume (`policyDiff`) compares the host's keys in the rewound state with the current
 * ones. span.spec.ts checks that both agree with the span computed from scratch.
 */
/**
 * What the policy index keeps per port (every port, bound or not: unbound ones are members too),
 * one object for every port with the same hosts and group set (most ports of a host share one).
 * A port's addresses (its IP-set entries) are not kept: the record that changes or deletes a
 * port carries its old value (`o`), which gives them again. An object per port, its addresses
 * in an array and a member id per group were about 200 bytes a port (20 MB at 100k ports).
 */
interface PortShape {
  /** The hosts holding the port as their own (`localHostsOf`): each needs its policy and sets. */
  hosts: string[];
  tenantId: string;
  /** Port security on and no group listed: its group is its tenant's default. */
  fallback: boolean;
  groups: string[];
  /** Groups its policy references (compile's remoteGroups). */
  refs: string[];
}

/**
 * Per group set (`a,b`): the groups array and the groups its rules reference, shared by every port
 * with those effective groups. `compile(...).remoteGroups` gives the same, per port and slowly; a
 * record that touches a group or tenant clears the memo.
 */
type GroupSetMemo = Map<string, GroupSet>;
interface GroupSet {
  groups: string[];
  refs: string[];
  /** Their rules compiled, once a policy needed them: a snapshot storm compiles 100,000 policies of a few group sets. */
  rules?: CompiledRules;
  /** Those rules encoded as every policy of the set carries them, once a policy was encoded. */
  rulesBytes?: Uint8Array;
  /** The shapes of ports with these groups, by hosts, tenant and fallback. */
  shapes: Map<string, PortShape>;
}

function groupSet(groups: string[], catalog: GroupCatalog, memo: GroupSetMemo): GroupSet {
  const key = groups.join(',');
  let shared = memo.get(key);
  if (!shared) {
    const refs = new Set<string>();
    for (const id of groups) {
      for (const rule of catalog.group(id)?.rules ?? []) {
        if (rule.remoteGroupId !== null && rule.remoteGroupId !== undefined) {
          refs.add(rule.remoteGroupId);
        }
      }
    }
    shared = { groups, refs: [...refs].sort(), shapes: new Map() };
    memo.set(key, shared);
  }
  return shared;
}

function shapeOf(port: Port, catalog: GroupCatalog, memo: GroupSetMemo, hostLists: HostLists): PortShape {
  const fallback = port.portSecurity !== false && !(port.securityGroupIds?.length ?? 0);
  const set = groupSet(effectiveGroupIds(port, catalog), catalog, memo);
  const hosts = hostLists.of(port);
  const key = `${hosts.join(' ')}|${port.tenantId}|${fallback}`;
  let shape = set.shapes.get(key);
  if (!shape) {
    shape = { hosts, tenantId: port.tenantId, fallback, groups: set.groups, refs: port.hostId === null ? NO_REFS : set.refs };
    set.shapes.set(key, shape);
  }
  return shape;
}

/** The port's addresses as IP-set entries (`memberAddress`), none when it is in no group. */
function addressesOf(port: Port, shape: PortShape): string[] {
  return shape.groups.length ? memberEntries(port).map((e) => memberAddress(e.family, e.cidr)) : NO_REFS;
}

const NO_REFS: string[] = [];

/**
 * `localHostsOf` with the one-host lists shared by every port of the host (all but migrating
 * ports): an array per port was 4 MB of the index at 100k ports. The lists are never changed.
 */
class HostLists {
  private readonly single = new Map<string, string[]>();

  of(port: Port): string[] {
    const hosts = localHostsOf(port);
    if (hosts.length === 0) {
      return NO_REFS;
    }
    if (hosts.length > 1) {
      return hosts;
    }
    let shared = this.single.get(hosts[0]);
    if (!shared) {
      shared = hosts;
      this.single.set(hosts[0], shared);
    }
    return shared;
  }
}

type Counts = Map<string, Map<string, number>>;
type Seen = Map<string, Map<string, boolean>>;

/** Adds `delta` to a count, first noting in `seen` whether it was present before this record. */
function bump(counts: Counts, outer: string, inner: string, delta: number, seen: Seen): void {
  let s = seen.get(outer);
  if (!s) {
    s = new Map();
    seen.set(outer, s);
  }
  if (!s.has(inner)) {
    s.set(inner, (counts.get(outer)?.get(inner) ?? 0) > 0);
  }
  addCount(counts, outer, inner, delta);
}

export const NONE: ReadonlySet<string> = new Set();

/**
 * Indexes the view by what firewall spans need, and keeps it current as records are applied
 * (the caller applies the record to the view first).
 */
export class PolicyIndex {
  private readonly ports = new Map<string, PortShape>();
  /** Group -> ports whose effective groups include it. */
  private readonly portsByGroup = new Map<string, Set<string>>();
  /** Tenant -> its ports that fall back to its default group. */
  private readonly fallbackByTenant = new Map<string, Set<string>>();
  /** Group -> member address (`memberAddress`, a member's id without its group) -> how many ports contribute it. */
  private readonly members: Counts = new Map();
  /** Host -> group -> how many of its ports' policies reference it. */
  private readonly needs: Counts = new Map();
  /** Group -> hosts that reference it. */
  private readonly hostsNeeding = new Map<string, Set<string>>();

  private readonly groupSets: GroupSetMemo = new Map();
  private readonly hostLists = new HostLists();

  constructor(private readonly view: ViewState) {
    const catalog = this.catalog();
    const noSeen: Seen = new Map();
    for (const port of view.ports.values()) {
      const shape = shapeOf(port, catalog, this.groupSets, this.hostLists);
      this.add(port.id, shape, addressesOf(port, shape), noSeen, noSeen);
    }
    for (const [host, groups] of this.needs) {
      for (const group of groups.keys()) {
        addTo(this.hostsNeeding, group, host);
      }
    }
  }

  catalog(): GroupCatalog {
    return groupCatalog(this.view.securityGroups, this.view.tenants);
  }

  portsInGroup(groupId: string): ReadonlySet<string> {
    return this.portsByGroup.get(groupId) ?? NONE;
  }

  fallbackPorts(tenantId: string): ReadonlySet<string> {
    return this.fallbackByTenant.get(tenantId) ?? NONE;
  }

  /** Groups the host's policies reference. */
  groupsNeededBy(hostId: string): Iterable<string> {
    return this.needs.get(hostId)?.keys() ?? [];
  }

  /** Current member ids (`<group>/<family>/<cidr>`) of a group. */
  membersOf(groupId: string): string[] {
    return [...(this.members.get(groupId)?.keys() ?? [])].map((address) => memberIdOf(groupId, address));
  }

  hasMember(id: string): boolean {
    const { groupId, family, cidr } = parseMemberId(id);
    return (this.members.get(groupId)?.get(memberAddress(family, cidr)) ?? 0) > 0;
  }

  /** The firewall part of the host's span, given its bound ports: their policies, and the members of every group they need. */
  spanRuns(hostId: string, portsOnHost: ReadonlySet<string>): SpanRun[] {
    const runs: SpanRun[] = [{ kind: 'policy', ids: portsOnHost }];
    for (const group of this.groupsNeededBy(hostId)) {
      runs.push({ kind: 'member', ids: this.membersOf(group) });
    }
    return runs;
  }

  policy(portId: string): PolicyResource | undefined {
    const port = this.view.ports.get(portId);
    return port && port.hostId !== null ? toPolicyResource(compile(port, this.catalog(), this.sharedRules)) : undefined;
  }

  /**
   * The bytes of the port's policy resource (as encoding `policy(portId)`), its group set's rules
   * encoded once until a record touches a group or tenant: a snapshot storm encodes 100,000
   * policies of a few group sets, and made several objects per rule of each (docs/benchmarks.md).
   */
  encodedPolicy(portId: string): Uint8Array | undefined {
    const port = this.view.ports.get(portId);
    if (!port || port.hostId === null) {
      return undefined;
    }
    const head = policyHead(port);
    if (!head.portSecurity) {
      return encodePolicy(head, NO_RULES);
    }
    const catalog = this.catalog();
    const groups = effectiveGroupIds(port, catalog);
    const set = groupSet(groups, catalog, this.groupSets);
    set.rulesBytes ??= encodeCompiledRules((set.rules ??= compileRules(groups, catalog)));
    return encodePolicy(head, set.rulesBytes);
  }

  /** The rules of a group set, compiled once until a record touches a group or tenant (which clears the memo). */
  private readonly sharedRules = (groups: string[], catalog: GroupCatalog): CompiledRules => {
    const set = groupSet(groups, catalog, this.groupSets);
    return (set.rules ??= compileRules(groups, catalog));
  };

  /**
   * Updates the index for a record already applied to the view, and adds what changed to
   * `changes` (host -> upserts/removals; the caller resolves upserts winning over removals).
   */
  apply(record: ChangeRecord, changeOf: (host: string) => HostSpanChange): void {
    const affected = new Set<string>();
    /** The ports' values before the record (the first op on a port has it): their addresses, which the index does not keep. */
    const before = new Map<string, Port | undefined>();
    for (const op of record.ops) {
      if (op.k === 'port') {
        affected.add(op.id);
        if (!before.has(op.id)) {
          before.set(op.id, (op.o ?? undefined) as Port | undefined);
        }
      } else if (op.k === 'securityGroup') {
        this.groupSets.clear();
        this.portsInGroup(op.id).forEach((id) => affected.add(id));
      } else if (op.k === 'tenant') {
        this.groupSets.clear();
        this.fallbackPorts(op.id).forEach((id) => affected.add(id));
      }
    }
    if (affected.size === 0) {
      return;
    }
    const catalog = this.catalog();
    const memberSeen: Seen = new Map();
    const needSeen: Seen = new Map();
    for (const id of affected) {
      const old = this.ports.get(id);
      const port = this.view.ports.get(id);
      const next = port ? shapeOf(port, catalog, this.groupSets, this.hostLists) : undefined;
      if (old) {
        const was = before.has(id) ? before.get(id) : port;
        if (!was) {
          throw new Error(`policy index: port ${id} is indexed, but record ${record.revision} says it did not exist`);
        }
        this.remove(id, old, addressesOf(was, old), memberSeen, needSeen);
      }
      if (port && next) {
        // Keyed by the view's own id string, not the record's copy of it.
        this.add(port.id, next, addressesOf(port, next), memberSeen, needSeen);
      }
      for (const host of old?.hosts ?? NO_REFS) {
        if (!next?.hosts.includes(host)) {
          changeOf(host).removals.add(spanKey('policy', id));
        }
      }
      for (const host of next?.hosts ?? NO_REFS) {
        changeOf(host).upserts.add(spanKey('policy', id));
      }
    }
    // Hosts that start or stop referencing a group get or drop its whole sets.
    const whole = new Set<string>();
    for (const [host, groups] of needSeen) {
      for (const [group, was] of groups) {
        const is = (this.needs.get(host)?.get(group) ?? 0) > 0;
        if (was === is) {
          continue;
        }
        whole.add(`${host} ${group}`);
        const change = changeOf(host);
        if (is) {
          addTo(this.hostsNeeding, group, host);
          for (const id of this.membersOf(group)) {
            change.upserts.add(spanKey('member', id));
          }
        } else {
          removeFrom(this.hostsNeeding, group, host);
          const gone = new Set(this.membersOf(group));
          for (const [address, present] of memberSeen.get(group) ?? []) {
            if (present) {
              gone.add(memberIdOf(group, address));
            }
          }
          for (const id of gone) {
            change.removals.add(spanKey('member', id));
          }
        }
      }
    }
    // Every other host referencing a group gets the entries that appeared or disappeared. Those
    // hosts and each entry's key are found once, not once per host and entry: a batch adds
    // thousands of entries to a group every host references.
    for (const [group, entries] of memberSeen) {
      const hosts = this.hostsNeeding.get(group);
      if (!hosts) {
        continue;
      }
      let others: HostSpanChange[] | undefined;
      const counts = this.members.get(group);
      for (const [address, was] of entries) {
        const is = (counts?.get(address) ?? 0) > 0;
        if (was === is) {
          continue;
        }
        others ??= [...hosts].filter((host) => !whole.has(`${host} ${group}`)).map((host) => changeOf(host));
        const key = spanKey('member', memberIdOf(group, address));
        for (const change of others) {
          (is ? change.upserts : change.removals).add(key);
        }
      }
    }
  }

  private add(id: string, shape: PortShape, addresses: string[], memberSeen: Seen, needSeen: Seen): void {
    this.ports.set(id, shape);
    if (shape.fallback) {
      addTo(this.fallbackByTenant, shape.tenantId, id);
    }
    for (const group of shape.groups) {
      addTo(this.portsByGroup, group, id);
      for (const address of addresses) {
        bump(this.members, group, address, 1, memberSeen);
      }
    }
    for (const host of shape.hosts) {
      for (const group of shape.refs) {
        bump(this.needs, host, group, 1, needSeen);
      }
    }
  }

  private remove(id: string, shape: PortShape, addresses: string[], memberSeen: Seen, needSeen: Seen): void {
    this.ports.delete(id);
    if (shape.fallback) {
      removeFrom(this.fallbackByTenant, shape.tenantId, id);
    }
    for (const group of shape.groups) {
      removeFrom(this.portsByGroup, group, id);
      for (const address of addresses) {
        bump(this.members, group, address, -1, memberSeen);
      }
    }
    for (const host of shape.hosts) {
      for (const group of shape.refs) {
        bump(this.needs, host, group, -1, needSeen);
      }
    }
  }
}
