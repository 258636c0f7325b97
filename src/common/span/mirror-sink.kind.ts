import { FlatMessage } from '../proto-wire';
import type { SpanKind } from './span-kind';

/** The receiving end of a mirror session on its sink's host: copies arriving under the session's VNI go to a local analyzer port or uplink. */
export const mirrorSinkKind: SpanKind<'mirrorSink', 'mirrorSinks'> = {
  name: 'mirrorSink',
  protoKind: 'RESOURCE_KIND_MIRROR_SINK',
  protoNumber: 6,
  collection: 'mirrorSinks',
  idOf: (s) => s.sessionId ?? '',
  encode: (s) =>
    new FlatMessage()
      .string(1, s.sessionId ?? '')
      .varint(2, Number(s.vni ?? 0))
      .string(3, s.portId ?? '')
      .string(4, s.interface ?? '')
      .finishAs(6), // Resource.mirror_sink
};
