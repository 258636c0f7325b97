/**
 * A mirror session (NIST SP 800-125B VM-TM-R1..R3): copies of what some ports send and/or
 * receive go to one sink, an analyzer port, a physical NIC of a host, or a remote collector over
 * VXLAN or ERSPAN. Sources and sink belong to the session's tenant. The copies travel between
 * hosts under the session's own VNI, taken from the segments' allocator (never a segment's,
 * quarantined alike when released). Every session has one, an ERSPAN one too (its copies go
 * straight from each source host to the collector and never use it: one rule for all sessions is
 * simpler than a session without a VNI).
 */
export interface MirrorSession {
  id: string;
  tenantId: string;
  name: string;
  /** A disabled session is kept, and programmed nowhere. */
  enabled: boolean;
  sources: MirrorSource[];
  sink: MirrorSink;
  /** Null = every frame. */
  filter: MirrorFilter | null;
  /** Bytes kept of each copy; null = whole frames. */
  snapLength: number | null;
  /** The mirror VNI (for a `vxlan` sink, the one it names; unused on the wire by an `erspan` sink). */
  vni: number;
  createdAt: string;
  updatedAt: string;
}

/**
 * Directions are the VM's, as in security group rules: `ingress` is what the VM receives,
 * `egress` what it sends.
 */
export type MirrorDirection = 'ingress' | 'egress' | 'both';

export interface MirrorSource {
  portId: string;
  direction: MirrorDirection;
}

export type MirrorSink =
  /** An analyzer port (role `analyzer`) of the tenant, on any host. */
  | { type: 'port'; portId: string }
  /** A remote collector: VXLAN to `remoteIp`:`udpPort` under `vni` (the session's). */
  | { type: 'vxlan'; remoteIp: string; vni: number; udpPort: number }
  /** A physical NIC of a host, cabled to a physical analyzer. */
  | { type: 'uplink'; hostId: string; interface: string }
  /**
   * A remote collector over ERSPAN (GRE) type II (`version` 1) or III (2), where the hosts'
   * kernels have it: `erspanId` is the ERSPAN session ID (10 bits) the collector tells sessions by.
   */
  | { type: 'erspan'; remoteIp: string; erspanId: number; version: ErspanVersion };

export type ErspanVersion = 1 | 2;
/** ERSPAN's session ID is 10 bits; 0 is left out (a collector may read it as "none"). */
export const ERSPAN_ID_MIN = 1;
export const ERSPAN_ID_MAX = 1023;

export interface MirrorFilter {
  /** Null = any (then protocol and remoteCidr are null too). */
  ethertype: 'IPv4' | 'IPv6' | null;
  /** An IP protocol number; null = any. */
  protocol: number | null;
  /** The peer's prefix, of the ethertype's family; null = any. */
  remoteCidr: string | null;
}

/** The VXLAN port copies travel to between hosts (a sink host's mirror device listens on it). */
export const MIRROR_UDP_PORT = 4789;

/** Whether a session copies what its source receives / sends. */
export const copiesIngress = (d: MirrorDirection): boolean => d !== 'egress';
export const copiesEgress = (d: MirrorDirection): boolean => d !== 'ingress';
