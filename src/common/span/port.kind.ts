import { FlatMessage } from '../proto-wire';
import type { SpanKind } from './span-kind';

/** A bound port of one of the host's segments (its own or a remote one: MAC -> VTEP), with a prepared migration's destination. */
export const portKind: SpanKind<'port', 'ports'> = {
  name: 'port',
  protoKind: 'RESOURCE_KIND_PORT',
  protoNumber: 2,
  collection: 'ports',
  idOf: (port) => port.id ?? '',
  encode: (p) =>
    new FlatMessage()
      .string(1, p.id ?? '')
      .string(2, p.segmentId ?? '')
      .string(3, p.mac ?? '')
      .strings(4, p.ips ?? [])
      .string(5, p.hostId ?? '')
      .string(6, p.vtepIp ?? '')
      .string(7, p.vmId ?? '')
      .string(8, p.preparedHostId ?? '')
      .string(9, p.migrationId ?? '')
      .string(10, p.preparedVtepIp ?? '')
      .varint(11, p.analyzer ? 1 : 0)
      .string(12, p.tapName ?? '')
      .finishAs(2), // Resource.port
};
