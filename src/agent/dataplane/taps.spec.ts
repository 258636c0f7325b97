import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addressedLinks, hostLinks, type IpLink } from './linux/kernel-view';
import { tapName } from './names';
import { hostSideMac, resolveTaps, type TapClaim } from './taps';

/**
 * Recorded in a network namespace (iproute2 6.1): `ip -j -d link show` and `ip -j addr show` of
 *   br5000, vx5000   the agent's bridge and VXLAN device (alias overlay-agent)
 *   vnet0            a tap (tun), fe:16:3e:00:00:01, already in br5000
 *   vnet1, vnet2     a tap and a veth, both fe:16:3e:00:00:02
 *   eth0             a veth with 192.0.2.1/24 (an uplink), fe:16:3e:00:00:03
 *   vnet3            a veth fe:16:3e:00:00:04 in the host's bridge br0 (which took that MAC too)
 *   br7              a bridge given fe:16:3e:00:00:05
 *   tap0190aaaa00a   a veth named from a port id
 */
const fixture = (name: string): string => readFileSync(join(__dirname, '__fixtures__', name), 'utf8');
const ipLinks = new Map((JSON.parse(fixture('ip-link-taps.json')) as IpLink[]).map((l) => [l.ifname, l]));
const addressed = addressedLinks(fixture('ip-addr-taps.json'));
const links = hostLinks(ipLinks, addressed);

const CONVENTIONAL = '0190aaaa-0000-7000-8000-00190aaaa00a';
const claim = (portId: string, mac: string, name = ''): TapClaim => ({ portId, mac, tapName: name });

describe('hostSideMac', () => {
  it('sets the first octet to fe, or fa when the guest MAC already starts with fe (as libvirt does)', () => {
    expect(hostSideMac('52:54:00:12:34:56')).toBe('fe:54:00:12:34:56');
    expect(hostSideMac('FE:54:00:12:34:56')).toBe('fa:54:00:12:34:56');
  });
});

describe('hostLinks', () => {
  it('reads name, MAC, kind and master from recorded output, marks the agent devices and the addressed links', () => {
    expect(links.get('vnet0')).toEqual({ name: 'vnet0', mac: 'fe:16:3e:00:00:01', kind: 'tun', master: 'br5000', masterIsOverlay: true, owned: false, addressed: false });
    expect(links.get('vnet3')).toMatchObject({ kind: 'veth', master: 'br0', masterIsOverlay: false });
    expect(links.get('vx5000')).toMatchObject({ kind: 'vxlan', owned: true });
    expect(links.get('eth0')).toMatchObject({ kind: 'veth', addressed: true });
    expect([...addressed]).toEqual(['eth0']);
  });

  it('treats the listing as hostile: a name that could not be a tap is left out, a MAC that is not one reads as none', () => {
    const hostile = new Map<string, IpLink>([
      ['a', { ifname: 'vnet9\nlink del dev eth0', address: 'fe:16:3e:00:00:09', linkinfo: { info_kind: 'tun' } }],
      ['b', { ifname: 'vnet8', address: 'fe:16:3e:00:00:08 ', linkinfo: { info_kind: 7 as unknown as string } }],
      ['c', { ifname: 42 as unknown as string }],
    ]);
    const read = hostLinks(hostile);
    expect([...read.keys()]).toEqual(['vnet8']);
    expect(read.get('vnet8')).toMatchObject({ mac: '', kind: '' });
    expect(() => addressedLinks('{"not": "an array"}')).toThrow('expected a JSON array');
  });
});

