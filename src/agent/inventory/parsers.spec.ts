import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLldpNeighbors } from './lldp';
import { MAX_INVENTORY_LINKS, parseInventoryLinks, type InventoryIpLink } from './links';
import { ignoresLinkdownRoutes, readNic } from './sysfs';
import { parseTeamdState } from './teamd';
import { routeDevices, samplePeers, vtepDevice } from './vtep';

const fixture = (name: string): string => readFileSync(join(__dirname, '__fixtures__', name), 'utf8');
const ipLink = (): InventoryIpLink[] => JSON.parse(fixture('ip-link-bonded.json')) as InventoryIpLink[];

describe('inventory links from `ip -d -j link` (a host with an active-backup bond, an 802.3ad bond, a VLAN, a team)', () => {
  const links = parseInventoryLinks(ipLink());
  const byName = new Map(links.map((l) => [l.name, l]));

  it('lists the uplinks by name, leaving out VM taps and the agent’s own bridge and VXLAN device', () => {
    expect(links.map((l) => [l.name, l.kind, l.up, l.master])).toEqual([
      ['bond0', 'bond', true, null],
      ['bond0.100', 'vlan', true, null],
      ['bond1', 'bond', true, null],
      ['eno1', 'physical', true, 'bond0'],
      ['enp175s0f0', 'physical', true, 'team0'],
      ['enp175s0f1', 'physical', true, 'team0'],
      ['ens2f0', 'physical', true, 'bond0'],
      ['ens3f0', 'physical', true, 'bond1'],
      ['ens3f1', 'physical', false, 'bond1'],
      ['lo', 'loopback', true, null],
      ['team0', 'team', true, null],
      ['vtep0', 'dummy', true, null],
    ]);
  });

  it('reads an active-backup bond: its mode, MII monitoring, its active and its standby slave', () => {
    expect(byName.get('bond0')!.team).toEqual({
      mode: 'active-backup',
      miimon: 100,
      arpInterval: 0,
      arpValidate: 'none',
      members: [
        { name: 'eno1', up: true, active: true },
        { name: 'ens2f0', up: true, active: false },
      ],
    });
  });

  it('reads an 802.3ad bond with a slave whose MII status is down', () => {
    expect(byName.get('bond1')!.team).toEqual({
      mode: '802.3ad',
      miimon: 100,
      arpInterval: 0,
      arpValidate: 'none',
      members: [
        { name: 'ens3f0', up: true, active: true },
        { name: 'ens3f1', up: false, active: true },
      ],
    });
  });

  it('reads a VLAN device’s id and lower device; a team’s mode is left to teamd (null here)', () => {
    expect(byName.get('bond0.100')).toMatchObject({ vlanId: 100, parent: 'bond0', team: null });
    expect(byName.get('eno1')).toMatchObject({ vlanId: null, parent: null, team: null, nic: null, lldp: null });
    expect(byName.get('team0')!.team).toBeNull();
  });

  it('reads ARP monitoring without validation, and a bond that says nothing of it', () => {
    const arp: InventoryIpLink = { ifname: 'bond9', flags: ['UP', 'LOWER_UP'], link_type: 'ether', linkinfo: { info_kind: 'bond', info_data: { mode: 'balance-xor', miimon: 0, arp_interval: 500, arp_validate: 'none' } } };
    const bare: InventoryIpLink = { ifname: 'bond8', flags: ['UP'], link_type: 'ether', linkinfo: { info_kind: 'bond', info_data: {} } };
    expect(parseInventoryLinks([arp, bare]).map((l) => l.team)).toEqual([
      { mode: 'unknown', miimon: 0, arpInterval: 0, arpValidate: null, members: [] },
      { mode: 'balance-xor', miimon: 0, arpInterval: 500, arpValidate: 'none', members: [] },
    ]);
  });

  it('keeps at most 256 links, uplinks first', () => {
    const many: InventoryIpLink[] = Array.from({ length: 300 }, (_, i) => ({ ifname: `dummy${i}`, link_type: 'ether', linkinfo: { info_kind: 'dummy' } }));
    many.push({ ifname: 'zz-nic', link_type: 'ether' });
    const kept = parseInventoryLinks(many);
    expect(kept).toHaveLength(MAX_INVENTORY_LINKS);
    expect(kept.some((l) => l.name === 'zz-nic')).toBe(true);
  });
});

