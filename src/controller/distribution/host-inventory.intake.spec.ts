import type { HostInventory__Output } from '../../generated/overlay/v1/HostInventory';
import type { ObservedLink__Output } from '../../generated/overlay/v1/ObservedLink';
import { INVENTORY_LIMITS, readHostInventory } from './host-inventory.intake';
import { readHostObservation } from './host-observation.intake';

const link = (name: string, more: Partial<ObservedLink__Output> = {}): ObservedLink__Output => ({ name, kind: 'physical', up: true, team: null, nic: null, lldp: null, ...more });
const inventory = (links: ObservedLink__Output[], more: Partial<HostInventory__Output> = {}): HostInventory__Output => ({ links, vtepRoutes: [], ...more });

describe('reading an agent’s host inventory', () => {
  it('reads absent as null (no inventory sent), and absent optional fields as null (unknown)', () => {
    expect(readHostInventory(null)).toEqual({ inventory: null });
    expect(readHostInventory(inventory([link('eno1')]))).toEqual({
      inventory: { links: [{ name: 'eno1', kind: 'physical', up: true, master: null, team: null, nic: null, lldp: null, vlanId: null, parent: null }], vtepDevice: null, vtepRoutes: [] },
    });
  });

  it('keeps every field of a bonded host with LLDP and multipath routes; an unknown kind reads as other', () => {
    const read = readHostInventory(
      inventory(
        [
          link('bond0', { kind: 'bond', team: { mode: 'active-backup', miimon: 100, arpInterval: 0, arpValidate: 'none', members: [{ name: 'eno1', up: true, active: true }] } }),
          link('eno1', { master: 'bond0', nic: { driver: 'ixgbe', pciAddress: '0000:18:00.0', pciBus: '0000:18', numaNode: 0, ignoreRoutesWithLinkdown: true }, lldp: { systemName: 'tor-a1', portId: 'Ethernet12', vlans: [200, 100, 100] } }),
          link('bond0.100', { kind: 'vlan', vlanId: 100, parent: 'bond0' }),
          link('wg0', { kind: 'wireguard' }),
        ],
        { vtepDevice: 'lo', vtepRoutes: [{ destination: '10.0.0.12', devices: ['eno1', 'eno2'] }] },
      ),
    );
    expect(read).toEqual({
      inventory: {
        links: [
          { name: 'bond0', kind: 'bond', up: true, master: null, team: { mode: 'active-backup', miimon: 100, arpInterval: 0, arpValidate: 'none', members: [{ name: 'eno1', up: true, active: true }] }, nic: null, lldp: null, vlanId: null, parent: null },
          { name: 'eno1', kind: 'physical', up: true, master: 'bond0', team: null, nic: { driver: 'ixgbe', pciAddress: '0000:18:00.0', pciBus: '0000:18', numaNode: 0, ignoreRoutesWithLinkdown: true }, lldp: { chassisId: null, systemName: 'tor-a1', portId: 'Ethernet12', portDescription: null, vlans: [100, 200] }, vlanId: null, parent: null },
          { name: 'bond0.100', kind: 'vlan', up: true, master: null, team: null, nic: null, lldp: null, vlanId: 100, parent: 'bond0' },
          { name: 'wg0', kind: 'other', up: true, master: null, team: null, nic: null, lldp: null, vlanId: null, parent: null },
        ],
        vtepDevice: 'lo',
        vtepRoutes: [{ destination: '10.0.0.12', devices: ['eno1', 'eno2'] }],
      },
    });
  });

  const long = 'x'.repeat(INVENTORY_LIMITS.string + 1);
  const team = (members: number) => ({ mode: '802.3ad', miimon: 100, arpInterval: 0, members: Array.from({ length: members }, (_, i) => ({ name: `m${i}`, up: true, active: true })) });
  it.each([
    ['257 links', inventory(Array.from({ length: 257 }, (_, i) => link(`l${i}`))), /257 links \(at most 256\)/],
    ['a link without a name', inventory([link('')]), /link 0 is not a name/],
    ['a name of 257 characters', inventory([link(long)]), /link 0 is not a name \(1-256 characters\)/],
    ['a link twice', inventory([link('eno1'), link('eno1')]), /link 1: eno1 reported twice/],
    ['65 team members', inventory([link('bond0', { kind: 'bond', team: team(65) })]), /65 team members \(at most 64\)/],
    ['a member twice', inventory([link('bond0', { kind: 'bond', team: { ...team(1), members: [team(1).members[0], team(1).members[0]] } })]), /member m0 reported twice/],
    ['a team without a mode', inventory([link('bond0', { kind: 'bond', team: { ...team(1), mode: '' } })]), /team mode is not a name/],
    ['VLAN 0', inventory([link('v', { kind: 'vlan', vlanId: 0 })]), /vlan_id: VLAN 0 out of range \(1-4094\)/],
    ['VLAN 4095', inventory([link('v', { kind: 'vlan', vlanId: 4095 })]), /VLAN 4095 out of range/],
    ['an LLDP VLAN of 4095', inventory([link('eno1', { lldp: { vlans: [4095] } })]), /LLDP: VLAN 4095 out of range/],
    ['4097 LLDP VLANs', inventory([link('eno1', { lldp: { vlans: Array.from({ length: 4097 }, () => 5) } })]), /4097 LLDP VLANs \(at most 4096\)/],
    ['an overlong system name', inventory([link('eno1', { lldp: { systemName: long, vlans: [] } })]), /system_name is longer than 256 characters/],
    ['an overlong driver', inventory([link('eno1', { nic: { driver: long } })]), /driver is longer/],
    ['a NUMA node past 65535', inventory([link('eno1', { nic: { numaNode: 65_536 } })]), /numa_node 65536 out of range/],
    ['an overlong master', inventory([link('eno1', { master: long })]), /master is longer/],
    ['an overlong VTEP device', inventory([], { vtepDevice: long }), /vtep_device is longer/],
    ['a route to no address', inventory([], { vtepRoutes: [{ destination: 'peer', devices: [] }] }), /VTEP route 0: destination is not an IP address/],
    ['a route of 65 devices', inventory([], { vtepRoutes: [{ destination: '10.0.0.1', devices: Array.from({ length: 65 }, (_, i) => `d${i}`) }] }), /65 devices \(at most 64\)/],
    ['257 routes', inventory([], { vtepRoutes: Array.from({ length: 257 }, () => ({ destination: '10.0.0.1', devices: [] })) }), /257 VTEP routes/],
  ])('refuses %s', (_name, message, reason) => {
    const result = readHostInventory(message);
    expect('violation' in result && result.violation).toMatch(reason);
  });

  it('accepts the bounds: 256 links, 64 members, 4096 VLAN entries, names of 256 characters', () => {
    const links = Array.from({ length: 256 }, (_, i) => link(i === 0 ? 'x'.repeat(256) : `l${i}`));
    links[1] = link('bond0', { kind: 'bond', team: team(64) });
    links[2] = link('eno1', { lldp: { vlans: Array.from({ length: 4096 }, (_, i) => (i % 4094) + 1) } });
    const result = readHostInventory(inventory(links));
    expect('inventory' in result && result.inventory!.links.length).toBe(256);
  });

  it('makes the whole observation a violation: nothing of it is kept', () => {
    const scope = { isLocalPort: () => true, segmentOf: () => 's1' };
    const result = readHostObservation({ taps: [{ portId: 'p1', promiscuity: 1, bridged: true }], bridges: [], inventory: inventory([link('eno1'), link('eno1')]) }, scope, 1);
    expect(result).toEqual({ violation: 'HostObservation inventory: link 1: eno1 reported twice' });
    const ok = readHostObservation({ taps: [], bridges: [], inventory: inventory([link('eno1')]) }, scope, 1);
    expect('observation' in ok && ok.observation.inventory?.links.map((l) => l.name)).toEqual(['eno1']);
  });
});
