import type { MirrorTap__Output } from '../../generated/overlay/v1/MirrorTap';
import { FlatMessage } from '../proto-wire';
import type { SpanKind } from './span-kind';

/**
 * A mirror session's source on one of the host's own ports (bound or prepared here): which
 * directions are copied, the filter, and where the copies go from this host (a local tap or
 * interface, a VXLAN tunnel, or an ERSPAN tunnel to a collector). Its id is
 * `<sessionId>/<portId>`: a session over many ports costs each host one resource per local port.
 */
export const mirrorKind: SpanKind<'mirror', 'mirrors'> = {
  name: 'mirror',
  protoKind: 'RESOURCE_KIND_MIRROR',
  protoNumber: 5,
  collection: 'mirrors',
  idOf: (m) => mirrorTapId(m.sessionId ?? '', m.portId ?? ''),
  encode: (m) =>
    new FlatMessage()
      .string(1, m.sessionId ?? '')
      .string(2, m.portId ?? '')
      .varint(3, m.ingress ? 1 : 0)
      .varint(4, m.egress ? 1 : 0)
      .string(5, m.filterEthertype ?? '')
      .varint(6, Number(m.filterProtocol ?? 0))
      .string(7, m.filterRemoteCidr ?? '')
      .varint(8, Number(m.snapLength ?? 0))
      .string(9, m.sinkPortId ?? '')
      .string(10, m.sinkInterface ?? '')
      .varint(11, Number(m.vni ?? 0))
      .string(12, m.remoteIp ?? '')
      .varint(13, Number(m.udpPort ?? 0))
      .varint(14, Number(m.erspanId ?? 0))
      .varint(15, Number(m.erspanVersion ?? 0))
      .finishAs(5), // Resource.mirror
};

/** A mirror tap's id: `<sessionId>/<portId>` (neither holds '/'). */
export const mirrorTapId = (sessionId: string, portId: string): string => `${sessionId}/${portId}`;

/** A MirrorTap with every field at its proto3 default (nothing copied, no sink) but those given. */
export function mirrorTap(fields: Partial<MirrorTap__Output>): MirrorTap__Output {
  return {
    sessionId: '',
    portId: '',
    ingress: false,
    egress: false,
    filterEthertype: '',
    filterProtocol: 0,
    filterRemoteCidr: '',
    snapLength: 0,
    sinkPortId: '',
    sinkInterface: '',
    vni: 0,
    remoteIp: '',
    udpPort: 0,
    erspanId: 0,
    erspanVersion: 0,
    ...fields,
  };
}
