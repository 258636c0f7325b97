import type { ResourceOf } from '../../../common/span/span-kind';
import { copiesEgress, copiesIngress, MIRROR_UDP_PORT, type MirrorDirection, type MirrorSession } from '../../model/mirror-session';
import { localHostsOf } from '../../model/port';
import { isBound, type SpanSource } from '../span-source';

export type MirrorTapResource = ResourceOf<'mirror'>;
export type MirrorSinkResource = ResourceOf<'mirrorSink'>;

/** Where a tap sends its copies, as the proto's MirrorTap says it (the fields not set are empty). */
type SinkFields = Pick<MirrorTapResource, 'sinkPortId' | 'sinkInterface' | 'vni' | 'remoteIp' | 'udpPort' | 'erspanId' | 'erspanVersion'>;

/** No sink at all: each case below sets only the fields it uses. */
const NO_SINK: SinkFields = { sinkPortId: '', sinkInterface: '', vni: 0, remoteIp: '', udpPort: 0, erspanId: 0, erspanVersion: 0 };

/**
 * The host a session's sink sits on: a port sink's bound host, an uplink's host; undefined for a
 * VXLAN or ERSPAN collector (on no host) and for a port sink that is unbound. Whether that host exists is
 * not asked here (the index places sessions by it; `tapsOf` and `sinkOf` check it).
 */
export function sinkHostId(source: SpanSource, session: MirrorSession): string | undefined {
  const sink = session.sink;
  if (sink.type === 'port') {
    return source.port(sink.portId)?.hostId ?? undefined;
  }
  return sink.type === 'uplink' ? sink.hostId : undefined;
}

/**
 * The sink as seen from `hostId`: local (a tap or an interface there) or a tunnel; undefined when
 * it cannot be reached. An ERSPAN collector is reached from every source host straight, over GRE:
 * no VNI nor UDP port (the session's VNI is not used on the wire).
 */
function sinkFrom(source: SpanSource, session: MirrorSession, hostId: string): SinkFields | undefined {
  const sink = session.sink;
  if (sink.type === 'vxlan') {
    return { ...NO_SINK, vni: sink.vni, remoteIp: sink.remoteIp, udpPort: sink.udpPort };
  }
  if (sink.type === 'erspan') {
    return { ...NO_SINK, remoteIp: sink.remoteIp, erspanId: sink.erspanId, erspanVersion: sink.version };
  }
  const at = sinkHostId(source, session);
  const host = at === undefined ? undefined : source.host(at);
  if (!host) {
    return undefined; // an unbound analyzer port (or its host gone): nowhere to send copies; the session's status says so
  }
  if (at === hostId) {
    return sink.type === 'port' ? { ...NO_SINK, sinkPortId: sink.portId } : { ...NO_SINK, sinkInterface: sink.interface };
  }
  return { ...NO_SINK, vni: session.vni, remoteIp: host.vtepIp, udpPort: MIRROR_UDP_PORT };
}

/** One MirrorTap and the host whose span holds it. */
export interface PlacedTap {
  hostId: string;
  tap: MirrorTapResource;
}

/**
 * Each source port's direction (a port listed twice, which the API refuses, counts once: its
 * first source), per session record: records are never mutated, so it is made once per record.
 */
const directions = new WeakMap<MirrorSession, Map<string, MirrorDirection>>();

function directionsOf(session: MirrorSession): Map<string, MirrorDirection> {
  let map = directions.get(session);
  if (!map) {
    map = new Map();
    for (const { portId, direction } of session.sources) {
      if (!map.has(portId)) {
        map.set(portId, direction);
      }
    }
    directions.set(session, map);
  }
  return map;
}

/**
 * The MirrorTaps of a session (of its sources among `portIds`, or all): one per source port and
 * local host of that port (`localHostsOf`: where it is bound and a prepared migration's
 * destination), each with the sink as that host sees it. None for a disabled session, an unbound
 * source, or a sink that cannot be reached. The one definition spans, the live path and resume
 * use. O(the ports asked for).
 */
export function tapsOf(source: SpanSource, session: MirrorSession, portIds?: Iterable<string>): PlacedTap[] {
  if (!session.enabled) {
    return [];
  }
  const out: PlacedTap[] = [];
  const filter = session.filter;
  const sources = directionsOf(session);
  for (const portId of portIds ?? sources.keys()) {
    const direction = sources.get(portId);
    const port = direction && source.port(portId);
    if (!direction || !isBound(port)) {
      continue;
    }
    for (const hostId of localHostsOf(port)) {
      const sink = sinkFrom(source, session, hostId);
      if (!sink) {
        continue;
      }
      out.push({
        hostId,
        tap: {
          sessionId: session.id,
          portId,
          ingress: copiesIngress(direction),
          egress: copiesEgress(direction),
          filterEthertype: filter?.ethertype ?? '',
          filterProtocol: filter?.protocol ?? 0,
          filterRemoteCidr: filter?.remoteCidr ?? '',
          snapLength: session.snapLength ?? 0,
          ...sink,
        },
      });
    }
  }
  return out;
}

/**
 * The receiving end of an enabled session with a port or uplink sink (a collector, VXLAN or
 * ERSPAN, has none of ours), and the host it goes to:
 * the analyzer port's bound host, or the uplink's. Sent even when every source is on that host.
 */
export function sinkOf(source: SpanSource, session: MirrorSession): { hostId: string; sink: MirrorSinkResource } | undefined {
  const sink = session.sink;
  if (!session.enabled || sink.type === 'vxlan' || sink.type === 'erspan') {
    return undefined;
  }
  const hostId = sinkHostId(source, session);
  if (hostId === undefined || !source.host(hostId)) {
    return undefined;
  }
  return {
    hostId,
    sink: { sessionId: session.id, vni: session.vni, portId: sink.type === 'port' ? sink.portId : '', interface: sink.type === 'uplink' ? sink.interface : '' },
  };
}

/** The MirrorTap `<sessionId>/<portId>` as `hostId`'s span holds it, or undefined when that span does not. */
export function mirrorTapResource(source: SpanSource, id: string, hostId: string): MirrorTapResource | undefined {
  const slash = id.indexOf('/');
  const session = slash > 0 ? source.mirrorSession(id.slice(0, slash)) : undefined;
  if (!session) {
    return undefined;
  }
  return tapsOf(source, session, [id.slice(slash + 1)]).find((placed) => placed.hostId === hostId)?.tap;
}

/** The MirrorSink of session `id` as `hostId`'s span holds it, or undefined when that span does not. */
export function mirrorSinkResource(source: SpanSource, id: string, hostId: string): MirrorSinkResource | undefined {
  const session = source.mirrorSession(id);
  const placed = session && sinkOf(source, session);
  return placed?.hostId === hostId ? placed.sink : undefined;
}
