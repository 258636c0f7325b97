import type { Host } from '../../model/host';
import { finding, iso, type AuditWorld, type CheckResult, type CheckFinding, type HostEvidence } from '../audit.types';
import { describe, hostPciBuses, linksOf, lldpSwitch, pciBusOf, sortedHosts, teamsOf, teamUnder, vtepIsRouted, vtepUplinks, type Team, type TeamMember } from './inventory';

/**
 * Multipathing (VM-MP-R1..R3): a host's NIC teams, observed (else declared), and whether their
 * members fail apart: on different drivers (R1), PCI buses (R2) and upstream switches (R3). R3
 * also holds what makes a team redundant at all (two members, a standby, link failure detection,
 * ARP validation, the VTEP's traffic over the team or, routed, over two uplinks) and the uplinks
 * declared but not observed. Each of R1..R3 reports the declared values the agent contradicts.
 */

type Attr = 'driver' | 'pciBus' | 'switch';

const neverReported = (host: Host): CheckFinding =>
  finding('unknown', { hostId: host.id }, `host ${host.name} has declared teams but its agent has sent no observed inventory: checked on the declaration alone`, 'no-inventory');

/** One attribute of every team member must differ (R1: driver, R2: PCI bus, R3: switch). */
function spreadFindings(host: Host, team: Team, what: Attr, label: string, sharedSeverity: 'medium' | 'info'): CheckFinding[] {
  const out: CheckFinding[] = [];
  const unknown = team.members.filter((m) => m[what].value === null);
  if (unknown.length) {
    out.push(finding('unknown', { hostId: host.id, link: team.name }, `team ${team.name}: ${label} of ${unknown.map((m) => m.name).join(', ')} unknown (neither observed nor declared)`, `${what}-unknown`));
  }
  if (team.members.length >= 2) {
    const groups = new Map<string, TeamMember[]>();
    for (const m of team.members) {
      if (m[what].value !== null) {
        groups.set(m[what].value, [...(groups.get(m[what].value) ?? []), m]);
      }
    }
    for (const [value, members] of groups) {
      if (members.length >= 2) {
        out.push(
          finding(sharedSeverity, { hostId: host.id, link: team.name }, `team ${team.name}: ${members.map((m) => `${m.name} ${describe(m[what])}`).join(', ')} share ${label} ${value}`, `same-${what}:${value}`),
        );
      }
    }
  }
  return out;
}

/** Declared values the observed inventory contradicts, for one attribute. */
function mismatches(host: Host, evidence: HostEvidence | undefined, what: Attr, label: string): CheckFinding[] {
  const inventory = evidence?.inventory;
  if (!inventory) {
    return [];
  }
  const links = linksOf(inventory);
  const out: CheckFinding[] = [];
  for (const uplink of host.inventory.uplinks) {
    const link = links.get(uplink.name);
    if (!link) {
      continue;
    }
    const declared = what === 'driver' ? uplink.driver : what === 'pciBus' ? uplink.pciAddress : uplink.switch;
    const observed = what === 'driver' ? link.nic?.driver : what === 'pciBus' ? (link.nic?.pciAddress ?? link.nic?.pciBus) : lldpSwitch(link);
    if (!declared || !observed) {
      continue;
    }
    const differ =
      what === 'pciBus'
        ? (pciBusOf(declared) ?? declared) !== (link.nic?.pciBus ?? pciBusOf(observed) ?? observed)
        : what === 'switch'
          ? declared !== observed && declared !== link.lldp?.chassisId && declared !== link.lldp?.systemName
          : declared !== observed;
    if (differ) {
      const shown = (v: string): string => (what === 'pciBus' && pciBusOf(v) ? `${v} (bus ${pciBusOf(v)})` : v);
      out.push(finding('medium', { hostId: host.id, link: uplink.name }, `${uplink.name}: declared ${what === 'pciBus' ? 'PCI address' : label} ${shown(declared)}, observed ${shown(observed)} (at ${iso(evidence.observedAt)})`, `declared-${what}-differs`));
    }
  }
  return out;
}

function perTeamCheck(world: AuditWorld, what: Attr, label: string, extra?: (host: Host, team: Team, evidence: HostEvidence | undefined) => CheckFinding[]): CheckResult {
  let applicable = false;
  const findings: CheckFinding[] = [];
  for (const host of sortedHosts(world.view.hosts)) {
    const evidence = world.evidence.get(host.id);
    const teams = teamsOf(host, evidence);
    if (teams.length) {
      applicable = true;
      if (!evidence?.inventory) {
        findings.push(neverReported(host));
      }
    }
    for (const team of teams) {
      findings.push(...(extra ? extra(host, team, evidence) : spreadFindings(host, team, what, label, 'medium')));
    }
    findings.push(...mismatches(host, evidence, what, label));
  }
  return { applicable, findings };
}

/** VM-MP-R1: a team's NICs on different drivers. */
export const checkMpR1 = (world: AuditWorld): CheckResult => perTeamCheck(world, 'driver', 'driver');

/** VM-MP-R2: a team's NICs on different PCI buses, where the host has several. */
export const checkMpR2 = (world: AuditWorld): CheckResult =>
  perTeamCheck(world, 'pciBus', 'PCI bus', (host, team, evidence) => {
    const buses = hostPciBuses(host, evidence);
    return spreadFindings(host, team, 'pciBus', 'PCI bus', buses.size >= 2 ? 'medium' : 'info').map((f) =>
      f.severity === 'info' ? { ...f, evidence: `${f.evidence}; the host has one PCI bus (${[...buses].join(', ') || 'none known'}): nothing else to choose` } : f,
    );
  });

