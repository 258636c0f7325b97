import type { Resource, Resource__Output } from '../../generated/overlay/v1/Resource';
import type { ResourceKind__Output } from '../../generated/overlay/v1/ResourceKind';

/**
 * One kind of object a host's span is made of (a segment, a port, ...), defined once for both
 * processes: how it is named and identified, how it travels (its field of the Resource message
 * and its ResourceKind), and where a span held in memory keeps it. Each kind is a module of its
 * own beside this file; `span-kinds.ts` lists them.
 */
export interface SpanKind<N extends SpanKindName = SpanKindName, C extends string = string> {
  /** The kind's name: its field of the Resource message's oneof, and the first part of its span keys. */
  readonly name: N;
  /** The ResourceKind naming it in a removal, and that enum value's number. */
  readonly protoKind: ResourceKind__Output;
  readonly protoNumber: number;
  /** The map holding this kind in a span held in memory (`SpanMaps`). */
  readonly collection: C;
  /** The resource's id: its span key is `<name>/<id>`, a removal names it by kind and id. */
  idOf(resource: NonNullable<Resource[N]>): string;
  /** The bytes of a Resource message holding `resource` (hand-written: a hot path). */
  encode(resource: NonNullable<Resource[N]>): Uint8Array;
}

/** The kinds a span is made of. */
export type SpanKindName = NonNullable<Resource['resource']>;

/** A resource of a kind as it travels: the proto message, decoded (every field present). */
export type ResourceOf<N extends SpanKindName> = NonNullable<Resource__Output[N]>;

/** `<kind>/<id>`: one resource of a span, whatever its kind. */
export type SpanKey = string;

export const spanKey = (kind: SpanKindName, id: string): SpanKey => `${kind}/${id}`;

/**
 * Resources of one kind, by id: a span as a list of these names each resource without making
 * its key. A snapshot storm holds every span at once (1.1 million keys at 100k ports, 40-110
 * bytes each); ids are the view's own strings, 8 bytes a reference. A run may be one of the
 * index's own sets, not a copy (copies were 9 MB while 1,000 snapshots were under way): a snapshot
 * then reads it as it goes, and sees what changed since it began, which the deltas queued behind
 * its end carry anyway.
 */
export interface SpanRun {
  readonly kind: SpanKindName;
  readonly ids: readonly string[] | ReadonlySet<string>;
}

/** How many ids a run holds (now: a set's may change). */
export const runSize = (run: SpanRun): number => ('size' in run.ids ? run.ids.size : run.ids.length);

/** The kind, and the id: everything after the first '/' (a member's id holds '/' itself). */
export function parseSpanKey(key: SpanKey): { kind: SpanKindName; id: string } {
  const slash = key.indexOf('/');
  return { kind: key.slice(0, slash) as SpanKindName, id: key.slice(slash + 1) };
}
