import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectGoldenFile } from '../../../test/support/golden';
import { CommandError, type CommandRunner } from '../dataplane/linux/command-runner';
import { InventoryCollector, linkEventConcernsInventory } from './collector';
import { InventoryPoller, LINK_EVENT_DEBOUNCE_MS, toHostInventory } from './inventory-poller';

const fixture = (name: string): string => readFileSync(join(__dirname, '__fixtures__', name), 'utf8');

/** Answers recorded output by command line, records every command; a command without an answer fails as if not installed. */
class RecordingRunner implements CommandRunner {
  readonly commands: string[] = [];
  constructor(private readonly answers: Record<string, string>) {}
  run(cmd: string, args: string[]): Promise<string> {
    const line = [cmd, ...args].join(' ');
    this.commands.push(line);
    const answer = this.answers[line];
    return answer === undefined ? Promise.reject(new CommandError(`${cmd}: spawn ${cmd} ENOENT`, null, '')) : Promise.resolve(answer);
  }
}

const PEERS = ['10.0.0.12', '10.1.0.13'];
const answers = (): Record<string, string> => ({
  'ip -d -j link show': fixture('ip-link-bonded.json'),
  'teamdctl team0 state dump': fixture('teamd-activebackup.json'),
  'lldpcli -f json show neighbors details': fixture('lldpcli-neighbors.json'),
  'ip -j addr show': fixture('ip-addr.json'),
  'ip -j route get 10.0.0.12 fibmatch': fixture('ip-route-get-multipath.json'),
  'ip -j route get 10.1.0.13 fibmatch': fixture('ip-route-get-single.json'),
});

/**
 * The collector over recorded command output and a fake sysfs tree; the whole inventory is the
 * golden file __fixtures__/inventory.golden.json (after an intended change: OVERLAY_UPDATE_GOLDEN=1
 * npx jest src/agent/inventory/collector.spec.ts, and review the diff).
 */
