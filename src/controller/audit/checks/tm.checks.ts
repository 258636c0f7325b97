import { observedStatus } from '../../distribution/host-observation.repository';
import { localHostsOf } from '../../model/port';
import { type AuditWorld, byId, type CheckFinding, type CheckResult, type CheckRun, finding, iso, pause } from '../audit.types';
import { linksOf, sortedHosts } from './inventory';

/**
 * Traffic monitoring (VM-TM-R1..R3): mirror sessions copy both directions (R1), promiscuous
 * access is granted per analyzer port and never to a whole segment (R2), and copies go to a
 * destination meant for them: an analyzer port, a host's NIC or a remote collector (R3).
 */


/** VM-TM-R1: each source of an enabled session copied in both directions; one direction only is `low` (an operator may want it). */
export function checkTmR1(world: AuditWorld): CheckResult {
  const sessions = byId(world.view.mirrorSessions.values());
  const findings: CheckFinding[] = [];
  for (const session of sessions) {
    if (!session.enabled) {
      continue;
    }
    for (const source of session.sources) {
      if (source.direction !== 'both') {
        findings.push(finding('low', { sessionId: session.id, portId: source.portId }, `session ${session.name} copies only what port ${source.portId} ${source.direction === 'ingress' ? 'receives' : 'sends'} (direction ${source.direction})`, 'one-direction'));
      }
    }
  }
  return { applicable: sessions.length > 0, findings };
}

/**
 * VM-TM-R2: promiscuous access only where needed. From each host's last observation: a VM port's
 * tap promiscuous beyond its bridge (high), a segment's bridge in hub mode, flooding every frame
 * to every port (high). An analyzer's promiscuous tap is expected. A host holding ports whose
 * agent never reported is unknown.
 */
export function* checkTmR2(world: AuditWorld): CheckRun {
  const holding = new Set<string>();
  let n = 0;
  for (const port of world.view.ports.values()) {
    localHostsOf(port).forEach((h) => holding.add(h));
    if (pause(++n)) {
      yield;
    }
  }
  const findings: CheckFinding[] = [];
  for (const host of sortedHosts(world.view.hosts)) {
    if (pause(++n)) {
      yield;
    }
    if (!holding.has(host.id)) {
      continue;
    }
    const evidence = world.evidence.get(host.id);
    if (!evidence) {
      findings.push(finding('unknown', { hostId: host.id }, `host ${host.name} holds ports; its agent never reported its taps and bridges`, 'never-reported'));
      continue;
    }
    const status = observedStatus({ at: evidence.observedAt ?? 0, taps: evidence.taps, bridges: evidence.bridges, inventory: evidence.inventory }, world.view);
    const at = iso(evidence.observedAt);
    for (const p of status.promiscuousPorts) {
      if (p.role !== 'analyzer') {
        findings.push(finding('high', { hostId: host.id, portId: p.portId }, `port ${p.portId} (role ${p.role}) has a promiscuous tap on host ${host.name} (promiscuity ${p.promiscuity}, observed at ${at})`, 'promiscuous-tap'));
      }
    }
    for (const s of status.hubSegments) {
      findings.push(finding('high', { hostId: host.id, segmentId: s.segmentId }, `segment ${s.segmentId}'s bridge (VNI ${s.vni}) on host ${host.name} is in hub mode (ageing 0: every frame to every port, observed at ${at})`, 'hub-bridge'));
    }
  }
  return { applicable: holding.size > 0, findings };
}

/**
 * VM-TM-R3: a session's sink is a destination for copies: an analyzer port of its tenant (bound
 * somewhere), a host's physical NIC (observed on the host when the agent reported one), or a
 * remote collector (VXLAN or ERSPAN).
 */
export function checkTmR3(world: AuditWorld): CheckResult {
  const sessions = byId(world.view.mirrorSessions.values());
  const findings: CheckFinding[] = [];
  for (const session of sessions) {
    const sink = session.sink;
    const subject = { sessionId: session.id };
    switch (sink.type) {
      case 'port': {
        const port = world.view.ports.get(sink.portId);
        if (!port) {
          findings.push(finding('high', { ...subject, portId: sink.portId }, `session ${session.name}'s sink port ${sink.portId} does not exist`, 'sink-missing'));
        } else if ((port.role ?? 'vm') !== 'analyzer') {
          findings.push(finding('high', { ...subject, portId: port.id }, `session ${session.name}'s sink port ${port.id} is a VM port, not an analyzer`, 'sink-not-analyzer'));
        } else if (port.tenantId !== session.tenantId) {
          findings.push(finding('high', { ...subject, portId: port.id }, `session ${session.name} (tenant ${session.tenantId}) sends copies to port ${port.id} of tenant ${port.tenantId}`, 'sink-other-tenant'));
        } else if (port.hostId === null && session.enabled) {
          findings.push(finding('medium', { ...subject, portId: port.id }, `session ${session.name}'s analyzer port ${port.id} is bound to no host: the copies reach no analyzer`, 'sink-unbound'));
        }
        break;
      }
      case 'uplink': {
        const host = world.view.hosts.get(sink.hostId);
        const inventory = world.evidence.get(sink.hostId)?.inventory;
        if (!host) {
          findings.push(finding('high', { ...subject, hostId: sink.hostId }, `session ${session.name}'s sink host ${sink.hostId} does not exist`, 'sink-missing'));
        } else if (inventory) {
          const link = linksOf(inventory).get(sink.interface);
          if (!link) {
            findings.push(finding('medium', { ...subject, hostId: host.id, link: sink.interface }, `session ${session.name}'s sink ${sink.interface} not observed on host ${host.name}`, 'sink-nic-absent'));
          } else if (link.kind !== 'physical') {
            findings.push(finding('medium', { ...subject, hostId: host.id, link: sink.interface }, `session ${session.name}'s sink ${sink.interface} on host ${host.name} is a ${link.kind} device, not a physical NIC`, 'sink-not-nic'));
          }
        } else {
          findings.push(finding('info', { ...subject, hostId: host.id, link: sink.interface }, `session ${session.name}'s sink ${sink.interface} on host ${host.name}: no observed inventory to confirm the NIC`, 'sink-nic-unconfirmed'));
        }
        break;
      }
      case 'vxlan':
      case 'erspan':
        break;
    }
  }
  return { applicable: sessions.length > 0, findings };
}
