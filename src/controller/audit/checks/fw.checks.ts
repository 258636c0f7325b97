import { localHostsOf, type Port } from '../../model/port';
import { ANY_CIDR, type SecurityGroup } from '../../model/security-group';
import { type AuditWorld, byId, type CheckFinding, type CheckRun, finding, neverHeardFrom, pause, sortedPorts } from '../audit.types';
import { sortedHosts } from './inventory';

/**
 * Firewalls (VM-FW-R1..R4). Each port with port security is filtered by its own chain in its
 * hypervisor's kernel, compiled centrally from security groups (desired-state/firewall.ts): an
 * allow list per direction, everything else dropped. The checks look for the ports outside that
 * scheme and the policies that defeat it.
 */


/**
 * The world's ports (in id order) that `keep` keeps, made once per world and `made` cache: two
 * checks walk each such list, and at 500,000 ports each copy is an array for the collector.
 */
function* portsWhere(world: AuditWorld, made: WeakMap<AuditWorld, Port[]>, keep: (port: Port) => boolean): Generator<void, Port[], void> {
  const cached = made.get(world);
  if (cached) {
    return cached;
  }
  const out: Port[] = [];
  let n = 0;
  for (const p of yield* sortedPorts(world)) {
    if (keep(p)) {
      out.push(p);
    }
    if (pause(++n)) {
      yield;
    }
  }
  made.set(world, out);
  return out;
}

const boundByWorld = new WeakMap<AuditWorld, Port[]>();
const securedByWorld = new WeakMap<AuditWorld, Port[]>();

/** VM ports bound to a host (analyzer ports receive copies only, never a segment's frames), in id order. */
const boundVmPorts = (world: AuditWorld) => portsWhere(world, boundByWorld, (p) => p.hostId !== null && (p.role ?? 'vm') === 'vm');

/** The ports with port security, in id order. */
const securedPorts = (world: AuditWorld) => portsWhere(world, securedByWorld, (p) => p.portSecurity);

/** The groups a port's policy is compiled from, as ids (some may no longer exist). */
function effectiveGroupIds(port: Port, world: AuditWorld): string[] {
  if (!port.portSecurity) {
    return [];
  }
  if (port.securityGroupIds?.length) {
    return port.securityGroupIds;
  }
  const fallback = world.view.tenants.get(port.tenantId)?.defaultSecurityGroupId;
  return fallback ? [fallback] : [];
}

/** VM-FW-R1: filtering in the host, no hairpin: a bound VM port with port security off has no firewall in its host. */
export function* checkFwR1(world: AuditWorld): CheckRun {
  const ports = yield* boundVmPorts(world);
  const findings: CheckFinding[] = [];
  let n = 0;
  for (const p of ports) {
    if (!p.portSecurity) {
      findings.push(finding('medium', { portId: p.id, hostId: p.hostId! }, `port ${p.id} on host ${p.hostId}: port security off, nothing filters it in the host (any filtering happens outside, by hairpin)`, 'port-security-off'));
    }
    if (pause(++n)) {
      yield;
    }
  }
  return { applicable: ports.length > 0, findings };
}

/**
 * VM-FW-R2: the firewall runs in the hypervisor's kernel (nftables, per port): the hosts holding
 * port-secured ports have their agent connected, in sync and without a refused change; a host
 * whose agent never connected is unknown. One finding per host, with its number of ports.
 */
export function* checkFwR2(world: AuditWorld): CheckRun {
  const perHost = new Map<string, number>();
  let n = 0;
  for (const port of yield* boundVmPorts(world)) {
    if (port.portSecurity) {
      for (const hostId of localHostsOf(port)) {
        perHost.set(hostId, (perHost.get(hostId) ?? 0) + 1);
      }
    }
    if (pause(++n)) {
      yield;
    }
  }
  const findings: CheckFinding[] = [];
  for (const host of sortedHosts(world.view.hosts)) {
    if (pause(++n)) {
      yield;
    }
    const count = perHost.get(host.id);
    if (!count) {
      continue;
    }
    const agent = world.agents.get(host.id);
    const what = `host ${host.name}: ${count} port(s) with port security`;
    if (!agent || neverHeardFrom(world, host.id)) {
      findings.push(finding('unknown', { hostId: host.id }, `${what}; nothing ever heard from its agent: no evidence their rules are in the kernel`, 'agent-never-heard'));
      continue;
    }
    if (!agent.connected || agent.lag > 0) {
      findings.push(finding('medium', { hostId: host.id }, `${what}; agent ${agent.connected ? `${agent.lag} revision(s) behind` : 'disconnected'} (acknowledged ${agent.appliedRevision}): their kernel rules may be stale`, 'rules-stale'));
    }
    if (agent.lastError) {
      findings.push(finding('medium', { hostId: host.id }, `${what}; agent refused a change: ${agent.lastError}`, 'agent-refused'));
    }
  }
  return { applicable: perHost.size > 0, findings };
}