describe('InventoryCollector', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'sysfs-'));
    const nics: [string, string, string, number][] = [
      ['eno1', '0000:18:00.0', 'ixgbe', 0],
      ['ens2f0', '0000:3b:00.0', 'i40e', 0],
      ['ens3f0', '0000:5e:00.0', 'mlx5_core', 1],
      ['ens3f1', '0000:5e:00.1', 'mlx5_core', 1],
      ['enp175s0f0', '0000:af:00.0', 'ice', -1],
      ['enp175s0f1', '0000:af:00.1', 'ice', -1],
    ];
    for (const [ifname, pci, driver, numa] of nics) {
      const device = join(root, 'sys/devices/pci0000:00', pci);
      mkdirSync(device, { recursive: true });
      symlinkSync(`../../../../bus/pci/drivers/${driver}`, join(device, 'driver'));
      writeFileSync(join(device, 'numa_node'), `${numa}\n`);
      mkdirSync(join(root, 'sys/class/net', ifname), { recursive: true });
      symlinkSync(`../../../devices/pci0000:00/${pci}`, join(root, 'sys/class/net', ifname, 'device'));
    }
    // Routes over eno1 stay in use without carrier (all and eno1 at 0); over ens2f0 they do not; the others unread.
    for (const [dev, value] of [['all', '0'], ['eno1', '0'], ['ens2f0', '1']]) {
      mkdirSync(join(root, 'proc/sys/net/ipv4/conf', dev), { recursive: true });
      writeFileSync(join(root, 'proc/sys/net/ipv4/conf', dev, 'ignore_routes_with_linkdown'), `${value}\n`);
    }
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('collects links, bonds, the team from teamd, NICs from sysfs, LLDP neighbours and the VTEP’s device and routes', async () => {
    const runner = new RecordingRunner(answers());
    const inventory = await new InventoryCollector({ runner, sysRoot: root }).collect({ vtepIp: '10.0.0.11', peerVteps: [...PEERS, '10.0.0.11', '10.0.0.12'] });
    expect(runner.commands).toEqual([
      'ip -d -j link show',
      'lldpcli -f json show neighbors details',
      'teamdctl team0 state dump',
      'ip -j addr show',
      'ip -j route get 10.0.0.12 fibmatch',
      'ip -j route get 10.1.0.13 fibmatch',
    ]);
    expectGoldenFile(join(__dirname, '__fixtures__', 'inventory.golden.json'), `${JSON.stringify(inventory, null, 2)}\n`);
    const eno1 = inventory.links.find((l) => l.name === 'eno1')!;
    expect(eno1.nic).toEqual({ driver: 'ixgbe', pciAddress: '0000:18:00.0', pciBus: '0000:18', numaNode: 0, ignoreRoutesWithLinkdown: false });
    expect(eno1.lldp?.systemName).toBe('tor-a1.dc1.example.net');
    expect(inventory.links.find((l) => l.name === 'team0')!.team?.mode).toBe('active-backup');
    expect(inventory.vtepDevice).toBe('vtep0');
    expect(inventory.vtepRoutes).toEqual([
      { destination: '10.0.0.12', devices: ['bond0.100', 'bond1'] },
      { destination: '10.1.0.13', devices: ['bond0'] },
    ]);
  });

  it('without lldpd, teamd or routes: lldp and team null, routes empty, warned once', async () => {
    const only = { 'ip -d -j link show': fixture('ip-link-bonded.json'), 'ip -j addr show': '[]' };
    const warnings: string[] = [];
    const collector = new InventoryCollector({ runner: new RecordingRunner(only), sysRoot: join(root, 'none'), logger: { warn: (m) => warnings.push(m) } });
    const scope = { vtepIp: '10.0.0.11', peerVteps: ['10.0.0.12'] };
    const inventory = await collector.collect(scope);
    await collector.collect(scope);
    expect(inventory.links.every((l) => l.lldp === null && l.nic === null)).toBe(true);
    expect(inventory.links.find((l) => l.name === 'team0')!.team).toBeNull();
    expect(inventory.vtepDevice).toBeNull();
    expect(inventory.vtepRoutes).toEqual([{ destination: '10.0.0.12', devices: [] }]);
    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toMatch(/LLDP neighbours unknown \(is lldpd installed and running\?\)/);
  });

  it('fails when ip link cannot be read; without a VTEP address asks no route', async () => {
    await expect(new InventoryCollector({ runner: new RecordingRunner({}), sysRoot: root }).collect({ vtepIp: '', peerVteps: [] })).rejects.toThrow(/ENOENT/);
    const runner = new RecordingRunner({ 'ip -d -j link show': '[]' });
    expect(await new InventoryCollector({ runner, sysRoot: root }).collect({ vtepIp: '', peerVteps: PEERS })).toEqual({ links: [], vtepDevice: null, vtepRoutes: [] });
    expect(runner.commands).toEqual(['ip -d -j link show', 'lldpcli -f json show neighbors details']);
  });

  it('asks the lldpd listening on another socket with lldpcli -u', async () => {
    const runner = new RecordingRunner({ 'ip -d -j link show': fixture('ip-link-bonded.json'), 'lldpcli -u /run/lldpd/ns-blue.socket -f json show neighbors details': fixture('lldpcli-neighbors.json') });
    const inventory = await new InventoryCollector({ runner, sysRoot: root, lldpdSocket: '/run/lldpd/ns-blue.socket' }).collect({ vtepIp: '', peerVteps: [] });
    expect(runner.commands).toContain('lldpcli -u /run/lldpd/ns-blue.socket -f json show neighbors details');
    expect(inventory.links.find((l) => l.name === 'eno1')!.lldp?.systemName).toBe('tor-a1.dc1.example.net');
  });
});

describe('InventoryPoller', () => {
  it('keeps the last inventory collected as the proto carries it (unknown fields unset), and the one before when a collection fails', async () => {
    let fail = false;
    const inventory = { links: [{ name: 'eno1', kind: 'physical' as const, up: true, master: null, team: null, nic: { driver: 'ixgbe', pciAddress: null, pciBus: null, numaNode: null, ignoreRoutesWithLinkdown: null }, lldp: null, vlanId: null, parent: null }], vtepDevice: null, vtepRoutes: [] };
    let changes = 0;
    const warnings: string[] = [];
    const poller = new InventoryPoller({ collect: () => (fail ? Promise.reject(new Error('boom')) : Promise.resolve(inventory)) }, () => ({ vtepIp: '', peerVteps: [] }), 60_000, { warn: (m) => warnings.push(m) }, () => changes++);
    expect(poller.last()).toBeUndefined();
    await poller.collectNow();
    expect(poller.last()).toEqual({ links: [{ name: 'eno1', kind: 'physical', up: true, team: null, nic: { driver: 'ixgbe' }, lldp: null }], vtepRoutes: [] });
    await poller.collectNow();
    expect(changes).toBe(1);
    fail = true;
    await poller.collectNow();
    expect(poller.last()).toEqual(toHostInventory(inventory));
    expect(warnings[0]).toMatch(/collection failed, keeping the last one: boom/);
  });

  it('collects nothing with an interval of 0', () => {
    const collect = jest.fn();
    const poller = new InventoryPoller({ collect }, () => ({ vtepIp: '', peerVteps: [] }), 0, { warn: () => undefined });
    poller.start();
    poller.stop();
    expect(collect).not.toHaveBeenCalled();
  });
});

