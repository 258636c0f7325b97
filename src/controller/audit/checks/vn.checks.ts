import { localHostsOf } from '../../model/port';
import { type AuditWorld, byId, type CheckFinding, type CheckRun, finding, neverHeardFrom, pause, sortedPorts } from '../audit.types';
import { sortedHosts } from './inventory';
import { trunksOf } from './trunks';

/**
 * Segmentation (VM-VN-R1..R3): the VLANs trunked to each host against the VLAN segments its ports
 * use (R1); distinct overlay ids and tenants kept apart (R2); every host's overlay module driven
 * by the controller (R3).
 */

const numeric = (a: number, b: number): number => a - b;

/**
 * VM-VN-R1: the switch ports facing a host carry exactly the VLANs its ports use. The trunks are
 * what LLDP says of each physical NIC whose neighbour names VLANs (observed), else the host's
 * declared `trunkedVlans` (trunks.ts). A VLAN a local port needs and a trunk lacks is a missing trunk (high, per
 * NIC); a VLAN trunked with no local port on it is sprawl (medium when it is another segment's
 * VLAN, low when no segment has it: it may be the infrastructure's).
 */
export function* checkVnR1(world: AuditWorld): CheckRun {
  const { segments, ports } = world.view;
  const vlanSegments = new Map<number, string>();
  for (const s of segments.values()) {
    if (s.vlanId !== null && s.vlanId !== undefined) {
      vlanSegments.set(s.vlanId, s.id);
    }
  }
  if (vlanSegments.size === 0) {
    return { applicable: false, findings: [] };
  }
  // host -> VLAN -> segment, for the VLAN segments of the ports each host holds.
  const needs = new Map<string, Map<number, string>>();
  let n = 0;
  for (const port of ports.values()) {
    if (pause(++n)) {
      yield;
    }
    const segment = segments.get(port.segmentId);
    if (segment?.vlanId === null || segment?.vlanId === undefined) {
      continue;
    }
    for (const hostId of localHostsOf(port)) {
      const map = needs.get(hostId) ?? new Map<number, string>();
      map.set(segment.vlanId, segment.id);
      needs.set(hostId, map);
    }
  }
  const findings: CheckFinding[] = [];
  for (const host of sortedHosts(world.view.hosts)) {
    if (pause(++n)) {
      yield;
    }
    const needed = needs.get(host.id) ?? new Map<number, string>();
    const trunks = trunksOf(host, world.evidence.get(host.id));
    if (trunks === null) {
      if (needed.size) {
        findings.push(
          finding('unknown', { hostId: host.id }, `host ${host.name} needs VLAN(s) ${[...needed.keys()].sort(numeric).join(', ')}; its switch ports' VLANs are unknown (no LLDP VLANs observed, none declared)`, 'trunk-unknown'),
        );
      }
      continue;
    }
    for (const [vlan, segmentId] of [...needed.entries()].sort(([a], [b]) => a - b)) {
      for (const trunk of trunks) {
        if (!trunk.vlans.has(vlan)) {
          findings.push(
            finding('high', { hostId: host.id, segmentId, ...(trunk.link ? { link: trunk.link } : {}) }, `host ${host.name} has ports on VLAN ${vlan} but ${trunk.link ? `${trunk.link}'s switch port` : 'its trunk'} carries ${[...trunk.vlans].sort(numeric).join(', ') || 'no VLAN'} (${trunk.source})`, `vlan-missing:${vlan}`),
          );
        }
      }
    }
    const trunked = new Set(trunks.flatMap((t) => [...t.vlans]));
    for (const vlan of [...trunked].sort(numeric)) {
      if (needed.has(vlan)) {
        continue;
      }
      const segmentId = vlanSegments.get(vlan);
      const source = [...new Set(trunks.filter((t) => t.vlans.has(vlan)).map((t) => (t.link ? `${t.link}, ${t.source}` : t.source)))].join('; ');
      findings.push(
        segmentId
          ? finding('medium', { hostId: host.id, segmentId }, `VLAN ${vlan} (segment ${segmentId}) trunked to host ${host.name} with no port of it there (${source})`, `vlan-sprawl:${vlan}`)
          : finding('low', { hostId: host.id }, `VLAN ${vlan} trunked to host ${host.name} belongs to no segment (${source}): the infrastructure's, or sprawl`, `vlan-sprawl:${vlan}`),
      );
    }
  }
  return { applicable: true, findings };
}

/**
 * VM-VN-R2: overlay segmentation with tenants kept apart. Every segment's VNI (and every mirror
 * session's) is its own; a VLAN id at most one segment's; a port of its segment's tenant; a port's
 * security groups, and the groups a rule names as peers, of the same tenant.
 */
export function* checkVnR2(world: AuditWorld): CheckRun {
  const { segments, securityGroups, mirrorSessions } = world.view;
  if (segments.size === 0) {
    return { applicable: false, findings: [] };
  }
  const findings: CheckFinding[] = [];
  const vnis = new Map<number, string[]>();
  const vlans = new Map<number, string[]>();
  for (const s of byId(segments.values())) {
    vnis.set(s.vni, [...(vnis.get(s.vni) ?? []), `segment ${s.id}`]);
    if (s.vlanId !== null && s.vlanId !== undefined) {
      vlans.set(s.vlanId, [...(vlans.get(s.vlanId) ?? []), s.id]);
    }
  }
  for (const m of byId(mirrorSessions.values())) {
    vnis.set(m.vni, [...(vnis.get(m.vni) ?? []), `mirror session ${m.id}`]);
  }
  for (const [vni, owners] of [...vnis.entries()].sort(([a], [b]) => a - b)) {
    if (owners.length > 1) {
      const segment = owners.find((o) => o.startsWith('segment '));
      findings.push(finding('high', segment ? { segmentId: segment.slice('segment '.length) } : {}, `VNI ${vni} used by ${owners.join(', ')}`, `vni-shared:${vni}`));
    }
  }
  for (const [vlan, owners] of [...vlans.entries()].sort(([a], [b]) => a - b)) {
    if (owners.length > 1) {
      findings.push(finding('high', { segmentId: owners[0] }, `VLAN ${vlan} carried by segments ${owners.join(', ')}`, `vlan-shared:${vlan}`));
    }
  }
  let n = 0;
  for (const port of yield* sortedPorts(world)) {
    if (pause(++n)) {
      yield;
    }
    const segment = segments.get(port.segmentId);
    if (!segment) {
      findings.push(finding('high', { portId: port.id, segmentId: port.segmentId }, `port ${port.id} is on segment ${port.segmentId}, which does not exist`, 'segment-missing'));
    } else if (segment.tenantId !== port.tenantId) {
      findings.push(finding('high', { portId: port.id, segmentId: segment.id }, `port ${port.id} of tenant ${port.tenantId} is on segment ${segment.id} of tenant ${segment.tenantId}`, 'segment-other-tenant'));
    }
    for (const groupId of port.securityGroupIds ?? []) {
      const group = securityGroups.get(groupId);
      if (group && group.tenantId !== port.tenantId) {
        findings.push(finding('high', { portId: port.id, securityGroupId: groupId }, `port ${port.id} of tenant ${port.tenantId} is in security group ${groupId} of tenant ${group.tenantId}`, 'group-other-tenant'));
      }
    }
  }
  for (const group of byId(securityGroups.values())) {
    for (const rule of group.rules) {
      const remote = rule.remoteGroupId ? securityGroups.get(rule.remoteGroupId) : undefined;
      if (remote && remote.tenantId !== group.tenantId) {
        findings.push(finding('high', { securityGroupId: group.id, tenantId: group.tenantId }, `rule ${rule.id} of group ${group.id} (tenant ${group.tenantId}) admits members of group ${remote.id} of tenant ${remote.tenantId}`, `peer-group-other-tenant:${rule.id}`));
      }
    }
  }
  return { applicable: true, findings };
}

/**
 * VM-VN-R3: the overlay modules are configured by the controller. Every host's agent connected,
 * in sync and without a refused change; a host whose agent never connected is unknown; one that
 * is disconnected or refused a change fails (medium) when it holds ports, is low otherwise.
 */
export function* checkVnR3(world: AuditWorld): CheckRun {
  const hosts = sortedHosts(world.view.hosts);
  if (hosts.length === 0) {
    return { applicable: false, findings: [] };
  }
  const withPorts = new Set<string>();
  let n = 0;
  for (const port of world.view.ports.values()) {
    localHostsOf(port).forEach((h) => withPorts.add(h));
    if (pause(++n)) {
      yield;
    }
  }
  const findings: CheckFinding[] = [];
  for (const host of hosts) {
    if (pause(++n)) {
      yield;
    }
    const agent = world.agents.get(host.id);
    const subject = { hostId: host.id };
    const weight = withPorts.has(host.id) ? 'medium' : 'low';
    if (!agent || neverHeardFrom(world, host.id)) {
      findings.push(finding('unknown', subject, `host ${host.name}: nothing ever heard from its agent (never connected, never reported)`, 'agent-never-heard'));
      continue;
    }
    if (!agent.connected) {
      findings.push(finding(weight, subject, `host ${host.name}: agent disconnected (last acknowledged revision ${agent.appliedRevision})`, 'agent-disconnected'));
    } else if (agent.lag > 0) {
      findings.push(finding('low', subject, `host ${host.name}: agent ${agent.lag} revision(s) behind (acknowledged ${agent.appliedRevision})`, 'agent-behind'));
    }
    if (agent.lastError) {
      findings.push(finding(weight, subject, `host ${host.name}: agent refused a change: ${agent.lastError}`, 'agent-refused'));
    }
  }
  return { applicable: true, findings };
}
