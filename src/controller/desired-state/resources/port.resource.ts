import type { ResourceOf } from '../../../common/span/span-kind';
import type { Port } from '../../model/port';
import { isBound, type SpanSource } from '../span-source';

/**
 * A bound port as every host on its segment holds it: MAC and addresses -> the VTEP of the host
 * it is bound to, and, while a migration is prepared, the destination host and its VTEP.
 * Unbound ports are in no span.
 */
export function portResource(source: SpanSource, id: string): ResourceOf<'port'> | undefined {
  const port = source.port(id);
  if (!isBound(port)) {
    return undefined;
  }
  const migration = port.migration ?? undefined;
  return {
    id,
    segmentId: port.segmentId,
    mac: port.mac,
    ips: port.ips,
    hostId: port.hostId,
    vtepIp: source.host(port.hostId)?.vtepIp ?? '',
    vmId: port.vmId ?? '',
    preparedHostId: migration?.destinationHostId ?? '',
    migrationId: migration?.id ?? '',
    preparedVtepIp: migration ? (source.host(migration.destinationHostId)?.vtepIp ?? '') : '',
    analyzer: port.role === 'analyzer',
    tapName: port.tapName ?? '',
  };
}

/**
 * Whether a port's entry (what `portResource` makes of it) is the same in both states, without
 * building either: a change that leaves it as it was (its security groups, say) is not sent to
 * the segment's hosts.
 */
export function samePortEntry(before: SpanSource, then: Port & { hostId: string }, after: SpanSource, now: Port & { hostId: string }): boolean {
  const vtep = (source: SpanSource, host: string | undefined) => (host === undefined ? '' : (source.host(host)?.vtepIp ?? ''));
  const dest = (port: Port) => port.migration?.destinationHostId;
  return (
    then.mac === now.mac &&
    then.role === now.role &&
    (then.tapName ?? null) === (now.tapName ?? null) &&
    then.hostId === now.hostId &&
    (then.vmId ?? '') === (now.vmId ?? '') &&
    then.ips.length === now.ips.length &&
    then.ips.every((ip, i) => ip === now.ips[i]) &&
    (then.migration?.id ?? '') === (now.migration?.id ?? '') &&
    dest(then) === dest(now) &&
    vtep(before, then.hostId) === vtep(after, now.hostId) &&
    vtep(before, dest(then)) === vtep(after, dest(now))
  );
}