describe('resolveTaps', () => {
  it("takes the one link carrying the port's MAC with the first octet fe (a tap in the agent's bridge included)", () => {
    expect(resolveTaps([claim('p1', '02:16:3e:00:00:01')], links).get('p1')).toEqual({ tap: 'vnet0', by: 'MAC' });
  });

  it('takes the link a port names (tapName), and never another, even one with its MAC', () => {
    expect(resolveTaps([claim('p1', '02:16:3e:00:00:01', 'vnet1')], links).get('p1')).toEqual({ tap: 'vnet1', by: 'tapName' });
    // Not there yet: that name, pending (attached when it appears), not the MAC match.
    expect(resolveTaps([claim('p1', '02:16:3e:00:00:01', 'vnet42')], links).get('p1')).toEqual({ tap: 'vnet42', by: 'pending' });
  });

  it('takes the link named from the port id before any MAC match', () => {
    expect(resolveTaps([claim(CONVENTIONAL, '02:16:3e:00:00:01')], links).get(CONVENTIONAL)).toEqual({ tap: tapName(CONVENTIONAL), by: 'port id' });
  });

  it('takes none of two links with the MAC, and says so (the port stays closed)', () => {
    expect(resolveTaps([claim('p2', '02:16:3e:00:00:02')], links).get('p2')).toEqual({ problem: 'links vnet1, vnet2 all carry MAC fe:16:3e:00:00:02: none is taken' });
  });

  it('never takes by MAC an addressed link (an uplink), a link in a bridge not the agent’s, nor a bridge: the port waits under its port-id name', () => {
    for (const mac of ['02:16:3e:00:00:03', '02:16:3e:00:00:04', '02:16:3e:00:00:05']) {
      expect(resolveTaps([claim('p3', mac)], links).get('p3')).toEqual({ tap: tapName('p3'), by: 'pending' });
    }
    // Without the addresses read, the uplink would be taken: the Linux dataplane reads them when a MAC decides.
    expect(resolveTaps([claim('p3', '02:16:3e:00:00:03')], hostLinks(ipLinks)).get('p3')).toEqual({ tap: 'eth0', by: 'MAC' });
  });

  it('refuses a named link that cannot be a tap: the agent’s own device, a device without a kind, a malformed name', () => {
    const found = resolveTaps([claim('a', '02:00:00:00:00:0a', 'vx5000'), claim('b', '02:00:00:00:00:0b', 'lo'), claim('c', '02:00:00:00:00:0c', 'vnet0 up')], links);
    expect(found.get('a')).toEqual({ problem: 'tapName "vx5000" is a name the agent gives its own devices (vx<n>, br<n>, mx<n>, ms<n>)' });
    expect(found.get('b')).toEqual({ problem: 'tapName lo: link lo is a device without a kind (a NIC), not a tap or veth' });
    expect(found.get('c')).toMatchObject({ problem: expect.stringContaining('must be a Linux interface name') });
  });

  it('gives a link claimed on a stronger rule to that port, and none of two claims on the same rule', () => {
    const found = resolveTaps([claim('named', '02:00:00:00:00:0a', 'vnet0'), claim('bymac', '02:16:3e:00:00:01'), claim('x', '02:00:00:00:00:0b', 'vnet1'), claim('y', '02:00:00:00:00:0c', 'vnet1')], links);
    expect(found.get('named')).toEqual({ tap: 'vnet0', by: 'tapName' });
    expect(found.get('bymac')).toEqual({ problem: 'link vnet0 is the tap of port named (by tapName)' });
    expect(found.get('x')).toEqual({ problem: 'link vnet1 is claimed by ports x, y: none is given it' });
    expect(found.get('y')).toEqual(found.get('x'));
  });

  it('is independent of the order of the claims', () => {
    const claims = [claim('named', '02:00:00:00:00:0a', 'vnet0'), claim('bymac', '02:16:3e:00:00:01'), claim(CONVENTIONAL, '02:16:3e:00:00:02'), claim('p3', '02:16:3e:00:00:03')];
    const forward = [...resolveTaps(claims, links)].sort();
    expect([...resolveTaps([...claims].reverse(), links)].sort()).toEqual(forward);
  });

  it('without the host’s links (a dataplane that reads none), gives each port the name it gives, or its port-id name', () => {
    const found = resolveTaps([claim('a', '02:16:3e:00:00:01'), claim('b', '02:16:3e:00:00:01', 'vnet7')], undefined);
    expect(found.get('a')).toEqual({ tap: tapName('a'), by: 'pending' });
    expect(found.get('b')).toEqual({ tap: 'vnet7', by: 'pending' });
  });
});
