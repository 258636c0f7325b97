/*
 * The deployment the sync and scale benchmarks build (segments of bound ports, hosts each on a few
 * segments, optionally one big host on every segment), and what they expect every span to be.
 */

export interface LayoutShape {
  segments: number;
  /** Hosts with ports on a few segments each (indexes 0 .. regularHosts - 1). */
  regularHosts: number;
  portsPerSegment: number;
  /** Regular hosts per segment: consecutive ones (mod regularHosts), so each host is on about this many segments. */
  hostsPerSegment: number;
  /** One more host (index regularHosts) with port 0 of every segment. */
  bigHost: boolean;
  /** Regular hosts given a port in group R (the sync bench's membership phase). */
  refHosts: number;
  /** Host names are `<name>-hv-NNNN` (`<name>-big` for the big host). */
  name: string;
}

const hex2 = (v: number): string => (v & 0xff).toString(16).padStart(2, '0');
const macOf = (group: number, n: number): string => `02:${hex2(group)}:${hex2(n >>> 24)}:${hex2(n >>> 16)}:${hex2(n >>> 8)}:${hex2(n)}`;

export class Layout {
  tenantId = '';
  readonly segmentIds: string[] = [];
  /**
   * Every port's security group: CIDR rules only. The tenant's default group ("ingress from the
   * same group") would make every host hold every port's address as an IP-set member: a
   * different benchmark (membership fan-out), not this one.
   */
  groupIds: string[] = [];
  /** G (10,000 members), G1k (1,000 members) and R (rules with remoteGroupId G and G1k); unset (''), fill ports join only groupIds. */
  memberGroupId = '';
  smallGroupId = '';
  peerGroupId = '';
  /** The regular hosts given a port in R, spread over the index range. */
  readonly refHosts: number[];
  readonly hostIds: string[] = [];
  /** Bound ports per segment (the span of each of its hosts holds all of them). */
  readonly bound: Int32Array;
  /** The big host's index (-1 without one); agents and hosts share indexes. */
  readonly big: number;
  readonly agents: number;
  /** Next free host number in each segment's /24 (.1 to .254). */
  private readonly nextIp: Int32Array;
  private macSeq = 0;

  constructor(readonly shape: LayoutShape) {
    if (shape.segments > 65_536 || shape.regularHosts + 1 > 250 * 250) {
      throw new Error('layout: at most 65,536 segments (a /24 each in 10.0.0.0/8 below 10.250) and 62,499 hosts');
    }
    this.refHosts = Array.from({ length: shape.refHosts }, (_, k) => k * Math.floor(shape.regularHosts / Math.max(1, shape.refHosts)));
    this.bound = new Int32Array(shape.segments);
    this.nextIp = new Int32Array(shape.segments).fill(1);
    this.big = shape.bigHost ? shape.regularHosts : -1;
    this.agents = shape.regularHosts + (shape.bigHost ? 1 : 0);
  }

  get ports(): number {
    return this.shape.segments * this.shape.portsPerSegment;
  }

  hostName(h: number): string {
    return h === this.big ? `${this.shape.name}-big` : `${this.shape.name}-hv-${String(h).padStart(4, '0')}`;
  }

  vtepIp(h: number): string {
    return `10.250.${Math.floor(h / 250)}.${(h % 250) + 1}`;
  }

  /** The regular hosts with ports on segment s: consecutive ones (mod regularHosts), so each host is on ~hostsPerSegment segments. */
  regularHostsOf(s: number): number[] {
    const { hostsPerSegment, regularHosts } = this.shape;
    return Array.from({ length: hostsPerSegment }, (_, m) => (s * hostsPerSegment + m) % regularHosts);
  }

  /** Every host whose span holds segment s: its regular hosts and the big host. */
  hostsOf(s: number): number[] {
    return this.big < 0 ? this.regularHostsOf(s) : [...this.regularHostsOf(s), this.big];
  }

  nextAddress(s: number): string {
    const k = this.nextIp[s]++;
    if (k > 254) {
      throw new Error(`segment ${s}: its /24 is full`);
    }
    return `10.${s >> 8}.${s & 255}.${k}`;
  }

  cidr(s: number): string {
    return `10.${s >> 8}.${s & 255}.0/24`;
  }

  nextMac(): string {
    return macOf(2, this.macSeq++);
  }

  /** The host of port j of segment s in the initial fill: j = 0 on the big host (if any), the rest spread over the segment's regular hosts. */
  fillHost(s: number, j: number): number {
    if (this.big < 0) {
      return this.regularHostsOf(s)[j % this.shape.hostsPerSegment];
    }
    return j === 0 ? this.big : this.regularHostsOf(s)[(j - 1) % this.shape.hostsPerSegment];
  }

  /** The groups of fill port j: G for j % 10 === 5, G1k for j === 3 (when those groups exist), besides the CIDR-only group. */
  fillGroups(j: number): string[] {
    if (j % 10 === 5 && this.memberGroupId) {
      return [...this.groupIds, this.memberGroupId];
    }
    return j === 3 && this.smallGroupId ? [...this.groupIds, this.smallGroupId] : this.groupIds;
  }

  /** The MAC of fill port n (= segment * portsPerSegment + j). */
  fillMac(n: number): string {
    return macOf(1, n);
  }

  fillPort(s: number, j: number): { segmentId: string; vmId: string; mac: string; ips: string[]; hostId: string; securityGroupIds: string[] } {
    const n = s * this.shape.portsPerSegment + j;
    return { segmentId: this.segmentIds[s], vmId: `vm-${n}`, mac: this.fillMac(n), ips: [this.nextAddress(s)], hostId: this.hostIds[this.fillHost(s, j)], securityGroupIds: this.fillGroups(j) };
  }

  /** Span size (segments + bound ports of those segments) expected for every host. */
  expectedSpans(): Int32Array {
    const out = new Int32Array(this.agents);
    for (let s = 0; s < this.shape.segments; s++) {
      for (const h of this.hostsOf(s)) {
        out[h] += 1 + this.bound[s];
      }
    }
    return out;
  }
}