/** What makes a team redundant at all. */
function redundancyFindings(host: Host, team: Team): CheckFinding[] {
  const subject = { hostId: host.id, link: team.name };
  const out: CheckFinding[] = [];
  if (team.members.length < 2) {
    out.push(finding('medium', subject, `team ${team.name} has ${team.members.length} member(s) (${team.members.map((m) => m.name).join(', ') || 'none'}): no second path`, 'single-member'));
  }
  const down = team.members.filter((m) => m.up === false);
  if (down.length) {
    out.push(finding('medium', subject, `team ${team.name}: member(s) ${down.map((m) => m.name).join(', ')} down (observed)`, 'member-down'));
  }
  // Routed redundancy fails over on a cut cable only if the kernel skips a nexthop without carrier.
  const kept = team.source === 'routed' ? team.members.filter((m) => m.ignoresLinkdownRoutes === false) : [];
  if (kept.length) {
    out.push(
      finding(
        'high',
        subject,
        `team ${team.name}: routes over ${kept.map((m) => m.name).join(', ')} stay in use when the link loses its carrier (net.ipv4.conf ignore_routes_with_linkdown 0, observed): a cut cable loses the flows hashed to it`,
        'linkdown-routes-kept',
      ),
    );
  }
  const monitor = team.monitor;
  if (monitor) {
    if (monitor.mode === 'active-backup' && team.members.length >= 2 && team.members.every((m) => m.active !== false)) {
      out.push(finding('medium', subject, `team ${team.name} is active-backup with no member in standby (${team.members.map((m) => m.name).join(', ')} all active)`, 'no-standby'));
    }
    if (monitor.miimon === 0 && monitor.arpInterval === 0) {
      out.push(finding('high', subject, `team ${team.name}: no link failure detection (miimon 0, no ARP monitor)`, 'no-failure-detection'));
    } else if (monitor.arpInterval > 0 && (monitor.arpValidate === null || monitor.arpValidate === 'none' || monitor.arpValidate === '0')) {
      out.push(finding('medium', subject, `team ${team.name}: ARP monitor every ${monitor.arpInterval} ms without validation (arp_validate ${monitor.arpValidate ?? 'unset'})`, 'arp-unvalidated'));
    }
  } else if (team.source === 'declared' && team.members.length >= 2 && team.members.every((m) => m.declaredMode === 'standby')) {
    out.push(finding('medium', subject, `team ${team.name} (declared): every member standby, none active`, 'no-active'));
  }
  return out;
}

/** Where the VTEP's traffic leaves the host: over a team, or routed over two uplinks; over one NIC is a finding. */
function vtepFindings(host: Host, evidence: HostEvidence, teams: Team[]): CheckFinding[] {
  const inventory = evidence.inventory!;
  const links = linksOf(inventory);
  const subject = { hostId: host.id, ...(inventory.vtepDevice ? { link: inventory.vtepDevice } : {}) };
  if (inventory.vtepDevice === null && inventory.vtepRoutes.length === 0) {
    return [finding('unknown', { hostId: host.id }, `host ${host.name}: the VTEP's device and routes were not observed`, 'vtep-unknown')];
  }
  const uplinks = vtepUplinks(inventory, links);
  const routes = inventory.vtepRoutes.map((r) => `${r.destination} via ${r.devices.join('+') || 'nothing'}`).join('; ');
  const seen = `VTEP on ${inventory.vtepDevice ?? 'unknown device'}${routes ? `, routes ${routes}` : ''}, leaving through ${uplinks.join(', ') || 'no physical NIC'}`;
  if (uplinks.length >= 2) {
    return [];
  }
  const realTeams = teams.filter((t) => t.source === 'observed' && t.members.length >= 2).map((t) => t.name);
  const through = inventory.vtepDevice ? teamUnder(inventory.vtepDevice, links) : null;
  const why = vtepIsRouted(inventory, links) ? 'routed redundancy needs routes over two uplinks or more' : realTeams.length && through === null ? `not over the team (${realTeams.join(', ')})` : 'one path only';
  return [finding('medium', subject, `${seen}: ${why}`, 'vtep-one-path')];
}

/** VM-MP-R3: a team's NICs on different switches, the team redundant, the VTEP over it, the declared uplinks present. */
export function checkMpR3(world: AuditWorld): CheckResult {
  let applicable = false;
  const findings: CheckFinding[] = [];
  for (const host of sortedHosts(world.view.hosts)) {
    const evidence = world.evidence.get(host.id);
    const teams = teamsOf(host, evidence);
    if (teams.length || evidence?.inventory) {
      applicable = true;
    }
    if (teams.length && !evidence?.inventory) {
      findings.push(neverReported(host));
    }
    for (const team of teams) {
      findings.push(...spreadFindings(host, team, 'switch', 'switch', 'medium'), ...redundancyFindings(host, team));
    }
    if (evidence?.inventory) {
      findings.push(...vtepFindings(host, evidence, teams));
      const links = linksOf(evidence.inventory);
      for (const uplink of host.inventory.uplinks) {
        if (!links.has(uplink.name)) {
          findings.push(finding('medium', { hostId: host.id, link: uplink.name }, `declared uplink ${uplink.name}${uplink.team ? ` (team ${uplink.team})` : ''} not observed on the host (at ${iso(evidence.observedAt)})`, 'uplink-absent'));
        }
      }
    }
    findings.push(...mismatches(host, evidence, 'switch', 'switch'));
  }
  return { applicable, findings };
}
