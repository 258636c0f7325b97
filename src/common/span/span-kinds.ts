import type { Resource, Resource__Output } from '../../generated/overlay/v1/Resource';
import type { ResourceKey__Output } from '../../generated/overlay/v1/ResourceKey';
import { tag, utf8Length, varintLength, WIRE_LEN, WIRE_VARINT, writeString, writeVarint } from '../proto-wire';
import { memberKind } from './member.kind';
import { mirrorSinkKind } from './mirror-sink.kind';
import { mirrorKind } from './mirror.kind';
import { policyKind } from './policy.kind';
import { portKind } from './port.kind';
import { segmentKind } from './segment.kind';
import type { ResourceOf, SpanKind, SpanKindName } from './span-kind';

/**
 * Every kind a span is made of. Adding a kind: its module beside this file, its line here, its
 * field in the proto's Resource oneof and ResourceKind; the compiler then names every place that
 * must compute (controller) or render (agent) it.
 */
export const SPAN_KINDS = {
  segment: segmentKind,
  port: portKind,
  policy: policyKind,
  member: memberKind,
  mirror: mirrorKind,
  mirrorSink: mirrorSinkKind,
} as const satisfies { [N in SpanKindName]: SpanKind<N> };

type Kinds = typeof SPAN_KINDS;

/** A span held in memory: one map per kind (named by its `collection`), by id. */
export type SpanMaps = { [N in SpanKindName as Kinds[N]['collection']]: Map<string, ResourceOf<N>> };

const ALL: SpanKind[] = Object.values(SPAN_KINDS);
const BY_PROTO = new Map<ResourceKey__Output['kind'], SpanKind>(ALL.map((kind) => [kind.protoKind, kind]));

export function emptySpanMaps(): SpanMaps {
  return Object.fromEntries(ALL.map((kind) => [kind.collection, new Map()])) as SpanMaps;
}

/**
 * The same resources, the maps of `collections` (default: every one) new, the others shared (the
 * resources themselves are shared: they are never mutated).
 */
export function copySpanMaps(maps: SpanMaps, collections: ReadonlySet<keyof SpanMaps> = new Set(ALL.map((kind) => kind.collection as keyof SpanMaps))): SpanMaps {
  return Object.fromEntries(ALL.map((kind) => [kind.collection, collections.has(kind.collection as keyof SpanMaps) ? new Map(collectionOf(maps, kind)) : collectionOf(maps, kind)])) as SpanMaps;
}

/** The collections (maps) that removing `removals` and putting `upserts` changes. */
export function touchedCollections(removals: readonly ResourceKey__Output[], upserts: readonly Resource__Output[]): Set<keyof SpanMaps> {
  const kinds = [...removals.map((key) => BY_PROTO.get(key.kind)), ...upserts.map(kindOf)];
  return new Set(kinds.flatMap((kind) => (kind ? [kind.collection as keyof SpanMaps] : [])));
}

function collectionOf(maps: SpanMaps, kind: SpanKind): Map<string, unknown> {
  return (maps as unknown as Record<string, Map<string, unknown>>)[kind.collection];
}

/** The kind of a Resource message: its oneof case, or the one field set when that is not said. */
function kindOf(resource: Resource): SpanKind | undefined {
  const name = resource.resource ?? (Object.keys(SPAN_KINDS) as SpanKindName[]).find((n) => resource[n]);
  return name && resource[name] ? SPAN_KINDS[name] : undefined;
}

/**
 * Stores a received resource in its kind's map (replacing the one with its id); returns its
 * kind, or undefined when the message holds no resource.
 */
export function putResource(maps: SpanMaps, resource: Resource__Output): SpanKindName | undefined {
  const kind = kindOf(resource);
  if (!kind) {
    return undefined;
  }
  const value = resource[kind.name] as never;
  collectionOf(maps, kind).set(kind.idOf(value), value);
  return kind.name;
}

/** Removes the resource a key names; returns its kind, or undefined for a kind this process does not know. */
export function removeResource(maps: SpanMaps, key: ResourceKey__Output): SpanKindName | undefined {
  const kind = BY_PROTO.get(key.kind);
  if (!kind) {
    return undefined;
  }
  collectionOf(maps, kind).delete(key.id);
  return kind.name;
}

/** Encodes one span resource (`Resource` message bytes); empty when it holds none. */
export function encodeResource(resource: Resource): Uint8Array {
  const kind = kindOf(resource);
  return kind ? kind.encode(resource[kind.name] as never) : Buffer.alloc(0);
}

/** Encodes a `ResourceKey` (a removal). */
export function encodeResourceKey(kind: SpanKindName, id: string): Uint8Array {
  const length = utf8Length(id);
  const buf = Buffer.allocUnsafe(2 + 1 + varintLength(length) + length);
  buf[0] = tag(1, WIRE_VARINT);
  buf[1] = SPAN_KINDS[kind].protoNumber;
  buf[2] = tag(2, WIRE_LEN);
  writeString(buf, writeVarint(buf, 3, length), id, length);
  return buf;
}
