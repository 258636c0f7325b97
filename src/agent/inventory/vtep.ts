import { cmp } from './links';

/** Peer VTEPs asked about per collection: enough to see each uplink a route may take, few enough to stay cheap. */
export const MAX_VTEP_PEERS = 8;

/** The fields of `ip -j addr show` read. */
export interface IpAddrLink {
  ifname?: string;
  addr_info?: { local?: string }[];
}

/** The fields of `ip -j route get` read: `dev`, or with multipath (iproute2 6.x) `nexthops` of {dev}. */
export interface IpRoute {
  dev?: string;
  nexthops?: { dev?: string }[];
  multipath?: { dev?: string }[];
}

/** Pure: the device holding `vtepIp` (the first, by `ip addr`'s order); null when none does. */
export function vtepDevice(addrs: readonly IpAddrLink[], vtepIp: string): string | null {
  const want = vtepIp.toLowerCase();
  const holder = addrs.find((link) => typeof link.ifname === 'string' && (link.addr_info ?? []).some((a) => typeof a.local === 'string' && a.local.toLowerCase() === want));
  return holder?.ifname ?? null;
}

/** Pure: the output devices of `ip -j route get` (one route; several devices with multipath), sorted, unique. */
export function routeDevices(routes: readonly IpRoute[]): string[] {
  const devices = new Set<string>();
  for (const route of routes) {
    for (const hop of [...(route.nexthops ?? []), ...(route.multipath ?? [])]) {
      if (typeof hop?.dev === 'string' && hop.dev !== '') {
        devices.add(hop.dev);
      }
    }
    if (typeof route.dev === 'string' && route.dev !== '') {
      devices.add(route.dev);
    }
  }
  return [...devices].sort(cmp);
}

/**
 * Pure: the peer VTEPs to ask about: the span's VTEPs but the local one, sorted, and when there are
 * more than `max`, `max` of them evenly spaced over that order (the same peers each time while
 * the span holds still, spread across it rather than its first few).
 */
export function samplePeers(vteps: Iterable<string>, local: string, max = MAX_VTEP_PEERS): string[] {
  const peers = [...new Set(vteps)].filter((v) => v !== '' && v !== local).sort(cmp);
  if (peers.length <= max) {
    return peers;
  }
  return Array.from({ length: max }, (_, i) => peers[Math.floor((i * peers.length) / max)]);
}
