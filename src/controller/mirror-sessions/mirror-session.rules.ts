import { parseCidrText } from '../../common/ip';
import { ErrorCode, OverlayError } from '../errors';
import { MIRROR_UDP_PORT, type ErspanVersion, type MirrorFilter, type MirrorSink, type MirrorSource } from '../model/mirror-session';
import { PROTOCOL_NUMBERS } from '../model/security-group';
import type { FilterInput, SinkInput, SourceInput } from './mirror-session.schemas';

/**
 * A session's parts checked beyond their shape and brought to the stored form. What needs the
 * store (ports, their tenant and role, hosts, overlaps, the VNI) is checked by the store, in the write.
 */

/** Directions default to both; a port listed twice is refused. */
export function normalizeSources(inputs: SourceInput[]): MirrorSource[] {
  const seen = new Map<string, number>();
  return inputs.map((input, i) => {
    const first = seen.get(input.portId);
    if (first !== undefined) {
      throw new OverlayError(ErrorCode.InvalidValue, `sources[${i}].portId ${input.portId} is already sources[${first}]; give each port once, with direction both for both ways`, {
        field: `sources[${i}].portId`,
      });
    }
    seen.set(input.portId, i);
    return { portId: input.portId, direction: input.direction ?? 'both' };
  });
}

/**
 * The stored sink. `vni`: the session's VNI for a vxlan sink (a placeholder while the store
 * allocates it). An erspan sink's version defaults to 2 (type III). A port sink among the sources is refused (a port cannot receive its own copies),
 * naming the sink, or the source when the request changed only the sources (`sinkGiven` false).
 */
export function normalizeSink(input: SinkInput | MirrorSink, sources: MirrorSource[], vni: number, sinkGiven = true): MirrorSink {
  switch (input.type) {
    case 'port': {
      const i = sources.findIndex((s) => s.portId === input.portId);
      if (i >= 0) {
        const field = sinkGiven ? 'sink.portId' : `sources[${i}].portId`;
        throw new OverlayError(ErrorCode.MirrorSinkIsSource, `port ${input.portId} is both the sink and sources[${i}]; a port cannot be the sink of its own copies`, { field });
      }
      return { type: 'port', portId: input.portId };
    }
    case 'vxlan':
      return { type: 'vxlan', remoteIp: input.remoteIp, vni, udpPort: input.udpPort ?? MIRROR_UDP_PORT };
    case 'uplink':
      return { type: 'uplink', hostId: input.hostId, interface: input.interface };
    case 'erspan':
      return { type: 'erspan', remoteIp: input.remoteIp, erspanId: input.erspanId, version: (input.version ?? 2) as ErspanVersion };
  }
}

const PROTOCOL_BY_NAME: Readonly<Record<string, number>> = PROTOCOL_NUMBERS;

/**
 * The stored filter: null when it keeps everything (absent, null, or every field null); the
 * protocol as its number. A protocol or a prefix needs the ethertype, and must be of its family.
 */
export function normalizeFilter(input: FilterInput | null | undefined): MirrorFilter | null {
  const ethertype = input?.ethertype ?? null;
  const protocolIn = input?.protocol ?? null;
  const remoteCidr = input?.remoteCidr ?? null;
  if (ethertype === null) {
    if (protocolIn !== null || remoteCidr !== null) {
      throw new OverlayError(ErrorCode.MissingField, `filter.ethertype is required with filter.${protocolIn !== null ? 'protocol' : 'remoteCidr'} (IPv4 or IPv6)`, { field: 'filter.ethertype' });
    }
    return null;
  }
  const protocol = typeof protocolIn === 'string' ? PROTOCOL_BY_NAME[protocolIn] : protocolIn;
  if ((protocol === PROTOCOL_NUMBERS.icmp && ethertype === 'IPv6') || (protocol === PROTOCOL_NUMBERS.icmpv6 && ethertype === 'IPv4')) {
    const right = protocol === PROTOCOL_NUMBERS.icmp ? 'icmpv6 (58)' : 'icmp (1)';
    throw new OverlayError(ErrorCode.ProtocolFamilyMismatch, `filter.protocol ${protocolIn} does not exist over ${ethertype}; use ${right}`, { field: 'filter.protocol' });
  }
  if (remoteCidr !== null) {
    const cidr = parseCidrText(remoteCidr);
    if (typeof cidr === 'object' && cidr.family !== (ethertype === 'IPv4' ? 4 : 6)) {
      throw new OverlayError(ErrorCode.CidrFamilyMismatch, `filter.remoteCidr ${remoteCidr} is IPv${cidr.family} but the filter's ethertype is ${ethertype}`, { field: 'filter.remoteCidr' });
    }
  }
  return { ethertype, protocol, remoteCidr };
}