describe('a team from `teamdctl <team> state dump`', () => {
  it('reads an activebackup team: its runner as active-backup, link watches, the active port', () => {
    expect(parseTeamdState(fixture('teamd-activebackup.json'))).toEqual({
      mode: 'active-backup',
      miimon: 1,
      arpInterval: 200,
      arpValidate: 'active',
      members: [
        { name: 'enp175s0f0', up: true, active: true },
        { name: 'enp175s0f1', up: true, active: false },
      ],
    });
  });

  it('reads an lacp team’s selected ports as active, and a team with no link watch as unmonitored', () => {
    const dump = {
      setup: { runner_name: 'lacp' },
      ports: { p1: { link: { up: true }, runner: { selected: true } }, p2: { link: { up: true }, runner: { selected: false } } },
    };
    expect(parseTeamdState(JSON.stringify(dump))).toEqual({
      mode: '802.3ad',
      miimon: 0,
      arpInterval: 0,
      arpValidate: null,
      members: [
        { name: 'p1', up: true, active: true },
        { name: 'p2', up: true, active: false },
      ],
    });
  });

  it('reads anything else as no state dump', () => {
    expect(parseTeamdState('')).toBeNull();
    expect(parseTeamdState('{"ports": {}}')).toBeNull();
  });
});

describe('LLDP neighbours from `lldpcli -f json show neighbors details`', () => {
  it('reads two neighbours: one named, one without a system name; VLANs as an array or a single object', () => {
    const n = parseLldpNeighbors(fixture('lldpcli-neighbors.json'));
    expect([...n.keys()]).toEqual(['eno1', 'ens2f0']);
    expect(n.get('eno1')).toEqual({ chassisId: '00:1c:73:aa:bb:01', systemName: 'tor-a1.dc1.example.net', portId: 'Ethernet12', portDescription: 'hv11 eno1', vlans: [10, 100, 200] });
    expect(n.get('ens2f0')).toEqual({ chassisId: '00:1c:73:aa:bb:02', systemName: null, portId: 'Ethernet12', portDescription: null, vlans: [100] });
  });

  it('reads a single interface (no array), and no neighbours or no output as none', () => {
    const one = { lldp: { interface: { eth0: { chassis: { sw: { id: { type: 'mac', value: 'aa' } } }, port: { id: { type: 'ifname', value: 'Gi1/0/1' } } } } } };
    expect(parseLldpNeighbors(JSON.stringify(one)).get('eth0')).toEqual({ chassisId: 'aa', systemName: 'sw', portId: 'Gi1/0/1', portDescription: null, vlans: [] });
    expect(parseLldpNeighbors('{"lldp": {}}').size).toBe(0);
    expect(parseLldpNeighbors('').size).toBe(0);
  });
});

