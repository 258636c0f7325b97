import type { Port } from '../src/controller/model/port';
import { newId } from '../src/controller/model/value-parsers';

/*
 * Port inputs for the benchmarks: segment n % segments, one IPv4 in the segment's /16, a MAC and
 * host derived from n, so every port is unique and valid without asking the controller to
 * generate anything.
 */

export interface PortInput {
  segmentId: string;
  vmId: string;
  mac: string;
  ips: string[];
  hostId: string;
}

export class PortFactory {
  private seq = 0;

  constructor(
    private readonly segments: { id: string; tenantId: string; index: number }[],
    private readonly hostIds: string[],
  ) {}

  next(): PortInput {
    const n = this.seq++;
    const segment = this.segments[n % this.segments.length];
    const k = Math.floor(n / this.segments.length) + 1; // 1.. : skips the network address
    if (k > 65_534) {
      throw new Error('port factory: a /16 has no more host addresses');
    }
    const hex = (v: number): string => (v & 0xff).toString(16).padStart(2, '0');
    return {
      segmentId: segment.id,
      vmId: `vm-${n}`,
      mac: `02:00:${hex(n >>> 24)}:${hex(n >>> 16)}:${hex(n >>> 8)}:${hex(n)}`,
      ips: [`10.${segment.index}.${k >> 8}.${k & 0xff}`],
      hostId: this.hostIds[n % this.hostIds.length],
    };
  }

  take(count: number): PortInput[] {
    return Array.from({ length: count }, () => this.next());
  }

  /** A full record, as PortService would build it, for the Lua-only diagnostic. */
  record(now: string): Port {
    const input = this.next();
    const segment = this.segments.find((s) => s.id === input.segmentId)!;
    return { id: newId(), segmentId: input.segmentId, tenantId: segment.tenantId, vmId: input.vmId, mac: input.mac, ips: input.ips, hostId: input.hostId, securityGroupIds: [], portSecurity: true, allowedAddressPairs: [], createdAt: now, updatedAt: now };
  }
}
