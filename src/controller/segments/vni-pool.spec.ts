import { vniPoolUsage } from './vni-pool';

describe('vniPoolUsage', () => {
  it('counts the VNIs of the ranges in use and in quarantine, the rest free; pinned VNIs outside the ranges are not part of the pool', () => {
    const ranges = [
      { from: 1000, to: 1009 },
      { from: 2000, to: 2000 },
    ];
    expect(vniPoolUsage(ranges, [1000, 1001, 2000, 5000, 1001], [1002, 9999])).toEqual({ used: 3, quarantined: 1, free: 7 });
    expect(vniPoolUsage(ranges, [], [])).toEqual({ used: 0, quarantined: 0, free: 11 });
  });
});
