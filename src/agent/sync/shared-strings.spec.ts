import type { Resource__Output } from '../../generated/overlay/v1/Resource';
import { SharedStrings } from './shared-strings';

/** A new string equal to `text` (not the literal's copy), as decoding makes one. */
const fresh = (text: string): string => [...text].join('');

const port = (id: string): Resource__Output => ({
  resource: 'port',
  port: { id: fresh(id), segmentId: fresh('seg-1'), mac: fresh('02:00:00:00:00:01'), ips: [fresh('10.0.0.1')], hostId: fresh('host-1'), vtepIp: fresh('192.0.2.1'), vmId: '', preparedHostId: '', migrationId: '', preparedVtepIp: '', analyzer: false, tapName: '' },
});

describe('SharedStrings', () => {
  it('pools the fields resources repeat, leaves the values as they were, and skips the rest', () => {
    const strings = new SharedStrings();
    const resources = [port('p1'), port('p2')];
    const before = JSON.stringify(resources);
    resources.forEach((r) => strings.share(r));
    expect(JSON.stringify(resources)).toBe(before);
    // segment, host and VTEP: ids, MACs and addresses are not pooled, nor empty strings.
    expect(strings.size).toBe(3);
    strings.share({ resource: 'member', member: { groupId: fresh('g1'), family: fresh('IPv4'), cidr: fresh('10.0.0.1/32') } });
    strings.share({
      resource: 'policy',
      policy: {
        portId: 'p1',
        portSecurity: true,
        mac: '',
        ips: [],
        allowedAddressPairs: [],
        ingress: [{ ethertype: fresh('IPv4'), protocol: fresh('tcp'), portMin: 22, portMax: 22, icmpType: -1, icmpCode: -1, remoteCidr: '', remoteGroupId: fresh('g1') }],
        egress: [],
      },
    });
    strings.share({ resource: 'segment', segment: { id: 'seg-1', tenantId: 't', vni: 5, vteps: [fresh('192.0.2.1'), fresh('192.0.2.2')] } });
    expect(strings.size).toBe(3 + 2 + 1 + 1);
    strings.clear();
    expect(strings.size).toBe(0);
  });
});
