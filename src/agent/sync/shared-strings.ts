import type { FirewallRule__Output } from '../../generated/overlay/v1/FirewallRule';
import type { IpSetMember__Output } from '../../generated/overlay/v1/IpSetMember';
import type { Port__Output } from '../../generated/overlay/v1/Port';
import type { PortPolicy__Output } from '../../generated/overlay/v1/PortPolicy';
import type { Resource__Output } from '../../generated/overlay/v1/Resource';
import type { Segment__Output } from '../../generated/overlay/v1/Segment';
import type { SpanMaps } from '../../common/span/span-kinds';

/**
 * One copy of each string that many resources of the desired state repeat: a port's segment, host
 * and VTEP, a member's group and family, a rule's ethertype, protocol, remote CIDR and group, a
 * segment's VTEPs. Decoding (protobuf, or the state file's JSON) makes a new string for every
 * field of every resource: at 1,000 local and 10,000 remote ports in 10 groups, about 3 MB of the
 * agent's 12 MB desired state were copies of the same few hundred values. Fields that differ from
 * resource to resource (ids, MACs, addresses) are left as decoded: a pool of them would cost more
 * than it saves.
 *
 * `share` replaces those fields of a resource in place, so it is for resources just decoded and
 * not yet stored. The pool only grows (with the distinct values seen: segments, hosts, groups,
 * CIDRs of rules); `clear` it when the whole state is replaced.
 */
export class SharedStrings {
  private readonly pool = new Map<string, string>();

  /** The pool's copy of `text` (which becomes the copy when it has none). */
  of(text: string): string {
    if (typeof text !== 'string' || text === '') {
      return text;
    }
    const have = this.pool.get(text);
    if (have !== undefined) {
      return have;
    }
    this.pool.set(text, text);
    return text;
  }

  get size(): number {
    return this.pool.size;
  }

  clear(): void {
    this.pool.clear();
  }

  /** A received resource, whatever its kind (kinds without repeated fields are left as they are). */
  share(resource: Resource__Output): void {
    if (resource.port) {
      this.port(resource.port);
    }
    if (resource.member) {
      this.member(resource.member);
    }
    if (resource.policy) {
      this.policy(resource.policy);
    }
    if (resource.segment) {
      this.segment(resource.segment);
    }
  }

  /** Every resource of `maps` (a state read from the file). */
  shareMaps(maps: SpanMaps): void {
    maps.ports.forEach((p) => this.port(p));
    maps.members.forEach((m) => this.member(m));
    maps.policies.forEach((p) => this.policy(p));
    maps.segments.forEach((s) => this.segment(s));
  }

  private port(p: Port__Output): void {
    p.segmentId = this.of(p.segmentId);
    p.hostId = this.of(p.hostId);
    p.vtepIp = this.of(p.vtepIp);
    p.preparedHostId = this.of(p.preparedHostId);
    p.preparedVtepIp = this.of(p.preparedVtepIp);
  }

  private member(m: IpSetMember__Output): void {
    m.groupId = this.of(m.groupId);
    m.family = this.of(m.family);
  }

  private policy(p: PortPolicy__Output): void {
    const rule = (r: FirewallRule__Output) => {
      r.ethertype = this.of(r.ethertype);
      r.protocol = this.of(r.protocol);
      r.remoteCidr = this.of(r.remoteCidr);
      r.remoteGroupId = this.of(r.remoteGroupId);
    };
    p.ingress?.forEach(rule);
    p.egress?.forEach(rule);
  }

  private segment(s: Segment__Output): void {
    s.vteps?.forEach((vtep, i) => {
      s.vteps[i] = this.of(vtep);
    });
  }
}
