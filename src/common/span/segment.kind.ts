import { FlatMessage } from '../proto-wire';
import type { SpanKind } from './span-kind';

/** A segment the host has a local port on: its VNI and flood list (the VTEPs of every host with a port on it). */
export const segmentKind: SpanKind<'segment', 'segments'> = {
  name: 'segment',
  protoKind: 'RESOURCE_KIND_SEGMENT',
  protoNumber: 1,
  collection: 'segments',
  idOf: (segment) => segment.id ?? '',
  encode: (s) =>
    new FlatMessage()
      .string(1, s.id ?? '')
      .string(2, s.tenantId ?? '')
      .varint(3, Number(s.vni ?? 0))
      .strings(4, s.vteps ?? [])
      .finishAs(1), // Resource.segment
};
