import { Inject, Injectable } from '@nestjs/common';
import { ControllerConfig } from '../config';
import { HostObservationRepository } from '../distribution/host-observation.repository';
import { ErrorCode, OverlayError } from '../errors';
import { HostRepository } from '../hosts/host.repository';
import { SegmentRepository } from '../segments/segment.repository';
import { evidenceOf } from './audit.types';
import { trunksOf } from './checks/trunks';

/** A port about to be bound to a host: by a create, a rebind, or a migration's prepare. `field` names the host in the request. */
export interface Binding {
  segmentId: string;
  hostId: string | null;
  field: string;
}

/**
 * Strict VLAN trunks (OVERLAY_STRICT_VLAN_TRUNKS=1): the audit's VM-VN-R1 as a pre-flight check.
 * A port of a VLAN segment is not bound, nor its migration prepared, onto a host whose switch
 * ports do not all carry the segment's VLAN (trunks.ts: observed by LLDP, else declared), nor
 * onto one whose trunks nobody knows: strict means verified. 409 VLAN_NOT_TRUNKED, nothing
 * changed. Checked before the write from what Redis holds then: a trunk that changes during
 * the write is the audit's to report.
 */
@Injectable()
export class StrictTrunks {
  /** OVERLAY_STRICT_VLAN_TRUNKS: when off, callers may skip making the bindings (check does nothing). */
  readonly enabled: boolean;

  constructor(
    @Inject(ControllerConfig) config: ControllerConfig,
    private readonly segments: SegmentRepository,
    private readonly hosts: HostRepository,
    private readonly observations: HostObservationRepository,
  ) {
    this.enabled = config.strictVlanTrunks;
  }

  /** Refuses the first binding (in the given order) onto a host that does not carry its segment's VLAN; does nothing when off. */
  async check(bindings: readonly Binding[]): Promise<void> {
    const bound = bindings.filter((b): b is Binding & { hostId: string } => b.hostId !== null);
    if (!this.enabled || bound.length === 0) {
      return;
    }
    const segmentIds = [...new Set(bound.map((b) => b.segmentId))];
    const vlans = new Map((await this.segments.getMany(segmentIds)).map((s, i) => [segmentIds[i], s?.vlanId ?? null]));
    const onVlans = bound.filter((b) => vlans.get(b.segmentId) !== null);
    if (onVlans.length === 0) {
      return;
    }
    const hostIds = [...new Set(onVlans.map((b) => b.hostId))];
    const [hosts, observed] = await Promise.all([this.hosts.getMany(hostIds), this.observations.read(hostIds)]);
    const byId = new Map(hostIds.map((id, i) => [id, hosts[i]]));
    for (const b of onVlans) {
      const host = byId.get(b.hostId);
      // A host that does not exist is the write's to refuse (HOST_NOT_FOUND).
      if (!host) {
        continue;
      }
      const vlan = vlans.get(b.segmentId)!;
      const stored = observed.get(host.id);
      const trunks = trunksOf(host, stored ? evidenceOf(stored) : undefined);
      if (trunks === null) {
        throw new OverlayError(
          ErrorCode.VlanNotTrunked,
          `segment ${b.segmentId} is on VLAN ${vlan} and host ${host.name}'s trunks are unknown (no LLDP VLANs observed, none declared in its inventory's trunkedVlans): strict VLAN trunks bind only where the VLAN is known to be carried`,
          { field: b.field },
        );
      }
      const lacking = trunks.find((t) => !t.vlans.has(vlan));
      if (lacking) {
        const carried = [...lacking.vlans].sort((x, y) => x - y).join(', ') || 'no VLAN';
        throw new OverlayError(
          ErrorCode.VlanNotTrunked,
          `segment ${b.segmentId} is on VLAN ${vlan}, which ${lacking.link ? `${lacking.link}'s switch port` : 'the trunk'} of host ${host.name} does not carry (it carries ${carried}; ${lacking.source})`,
          { field: b.field },
        );
      }
    }
  }
}
