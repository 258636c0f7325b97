import type { Host } from '../model/host';
import type { MirrorSession } from '../model/mirror-session';
import type { Port } from '../model/port';
import type { SecurityGroup } from '../model/security-group';
import type { Segment } from '../model/segment';
import type { Tenant } from '../model/tenant';

/** Read access to one state (the current one, or one rewound to before some records), as span computations need it. */
export interface SpanSource {
  port(id: string): Port | undefined;
  host(id: string): Host | undefined;
  segment(id: string): Segment | undefined;
  securityGroup(id: string): SecurityGroup | undefined;
  tenant(id: string): Tenant | undefined;
  mirrorSession(id: string): MirrorSession | undefined;
}

/** A state whose bound ports and hosts per segment are indexed (the current one). */
export interface IndexedSpanSource extends SpanSource {
  /** Ids of the segment's ports that are bound to a host. */
  boundPorts(segmentId: string): ReadonlySet<string>;
  /** Hosts whose span holds the segment (local ports on it, bound or prepared), with how many each: also its flood list. */
  hostCounts(segmentId: string): ReadonlyMap<string, number>;
}

/** A port bound to a host: the only ports spans hold. */
export const isBound = (port: Port | undefined): port is Port & { hostId: string } => port !== undefined && port.hostId !== null;