describe('InventoryPoller: the span moves what it asks about', () => {
  it('collects again when the local VTEP or the sampled peers change, not otherwise', async () => {
    const scopes: string[] = [];
    let scope = { vtepIp: '', peerVteps: [] as string[] };
    const poller = new InventoryPoller(
      {
        collect: (s) => {
          scopes.push(`${s.vtepIp}|${s.peerVteps.join(',')}`);
          return Promise.resolve({ links: [], vtepDevice: null, vtepRoutes: [] });
        },
      },
      () => scope,
      3_600_000,
      { warn: () => undefined },
    );
    poller.start();
    await new Promise((r) => setImmediate(r));
    poller.scopeChanged(); // unchanged
    scope = { vtepIp: '10.0.0.11', peerVteps: ['10.0.0.12', '10.0.0.11'] };
    poller.scopeChanged();
    await new Promise((r) => setImmediate(r));
    scope = { vtepIp: '10.0.0.11', peerVteps: ['10.0.0.12'] }; // the same peers once the local VTEP is left out
    poller.scopeChanged();
    poller.stop();
    expect(scopes).toEqual(['|', '10.0.0.11|10.0.0.12,10.0.0.11']);
  });
});

describe('netlink link events', () => {
  it('concern the listed devices, not taps, veths or the agent’s own', () => {
    expect(linkEventConcernsInventory('3: ens2f0: <NO-CARRIER,BROADCAST,MULTICAST,SLAVE,UP> mtu 1500 qdisc mq master bond0 state DOWN mode DEFAULT group default')).toBe(true);
    expect(linkEventConcernsInventory('8: bond0.100@bond0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500')).toBe(true);
    expect(linkEventConcernsInventory('Deleted 7: team0: <BROADCAST,MULTICAST> mtu 1500')).toBe(true);
    for (const churn of ['15: tap0a1b2c3d: <BROADCAST> mtu 1500', 'Deleted 16: vx5000: <BROADCAST>', '17: br5000: <BROADCAST>', '18: veth1@if2: <UP>', '19: mx900: <UP>', '    link/ether 3c:ec:ef:10:20:01 brd ff:ff:ff:ff:ff:ff']) {
      expect(linkEventConcernsInventory(churn)).toBe(false);
    }
  });

  it('collect again once after a burst, while the poller runs', async () => {
    jest.useFakeTimers();
    try {
      let onLine: ((line: string) => void) | undefined;
      let stopped = false;
      const runner: CommandRunner = {
        run: (cmd, args) => Promise.resolve([cmd, ...args].join(' ') === 'ip -d -j link show' ? '[]' : '{}'),
        watch: (cmd, args, f) => {
          expect([cmd, ...args]).toEqual(['ip', 'monitor', 'link']);
          onLine = f;
          return { stop: () => (stopped = true) };
        },
      };
      const collector = new InventoryCollector({ runner, sysRoot: '/nonexistent' });
      const collect = jest.spyOn(collector, 'collect');
      const poller = new InventoryPoller(collector, () => ({ vtepIp: '', peerVteps: [] }), 3_600_000, { warn: () => undefined });
      poller.start();
      await jest.advanceTimersByTimeAsync(10);
      expect(collect).toHaveBeenCalledTimes(1);
      onLine!('3: ens2f0: <NO-CARRIER,BROADCAST,MULTICAST,SLAVE,UP> mtu 1500 master bond0 state DOWN');
      onLine!('6: bond0: <BROADCAST,MULTICAST,MASTER,UP,LOWER_UP> mtu 1500 state UP');
      onLine!('15: tap0a1b2c3d: <BROADCAST> mtu 1500');
      await jest.advanceTimersByTimeAsync(LINK_EVENT_DEBOUNCE_MS + 10);
      expect(collect).toHaveBeenCalledTimes(2);
      onLine!('15: tap0a1b2c3d: <BROADCAST> mtu 1500');
      await jest.advanceTimersByTimeAsync(LINK_EVENT_DEBOUNCE_MS + 10);
      expect(collect).toHaveBeenCalledTimes(2);
      poller.stop();
      expect(stopped).toBe(true);
    } finally {
      jest.useRealTimers();
    }
  });
});
