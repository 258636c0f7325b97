import type { VniRange } from '../config';

export interface VniPoolUsage {
  /** VNIs of the ranges held by a segment or a mirror session. */
  used: number;
  /** VNIs of the ranges released and not yet returned (see the allocator: they return at an allocation, once their time is up and every host acknowledged their removal). */
  quarantined: number;
  /** The rest of the ranges: what automatic allocation can still hand out. */
  free: number;
}

/**
 * Pure: how the automatic allocation pool (OVERLAY_VNI_RANGES) is used, from the VNIs in use and
 * those in quarantine. VNIs outside the ranges (pinned ones) are not part of the pool and not counted.
 */
export function vniPoolUsage(ranges: readonly VniRange[], inUse: Iterable<number>, quarantined: Iterable<number>): VniPoolUsage {
  const inPool = (vni: number) => ranges.some((r) => vni >= r.from && vni <= r.to);
  const count = (vnis: Iterable<number>) => {
    let n = 0;
    for (const vni of new Set(vnis)) {
      n += inPool(vni) ? 1 : 0;
    }
    return n;
  };
  const size = ranges.reduce((sum, r) => sum + r.to - r.from + 1, 0);
  const used = count(inUse);
  const held = count(quarantined);
  return { used, quarantined: held, free: size - used - held };
}