/**
 * VM-FW-R3: policies provisioned centrally and uniformly, from security groups: every port with
 * port security gets its policy from groups that exist and are its tenant's; a port naming none
 * falls back to its tenant's default group, which must exist.
 */
export function* checkFwR3(world: AuditWorld): CheckRun {
  const ports = yield* securedPorts(world);
  const findings: CheckFinding[] = [];
  let n = 0;
  for (const port of ports) {
    if (pause(++n)) {
      yield;
    }
    if (!port.securityGroupIds?.length) {
      const fallback = world.view.tenants.get(port.tenantId)?.defaultSecurityGroupId;
      if (!fallback || !world.view.securityGroups.has(fallback)) {
        findings.push(finding('high', { portId: port.id, tenantId: port.tenantId }, `port ${port.id} names no security group and its tenant's default group ${fallback ?? '(none)'} does not exist: no firewall policy`, 'no-policy'));
      }
      continue;
    }
    for (const id of port.securityGroupIds) {
      const group = world.view.securityGroups.get(id);
      if (!group) {
        findings.push(finding('high', { portId: port.id, securityGroupId: id }, `port ${port.id} names security group ${id}, which does not exist`, 'group-missing'));
      } else if (group.tenantId !== port.tenantId) {
        findings.push(finding('high', { portId: port.id, securityGroupId: id }, `port ${port.id} of tenant ${port.tenantId} names group ${id} of tenant ${group.tenantId}`, 'group-other-tenant'));
      }
    }
  }
  return { applicable: ports.length > 0, findings };
}

const anyPeer = (cidr: string | null, group: string | null): boolean => group === null && (cidr === null || cidr === ANY_CIDR.IPv4 || cidr === ANY_CIDR.IPv6);

/** The rules of a group that admit everything from anyone (defeating default deny). */
const openIngress = (group: SecurityGroup): string[] =>
  group.rules.filter((r) => r.direction === 'ingress' && r.protocol === 'any' && anyPeer(r.remoteCidr, r.remoteGroupId)).map((r) => `${r.id} (${r.ethertype} any from ${r.remoteCidr ?? 'anywhere'})`);

/**
 * VM-FW-R4: rules expressed with security groups keep default deny: a group whose ingress admits
 * every protocol from any peer, used by a port, fails it (medium, per group with its ports); a
 * rule naming a peer group that no longer exists is high.
 */
export function* checkFwR4(world: AuditWorld): CheckRun {
  const ports = yield* securedPorts(world);
  // Per group, how many ports use it and the first 5 (the ports come in id order): what a
  // finding shows. Not every id: at 500,000 ports on one group that list was an array of
  // 500,000 made again at each evaluation, for the collector.
  const users = new Map<string, { count: number; first: string[] }>();
  let n = 0;
  for (const port of ports) {
    if (pause(++n)) {
      yield;
    }
    for (const id of effectiveGroupIds(port, world)) {
      const use = users.get(id);
      if (!use) {
        users.set(id, { count: 1, first: [port.id] });
      } else {
        use.count++;
        if (use.first.length < 5) {
          use.first.push(port.id);
        }
      }
    }
  }
  const findings: CheckFinding[] = [];
  for (const group of byId(world.view.securityGroups.values())) {
    const using = users.get(group.id) ?? { count: 0, first: [] };
    const open = openIngress(group);
    if (open.length && using.count) {
      const shown = using.first.join(', ') + (using.count > 5 ? `, and ${using.count - 5} more` : '');
      findings.push(finding('medium', { securityGroupId: group.id, tenantId: group.tenantId }, `group ${group.name} admits any protocol from any peer inbound (rule ${open.join(', ')}); used by ${using.count} port(s): ${shown}`, 'open-ingress'));
    }
    for (const rule of group.rules) {
      if (rule.remoteGroupId && !world.view.securityGroups.has(rule.remoteGroupId)) {
        findings.push(finding('high', { securityGroupId: group.id, tenantId: group.tenantId }, `rule ${rule.id} of group ${group.name} names peer group ${rule.remoteGroupId}, which does not exist`, `peer-group-missing:${rule.id}`));
      }
    }
  }
  return { applicable: ports.length > 0, findings };
}
