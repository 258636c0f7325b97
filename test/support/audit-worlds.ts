import type { AgentEvidence, AuditWorld, HostEvidence } from '../../src/controller/audit/audit.types';
import type { Host, Uplink } from '../../src/controller/model/host';
import type { MirrorSession, MirrorSource } from '../../src/controller/model/mirror-session';
import type { ObservedInventory, ObservedLink, ObservedTeam } from '../../src/controller/model/observed-inventory';
import type { Port } from '../../src/controller/model/port';
import { defaultSecurityGroup, type SecurityGroup } from '../../src/controller/model/security-group';
import type { Segment } from '../../src/controller/model/segment';
import { emptyViewState } from '../../src/controller/store/view-state';

/**
 * Hand-built audit worlds for the golden tests of the checks: small builders for the desired
 * state (hosts with declared inventory, segments, ports, groups, sessions), observed inventories
 * and agents, with fixed ids and times so that the findings are stable.
 */
export const T0 = '2026-01-01T00:00:00.000Z';
export const OBSERVED_AT = Date.parse('2026-01-01T00:05:00.000Z');

export class WorldBuilder {
  readonly view = emptyViewState();
  readonly evidence = new Map<string, HostEvidence>();
  readonly agents = new Map<string, AgentEvidence>();
  private rules = 0;

  constructor() {
    this.view.revision = 42;
  }

  tenant(id: string): this {
    const groupId = `${id}-default`;
    this.view.tenants.set(id, { id, name: id, maxSegments: null, defaultSecurityGroupId: groupId, createdAt: T0 });
    this.view.securityGroups.set(groupId, defaultSecurityGroup(groupId, id, T0, () => `${groupId}-r${++this.rules}`));
    return this;
  }

  group(group: Partial<SecurityGroup> & Pick<SecurityGroup, 'id' | 'tenantId' | 'rules'>): this {
    this.view.securityGroups.set(group.id, { name: group.id, description: null, isDefault: false, createdAt: T0, updatedAt: T0, ...group });
    return this;
  }

  segment(id: string, tenantId: string, vni: number, vlanId: number | null = null): this {
    const segment: Segment = { id, tenantId, name: id, vni, vlanId, cidr: null, createdAt: T0 };
    this.view.segments.set(id, segment);
    return this;
  }

  host(id: string, uplinks: Partial<Uplink>[] = [], trunkedVlans: number[] = []): this {
    const host: Host = {
      id,
      name: id,
      vtepIp: `192.0.2.${this.view.hosts.size + 1}`,
      inventory: { uplinks: uplinks.map((u) => ({ name: 'eth0', driver: null, pciAddress: null, switch: null, switchPort: null, team: null, mode: null, failureDetection: null, ...u })), trunkedVlans },
      createdAt: T0,
      updatedAt: T0,
    };
    this.view.hosts.set(id, host);
    return this;
  }

  /** A connected, in-sync agent (unless told otherwise). */
  agent(hostId: string, fields: Partial<AgentEvidence> = {}): this {
    this.agents.set(hostId, { connected: true, appliedRevision: 42, lag: 0, lastError: null, ...fields });
    return this;
  }

  observe(hostId: string, fields: Partial<HostEvidence> = {}): this {
    this.evidence.set(hostId, { observedAt: OBSERVED_AT, taps: [], bridges: [], inventory: null, ...fields });
    return this;
  }

  port(id: string, segmentId: string, hostId: string | null, fields: Partial<Port> = {}): this {
    const segment = this.view.segments.get(segmentId)!;
    this.view.ports.set(id, {
      id,
      segmentId,
      tenantId: segment.tenantId,
      vmId: null,
      mac: '02:00:00:00:00:01',
      ips: [],
      hostId,
      securityGroupIds: [],
      portSecurity: true,
      allowedAddressPairs: [],
      role: 'vm',
      migration: null,
      createdAt: T0,
      updatedAt: T0,
      ...fields,
    });
    return this;
  }

  session(id: string, tenantId: string, sources: MirrorSource[], sink: MirrorSession['sink'], vni: number, enabled = true): this {
    this.view.mirrorSessions.set(id, { id, tenantId, name: id, enabled, sources, sink, filter: null, snapLength: null, vni, createdAt: T0, updatedAt: T0 });
    return this;
  }

  build(): AuditWorld {
    return { view: this.view, evidence: this.evidence, agents: this.agents };
  }
}

/** A physical NIC as the agent reports it. */
export function nic(name: string, fields: { driver?: string | null; pci?: string | null; switch?: string | null; port?: string; vlans?: number[]; master?: string | null; up?: boolean; lldp?: boolean; ignoreLinkdown?: boolean | null } = {}): ObservedLink {
  const pci = fields.pci ?? null;
  return {
    name,
    kind: 'physical',
    up: fields.up ?? true,
    master: fields.master ?? null,
    team: null,
    nic: { driver: fields.driver ?? null, pciAddress: pci, pciBus: pci ? pci.slice(0, 7) : null, numaNode: 0, ignoreRoutesWithLinkdown: fields.ignoreLinkdown ?? true },
    lldp: fields.lldp === false || fields.switch === undefined ? null : { chassisId: `chassis-${fields.switch}`, systemName: fields.switch, portId: fields.port ?? 'Ethernet1', portDescription: null, vlans: fields.vlans ?? [] },
    vlanId: null,
    parent: null,
  };
}

export function bond(name: string, team: Partial<ObservedTeam> & Pick<ObservedTeam, 'members'>): ObservedLink {
  return { name, kind: 'bond', up: true, master: null, team: { mode: 'active-backup', miimon: 100, arpInterval: 0, arpValidate: null, ...team }, nic: null, lldp: null, vlanId: null, parent: null };
}

export function device(name: string, kind: ObservedLink['kind']): ObservedLink {
  return { name, kind, up: true, master: null, team: null, nic: null, lldp: null, vlanId: null, parent: null };
}

export function inventory(links: ObservedLink[], vtepDevice: string | null, vtepRoutes: ObservedInventory['vtepRoutes'] = []): ObservedInventory {
  return { links, vtepDevice, vtepRoutes };
}
