import type { ResourceOf, SpanKindName } from '../../../common/span/span-kind';
import { SPAN_KINDS } from '../../../common/span/span-kinds';

/**
 * One resource of a span as the controller computes it: its kind, its id, and the value under
 * the kind's name (`{ kind: 'port', id, port }`), which is also how the Resource message holds it.
 */
export type SpanResource = { [N in SpanKindName]: { kind: N; id: string } & { [K in N]: ResourceOf<N> } }[SpanKindName];

/** The bytes of the resource's Resource message. */
export function encodeSpanResource(resource: SpanResource): Uint8Array {
  return SPAN_KINDS[resource.kind].encode(valueOf(resource) as never);
}

function valueOf(resource: SpanResource): ResourceOf<SpanKindName> {
  return (resource as unknown as Record<SpanKindName, ResourceOf<SpanKindName>>)[resource.kind];
}
