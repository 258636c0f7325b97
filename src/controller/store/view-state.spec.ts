import type { Port } from '../model/port';
import { compactPort } from './view-state';

const port = (id: string, securityGroupIds: string[]): Port => ({
  id,
  segmentId: 'segment-1',
  tenantId: 'tenant-1',
  vmId: null,
  mac: '02:00:00:00:00:01',
  ips: ['10.0.0.1'],
  hostId: 'host-1',
  securityGroupIds,
  portSecurity: true,
  allowedAddressPairs: [],
  migration: null,
  createdAt: '2026-12-05T00:00:00.000Z',
  updatedAt: '2026-12-05T00:00:00.000Z',
});

describe('compactPort', () => {
  it('gives ports with the same list of groups one shared, frozen list', () => {
    const a = compactPort(port('a', ['g1', 'g2']));
    const b = compactPort(port('b', ['g1', 'g2']));
    expect(a.securityGroupIds).toBe(b.securityGroupIds);
    expect(Object.isFrozen(a.securityGroupIds)).toBe(true);
    expect(compactPort(port('c', ['g2', 'g1'])).securityGroupIds).not.toBe(a.securityGroupIds);
  });

  it('keeps every list as it was when the shared lists start over (more distinct lists than it keeps)', () => {
    const ports = Array.from({ length: 25_000 }, (_, i) => compactPort(port(`p${i}`, [`group-${i}`, 'shared'])));
    ports.forEach((p, i) => expect(p.securityGroupIds).toEqual([`group-${i}`, 'shared']));
    // Sharing goes on after a start over.
    expect(compactPort(port('x', ['group-24999', 'shared'])).securityGroupIds).toBe(ports[24_999].securityGroupIds);
  });
});
