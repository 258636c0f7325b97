import type { ResourceOf } from '../../../common/span/span-kind';
import type { IndexedSpanSource, SpanSource } from '../span-source';

/** A segment as a host's span holds it: its VNI and flood list (the VTEPs of every host with a local port on it). */
export function segmentResource(source: IndexedSpanSource, id: string): ResourceOf<'segment'> | undefined {
  const segment = source.segment(id);
  if (!segment) {
    return undefined;
  }
  return { id, tenantId: segment.tenantId, vni: segment.vni, vteps: vtepsOf(source, source.hostCounts(id).keys()) };
}

/** The hosts' VTEPs, sorted, each once (a flood list). */
export function vtepsOf(source: SpanSource, hosts: Iterable<string>): string[] {
  const vteps = new Set<string>();
  for (const host of hosts) {
    const vtep = source.host(host)?.vtepIp;
    if (vtep !== undefined) {
      vteps.add(vtep);
    }
  }
  return [...vteps].sort();
}