describe('a NIC from sysfs', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'sysfs-'));
    const nic = (ifname: string, pci: string | null, driver: string | null, numa: string | null) => {
      const net = join(root, 'sys/class/net');
      mkdirSync(net, { recursive: true });
      if (pci === null) {
        mkdirSync(join(net, ifname));
        return;
      }
      const device = join(root, 'sys/devices', pci);
      mkdirSync(device, { recursive: true });
      if (driver) {
        symlinkSync(`../../../bus/pci/drivers/${driver}`, join(device, 'driver'));
      }
      if (numa !== null) {
        writeFileSync(join(device, 'numa_node'), `${numa}\n`);
      }
      mkdirSync(join(net, ifname));
      symlinkSync(`../../../devices/${pci}`, join(net, ifname, 'device'));
    };
    nic('eno1', 'pci0000:17/0000:17:00.0/0000:18:00.0', 'ixgbe', '0');
    nic('ens2f0', 'pci0000:3a/0000:3a:00.0/0000:3b:00.0', 'i40e', '-1');
    nic('eth0', 'virtio0', 'virtio_net', null);
    nic('dummy0', null, null, null);
    // net.ipv4.conf: all 0, ens2f0 1 (eno1 and eth0 read 0 from all and their own 0, or nothing).
    const conf = join(root, 'proc/sys/net/ipv4/conf');
    for (const [dev, value] of [['all', '0'], ['eno1', '0'], ['ens2f0', '1']]) {
      mkdirSync(join(conf, dev), { recursive: true });
      writeFileSync(join(conf, dev, 'ignore_routes_with_linkdown'), `${value}\n`);
    }
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('reads the driver, PCI address and bus, and NUMA node (-1: unknown)', () => {
    expect(readNic(root, 'eno1')).toEqual({ driver: 'ixgbe', pciAddress: '0000:18:00.0', pciBus: '0000:18', numaNode: 0, ignoreRoutesWithLinkdown: false });
    expect(readNic(root, 'ens2f0')).toEqual({ driver: 'i40e', pciAddress: '0000:3b:00.0', pciBus: '0000:3b', numaNode: null, ignoreRoutesWithLinkdown: true });
  });

  it('reads a device off PCI without an address, and a link without a device as no NIC', () => {
    expect(readNic(root, 'eth0')).toEqual({ driver: 'virtio_net', pciAddress: null, pciBus: null, numaNode: null, ignoreRoutesWithLinkdown: null });
    expect(readNic(root, 'dummy0')).toBeNull();
    expect(readNic(root, 'nothere')).toBeNull();
    expect(readNic(root, '../x')).toBeNull();
  });
});

describe('the VTEP’s device and routes', () => {
  it('finds the device holding the VTEP address', () => {
    const addrs = JSON.parse(fixture('ip-addr.json')) as Parameters<typeof vtepDevice>[0];
    expect(vtepDevice(addrs, '10.0.0.11')).toBe('vtep0');
    expect(vtepDevice(addrs, '10.20.0.11')).toBe('bond0.100');
    expect(vtepDevice(addrs, '10.9.9.9')).toBeNull();
  });

  it('reads a multipath route’s devices, and a single route’s', () => {
    expect(routeDevices(JSON.parse(fixture('ip-route-get-multipath.json')))).toEqual(['bond0.100', 'bond1']);
    expect(routeDevices(JSON.parse(fixture('ip-route-get-single.json')))).toEqual(['bond0']);
  });

  it('samples at most 8 peers, deterministically and spread over the sorted list, leaving out the local VTEP', () => {
    const peers = Array.from({ length: 20 }, (_, i) => `10.0.1.${i + 10}`);
    const sampled = samplePeers([...peers].reverse().concat('10.0.0.11'), '10.0.0.11');
    expect(sampled).toHaveLength(8);
    expect(sampled).toEqual(samplePeers(peers, '10.0.0.11'));
    expect(samplePeers(['10.0.0.12', '10.0.0.11', '10.0.0.12'], '10.0.0.11')).toEqual(['10.0.0.12']);
  });
});

describe('ignore_routes_with_linkdown', () => {
  let root: string;
  const write = (dev: string, value: string) => {
    mkdirSync(join(root, 'proc/sys/net/ipv4/conf', dev), { recursive: true });
    writeFileSync(join(root, 'proc/sys/net/ipv4/conf', dev, 'ignore_routes_with_linkdown'), `${value}\n`);
  };
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'procfs-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("is in force when all's or the device's setting is on, off when both read 0, unknown when neither can be read", () => {
    expect(ignoresLinkdownRoutes(root, 'eth0')).toBeNull();
    write('all', '0');
    expect(ignoresLinkdownRoutes(root, 'eth0')).toBeNull();
    write('eth0', '0');
    expect(ignoresLinkdownRoutes(root, 'eth0')).toBe(false);
    write('eth0', '1');
    expect(ignoresLinkdownRoutes(root, 'eth0')).toBe(true);
    write('eth0', '0');
    write('all', '1');
    expect(ignoresLinkdownRoutes(root, 'eth0')).toBe(true);
    expect(ignoresLinkdownRoutes(root, 'eth9')).toBe(true);
  });
});
