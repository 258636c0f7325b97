import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { emptyDataplaneState, fdbKey, type DataplanePlan, type FirewallRuleset, type MirrorFilterState, type MirrorMatch, type TrackedConnection } from '../dataplane';
import { mirrorCookie, planChanges } from '../../reconcile/plan';
import { mirrorCounters } from '../../reconcile/reconciler';
import { expectGoldenFile } from '../../../../test/support/golden';
import { mirrorProgram } from './mirror-bpf';
import { erspanAddLine, sinkCookie } from './mirrors';
import { batchErrors, MAX_PORT_REASON, tapFailures, tapOfLine } from './links.driver';
import { tapName } from '../names';
import { ProcessCommandRunner, type CommandRunner } from './command-runner';
import type { Logger } from '../../../common/logger';
import { FakeKernel } from './fake-kernel';
import { LinuxDataplane } from './linux.dataplane';
import { renderRuleset } from './nftables';
import { hostKernelState } from './kernel-view';
import { TAP_GATE_BLOCK, VXLAN_GATE_BLOCK } from './tc-gate';

class RecordingLogger implements Logger {
  readonly lines: string[] = [];
  info(m: string): void {
    this.lines.push(`info ${m}`);
  }
  warn(m: string): void {
    this.lines.push(`warn ${m}`);
  }
}

/** The commands that build segment `vni` exactly as the dataplane leaves it (without the gate). */
const ownSegment = (vni: number, local: string, opts: { id?: number } = {}): string[] => [
  `ip link add name br${vni} type bridge`,
  `ip link set dev br${vni} alias overlay-agent`,
  `ip link set dev br${vni} up`,
  `ip link add name vx${vni} type vxlan id ${opts.id ?? vni} local ${local} dstport 4789 nolearning`,
  `ip link set dev vx${vni} alias overlay-agent`,
  `ip link set dev vx${vni} master br${vni}`,
  `ip link set dev vx${vni} type bridge_slave learning off`,
  `ip link set dev vx${vni} up`,
];
const remote = (vni: number, mac: string, dst: string): string => `bridge fdb append ${mac} dev vx${vni} dst ${dst} self permanent`;
/** The host's own bridge: named like ours, no alias. Must never be read as a segment nor changed. */
const hostBridge = (name: string): string[] => [`ip link add name ${name} type bridge`, `ip link set dev ${name} up`];

/** A fake kernel with the host's uplink, and `commands` run on it. */
function kernelWith(...commands: string[][]): FakeKernel {
  const kernel = new FakeKernel().addVeth('eth0', { up: true });
  commands.flat().forEach((c) => kernel.sh(c));
  return kernel;
}

const READS = ['bridge fdb show', 'ip -j -d link show', 'tc -j qdisc show clsact'];

/** A ruleset of this text (the Linux dataplane loads the text; the tap digests are the agent's). */
const ruleset = (text: string): FirewallRuleset => ({ text, ports: new Map() });


/** `value` as JSON printed the way nft -j prints it: `", "` between items, `": "` after keys. */
function nftSpaced(value: unknown): string {
  if (Array.isArray(value)) {
    return `[${value.map(nftSpaced).join(', ')}]`;
  }
  if (typeof value === 'object' && value !== null) {
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${nftSpaced(v)}`).join(', ')}}`;
  }
  return JSON.stringify(value);
}
describe('LinuxDataplane.observe', () => {
  it('maps exactly the links and entries it owns to DataplaneState', async () => {
    const kernel = kernelWith(
      hostBridge('br0'),
      ownSegment(1000, '192.0.2.1'),
      // Degraded: down and learning on.
      ownSegment(2000, '192.0.2.1').filter((c) => !c.endsWith('vx2000 up')),
      ['ip link set dev vx2000 type vxlan learning'],
      // Not ours: no alias, though named like ours.
      ['ip link add name vx3000 type vxlan id 3000 local 192.0.2.1 dstport 4789 nolearning'],
      hostBridge('br7'),
    );
    kernel.addVeth('tap0123456789a', { up: true, master: 'br1000' }).addVeth('tapdeadbeef000', { master: 'br1000' }).addVeth('tapffffffff000', { up: true, master: 'br0' });
    [
      remote(1000, '02:00:00:00:00:02', '192.0.2.2'),
      remote(1000, '00:00:00:00:00:00', '192.0.2.3'),
      remote(1000, '00:00:00:00:00:00', '192.0.2.2'),
      remote(1000, '02:00:00:00:00:03', '192.0.2.3'),
      remote(1000, '02:00:00:00:00:03', '192.0.2.2'),
      remote(2000, '00:00:00:00:00:00', '192.0.2.2'),
      remote(3000, '02:00:00:00:00:09', '192.0.2.9'),
    ].forEach((c) => kernel.sh(c));
    kernel.learn('vx1000', 'e2:7d:db:fd:9e:36');
    kernel.learn('tapffffffff000', 'be:93:12:31:8e:a0');
    kernel.fdb.push({ ifname: 'tap0123456789a', mac: '33:33:00:00:00:01' });

    const state = await new LinuxDataplane(kernel, new RecordingLogger()).observe();
    expect(kernel.calls.sort()).toEqual(READS);
    expect([...state.segments.values()]).toEqual([
      { vni: 1000, localVtep: '192.0.2.1', floodVteps: ['192.0.2.2', '192.0.2.3'] },
      // Down and learning on: reported without a local VTEP, so the plan puts it again.
      { vni: 2000, localVtep: '', floodVteps: ['192.0.2.2'] },
    ]);
    expect(Object.fromEntries(state.fdb)).toEqual({
      [fdbKey(1000, '02:00:00:00:00:02')]: { vni: 1000, mac: '02:00:00:00:00:02', vtep: '192.0.2.2' },
      // Two destinations for one MAC: reported joined, so it never equals a desired entry.
      [fdbKey(1000, '02:00:00:00:00:03')]: { vni: 1000, mac: '02:00:00:00:00:03', vtep: '192.0.2.2,192.0.2.3' },
    });
    expect(Object.fromEntries(state.ports)).toEqual({
      tap0123456789a: { tap: 'tap0123456789a', vni: 1000 },
      // Attached but down: VNI -1, so the plan puts it again.
      tapdeadbeef000: { tap: 'tapdeadbeef000', vni: -1 },
    });
  });

  it('reports a segment whose bridge lost its VXLAN port as needing repair', async () => {
    const kernel = kernelWith(ownSegment(1000, '192.0.2.1'), ['ip link set dev vx1000 nomaster']);
    const state = await new LinuxDataplane(kernel, new RecordingLogger()).observe();
    expect(state.segments.get(1000)).toEqual({ vni: 1000, localVtep: '', floodVteps: [] });
  });

  it('keeps what it saw of the taps (promiscuity, bridged) and of its own bridges (ageing, in seconds) for the host observation', async () => {
    const kernel = kernelWith(hostBridge('br0'), ownSegment(1000, '192.0.2.1'), ownSegment(2000, '192.0.2.1'), hostBridge('br3000'));
    kernel.addVeth('tap0123456789a', { up: true, master: 'br1000' }).addVeth('tapdeadbeef000', { up: true }).addVeth('tapffffffff000', { up: true, master: 'br0' });
    ['ip link set dev tap0123456789a promisc on', 'ip link set dev tapdeadbeef000 promisc on', 'ip link set dev br2000 type bridge ageing_time 0', 'ip link set dev br3000 type bridge ageing_time 0'].forEach((c) => kernel.sh(c));
    const dataplane = new LinuxDataplane(kernel, new RecordingLogger());
    expect(dataplane.observeHost()).toBeUndefined();
    await dataplane.observe();
    expect(kernel.calls.sort()).toEqual(READS); // no read of its own: the observe's
    const host = dataplane.observeHost()!;
    // Every link that may be a tap (a tap may be named anything but the agent's own devices' names).
    expect(Object.fromEntries(host.taps)).toEqual({
      eth0: { promiscuity: 0, bridged: false },
      tap0123456789a: { promiscuity: 2, bridged: true },
      tapdeadbeef000: { promiscuity: 1, bridged: false },
      tapffffffff000: { promiscuity: 1, bridged: true },
    });
    // br0 and br3000 (no alias) are the host's: never reported as segments.
    expect(Object.fromEntries(host.bridgeAgeing)).toEqual({ 1000: 300, 2000: 0 });
  });

  it('reads the numbers as iproute2 prints them (recorded `ip -d -j link show`)', () => {
    const recorded = [
      { ifindex: 7, ifname: 'br5000', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], promiscuity: 0, ifalias: 'overlay-agent', linkinfo: { info_kind: 'bridge', info_data: { forward_delay: 1500, hello_time: 200, max_age: 2000, ageing_time: 0, stp_state: 0 } } },
      { ifindex: 8, ifname: 'tap0123456789a', master: 'br5000', promiscuity: 1, linkinfo: { info_kind: 'tun', info_data: { type: 'tap', pi: false, vnet_hdr: false, multi_queue: false, persist: true }, info_slave_kind: 'bridge' } },
      { ifindex: 9, ifname: 'tapdeadbeef000', promiscuity: 0, linkinfo: { info_kind: 'tun', info_data: { type: 'tap' } } },
      { ifindex: 10, ifname: 'tapnocount0000' },
    ];
    const host = hostKernelState({ links: new Map(recorded.map((l) => [l.ifname, l])) });
    expect(Object.fromEntries(host.taps)).toEqual({ tap0123456789a: { promiscuity: 1, bridged: true }, tapdeadbeef000: { promiscuity: 0, bridged: false } });
    expect(Object.fromEntries(host.bridgeAgeing)).toEqual({ 5000: 0 });
  });

  it('reads an empty kernel as an empty state', async () => {
    const state = await new LinuxDataplane(new FakeKernel(), new RecordingLogger()).observe();
    expect(state.segments.size + state.fdb.size + state.ports.size).toBe(0);
  });
});

describe('LinuxDataplane.apply', () => {
  const plan: DataplanePlan = [
    { op: 'put-segment', segment: { vni: 1000, localVtep: '192.0.2.1', floodVteps: ['192.0.2.2', '192.0.2.3'] } },
    { op: 'put-fdb', entry: { vni: 1000, mac: '02:00:00:00:00:02', vtep: '192.0.2.2' } },
    { op: 'put-fdb', entry: { vni: 1000, mac: '02:00:00:00:00:03', vtep: '192.0.2.3' } },
    { op: 'put-port', port: { tap: 'tap0123456789a', vni: 1000 } },
  ];
  /** What observe reads once `plan` is in force. */
  const planned = {
    segments: { 1000: { vni: 1000, localVtep: '192.0.2.1', floodVteps: ['192.0.2.2', '192.0.2.3'] } },
    fdb: {
      [fdbKey(1000, '02:00:00:00:00:02')]: { vni: 1000, mac: '02:00:00:00:00:02', vtep: '192.0.2.2' },
      [fdbKey(1000, '02:00:00:00:00:03')]: { vni: 1000, mac: '02:00:00:00:00:03', vtep: '192.0.2.3' },
    },
    ports: { tap0123456789a: { tap: 'tap0123456789a', vni: 1000 } },
  };
  async function observed(kernel: FakeKernel) {
    const state = await new LinuxDataplane(kernel, new RecordingLogger()).observe();
    return { segments: Object.fromEntries(state.segments), fdb: Object.fromEntries(state.fdb), ports: Object.fromEntries(state.ports) };
  }

  it('programs a new segment in an ip batch, attaches its tap in a second one, then puts the entries in one bridge batch', async () => {
    const kernel = kernelWith(hostBridge('br0')).addVeth('tap0123456789a');
    await new LinuxDataplane(kernel, new RecordingLogger()).apply(plan);
    expect(kernel.batches()).toEqual([
      [
        'ip',
        'link add name br1000 type bridge',
        'link set dev br1000 alias overlay-agent',
        'link set dev br1000 addrgenmode none',
        'link add name vx1000 type vxlan id 1000 local 192.0.2.1 dstport 4789 nolearning',
        'link set dev vx1000 alias overlay-agent',
        'link set dev vx1000 addrgenmode none',
        'link set dev vx1000 master br1000',
        'link set dev vx1000 type bridge_slave learning off',
        'link set dev vx1000 up',
        'link set dev br1000 up',
        '',
      ].join('\n'),
      ['ip -force', 'link set dev tap0123456789a master br1000', 'link set dev tap0123456789a up', ''].join('\n'),
      [
        'bridge',
        'fdb append 00:00:00:00:00:00 dev vx1000 dst 192.0.2.2 self permanent',
        'fdb append 00:00:00:00:00:00 dev vx1000 dst 192.0.2.3 self permanent',
        'fdb replace 02:00:00:00:00:02 dev vx1000 dst 192.0.2.2 self permanent',
        'fdb replace 02:00:00:00:00:03 dev vx1000 dst 192.0.2.3 self permanent',
        '',
      ].join('\n'),
    ]);
    expect(await observed(kernel)).toEqual(planned);
    expect(kernel.links.get('br0')).toEqual({ ifindex: 2, ifname: 'br0', kind: 'bridge', up: true });
  });

  it('runs nothing but its reads when the kernel already matches (idempotent)', async () => {
    const kernel = kernelWith().addVeth('tap0123456789a');
    await new LinuxDataplane(kernel, new RecordingLogger()).apply(plan);
    kernel.calls.length = 0;
    await new LinuxDataplane(kernel, new RecordingLogger()).apply(plan);
    expect(kernel.mutations()).toEqual([]);
    expect(kernel.calls.sort()).toEqual(READS);
  });

  it('repairs drift with the fewest commands, removals first', async () => {
    const kernel = kernelWith(
      ownSegment(1000, '192.0.2.1'),
      ['ip link set dev vx1000 down', 'ip link set dev vx1000 type bridge_slave learning on'],
      ownSegment(2000, '192.0.2.1'),
      [
        remote(1000, '00:00:00:00:00:00', '192.0.2.2'),
        remote(1000, '00:00:00:00:00:00', '192.0.2.9'),
        remote(1000, '02:00:00:00:00:02', '192.0.2.9'),
        remote(1000, '02:00:00:00:00:03', '192.0.2.3'),
        remote(1000, '02:00:00:00:00:03', '192.0.2.2'),
        remote(1000, '02:00:00:00:00:04', '192.0.2.2'),
        remote(2000, '02:00:00:00:00:05', '192.0.2.2'),
      ],
    );
    kernel.addVeth('tap0123456789a', { up: true, master: 'br2000' }).addVeth('tap00000000bbb', { up: true, master: 'br1000' });
    await new LinuxDataplane(kernel, new RecordingLogger()).apply([
      { op: 'remove-port', tap: 'tap0123456789a' },
      { op: 'remove-port', tap: 'tap00000000bbb' },
      { op: 'remove-fdb', vni: 1000, mac: '02:00:00:00:00:04' },
      { op: 'remove-fdb', vni: 2000, mac: '02:00:00:00:00:05' },
      { op: 'remove-segment', vni: 2000 },
      ...plan,
    ]);
    expect(kernel.batches()).toEqual([
      [
        'bridge',
        'fdb del 02:00:00:00:00:04 dev vx1000 self',
        'fdb del 00:00:00:00:00:00 dev vx1000 dst 192.0.2.9 self',
        'fdb del 02:00:00:00:00:03 dev vx1000 self',
        '',
      ].join('\n'),
      [
        'ip',
        // tap0123456789a moves from br2000 to br1000 directly: no detach in between.
        'link set dev tap00000000bbb nomaster',
        'link del dev vx2000',
        'link del dev br2000',
        'link set dev vx1000 type bridge_slave learning off',
        'link set dev vx1000 up',
        '',
      ].join('\n'),
      ['ip -force', 'link set dev tap0123456789a master br1000', ''].join('\n'),
      [
        'bridge',
        'fdb append 00:00:00:00:00:00 dev vx1000 dst 192.0.2.3 self permanent',
        'fdb replace 02:00:00:00:00:02 dev vx1000 dst 192.0.2.2 self permanent',
        'fdb replace 02:00:00:00:00:03 dev vx1000 dst 192.0.2.3 self permanent',
        '',
      ].join('\n'),
    ]);
    expect(await observed(kernel)).toEqual(planned);
    expect(kernel.links.get('tap00000000bbb')?.master).toBeUndefined();
  });

  it('repairs drift by hand (a device down, an entry deleted, a tap detached) when the same plan is applied again', async () => {
    const kernel = kernelWith().addVeth('tap0123456789a');
    await new LinuxDataplane(kernel, new RecordingLogger()).apply(plan);
    ['ip link set dev vx1000 down', 'bridge fdb del 02:00:00:00:00:02 dev vx1000 self', 'bridge fdb del 00:00:00:00:00:00 dev vx1000 dst 192.0.2.3 self', 'ip link set dev tap0123456789a nomaster'].forEach((c) => kernel.sh(c));
    expect(await observed(kernel)).not.toEqual(planned);
    await new LinuxDataplane(kernel, new RecordingLogger()).apply(plan);
    expect(await observed(kernel)).toEqual(planned);
  });

  it('recreates a VXLAN device with the wrong VNI and puts its entries back', async () => {
    const kernel = kernelWith(ownSegment(1000, '192.0.2.1', { id: 1001 }), [remote(1000, '02:00:00:00:00:07', '192.0.2.7'), remote(1000, '00:00:00:00:00:00', '192.0.2.2')]);
    await new LinuxDataplane(kernel, new RecordingLogger()).apply([{ op: 'put-segment', segment: { vni: 1000, localVtep: '192.0.2.1', floodVteps: ['192.0.2.2'] } }]);
    expect(kernel.batches()).toEqual([
      [
        'ip',
        'link del dev vx1000',
        'link add name vx1000 type vxlan id 1000 local 192.0.2.1 dstport 4789 nolearning',
        'link set dev vx1000 alias overlay-agent',
        'link set dev vx1000 addrgenmode none',
        'link set dev vx1000 master br1000',
        'link set dev vx1000 type bridge_slave learning off',
        'link set dev vx1000 up',
        '',
      ].join('\n'),
      ['bridge', 'fdb append 00:00:00:00:00:00 dev vx1000 dst 192.0.2.2 self permanent', 'fdb replace 02:00:00:00:00:07 dev vx1000 dst 192.0.2.7 self permanent', ''].join('\n'),
    ]);
    expect(await observed(kernel)).toEqual({
      segments: { 1000: { vni: 1000, localVtep: '192.0.2.1', floodVteps: ['192.0.2.2'] } },
      fdb: { [fdbKey(1000, '02:00:00:00:00:07')]: { vni: 1000, mac: '02:00:00:00:00:07', vtep: '192.0.2.7' } },
      ports: {},
    });
  });

  it('changes the local VTEP in place', async () => {
    const kernel = kernelWith(ownSegment(1000, '192.0.2.9'));
    await new LinuxDataplane(kernel, new RecordingLogger()).apply([{ op: 'put-segment', segment: { vni: 1000, localVtep: '192.0.2.1', floodVteps: [] } }]);
    expect(kernel.batches()).toEqual(['ip\nlink set dev vx1000 type vxlan local 192.0.2.1 nolearning\n']);
    expect((await observed(kernel)).segments[1000]).toEqual({ vni: 1000, localVtep: '192.0.2.1', floodVteps: [] });
  });

  it('skips a tap that does not exist yet, logs it once, applies the rest, and attaches the tap once it exists', async () => {
    const kernel = kernelWith(ownSegment(1000, '192.0.2.1'));
    const logger = new RecordingLogger();
    const dataplane = new LinuxDataplane(kernel, logger);
    const step: DataplanePlan = [
      { op: 'put-fdb', entry: { vni: 1000, mac: '02:00:00:00:00:02', vtep: '192.0.2.2' } },
      { op: 'put-port', port: { tap: 'tap0123456789a', vni: 1000 } },
    ];
    await dataplane.apply(step);
    expect(kernel.batches()).toEqual(['bridge\nfdb replace 02:00:00:00:00:02 dev vx1000 dst 192.0.2.2 self permanent\n']);
    await dataplane.apply(step);
    expect(kernel.mutations()).toHaveLength(1); // the entry is there: nothing more to do
    expect(logger.lines).toEqual(['warn tap tap0123456789a does not exist yet; its port is reported not in place (failed_ports) and attached by a retry once it exists']);
    expect((await observed(kernel)).fdb).toEqual({ [fdbKey(1000, '02:00:00:00:00:02')]: { vni: 1000, mac: '02:00:00:00:00:02', vtep: '192.0.2.2' } });
    kernel.addVeth('tap0123456789a');
    await dataplane.apply(step);
    expect((await observed(kernel)).ports).toEqual({ tap0123456789a: { tap: 'tap0123456789a', vni: 1000 } });
  });

  it('leaves links it does not own alone, and refuses to build a segment over them', async () => {
    const kernel = kernelWith(hostBridge('br0'), hostBridge('br7'), ['ip link add name vx3000 type vxlan id 3000 local 192.0.2.1 dstport 4789 nolearning']);
    kernel.addVeth('tap0123456789a', { up: true, master: 'br7' });
    const before = JSON.stringify([...kernel.links.values()]);
    const dataplane = new LinuxDataplane(kernel, new RecordingLogger());
    await dataplane.apply([
      { op: 'remove-port', tap: 'tap0123456789a' },
      { op: 'remove-segment', vni: 7 },
      { op: 'remove-segment', vni: 3000 },
    ]);
    expect(kernel.batches()).toEqual([]);
    await expect(dataplane.apply([{ op: 'put-segment', segment: { vni: 7, localVtep: '192.0.2.1', floodVteps: [] } }])).rejects.toThrow(
      'cannot program segment 7: link br7 exists but is not an overlay-agent bridge (alias overlay-agent); it is left untouched, rename or delete it',
    );
    expect(kernel.batches()).toEqual([]);
    expect(JSON.stringify([...kernel.links.values()])).toBe(before);
  });

  it('refuses a step whose values would not be safe in a batch script, before running anything', async () => {
    const kernel = new FakeKernel();
    const dataplane = new LinuxDataplane(kernel, new RecordingLogger());
    await expect(dataplane.apply([{ op: 'put-fdb', entry: { vni: 1000, mac: '02:00:00:00:00:02', vtep: '192.0.2.2\nlink del dev eth0' } }])).rejects.toThrow('put-fdb: "192.0.2.2\\nlink del dev eth0" is not an IP address');
    await expect(dataplane.apply([{ op: 'put-port', port: { tap: 'vx1000', vni: 1000 } }])).rejects.toThrow('put-port: "vx1000" is not a tap name');
    await expect(dataplane.apply([{ op: 'put-port', port: { tap: 'tap0 up', vni: 1000 } }])).rejects.toThrow('put-port: "tap0 up" is not a tap name');
    await expect(dataplane.apply([{ op: 'remove-segment', vni: 0 }])).rejects.toThrow('remove-segment: VNI 0 out of range');
    expect(kernel.calls).toEqual([]);
  });

  it('throws when a batch line that concerns no port fails, naming the line', async () => {
    const kernel = kernelWith();
    kernel.failLine('ip link set dev vx1000 up', 'RTNETLINK answers: Operation not permitted');
    await expect(new LinuxDataplane(kernel, new RecordingLogger()).apply([{ op: 'put-segment', segment: { vni: 1000, localVtep: '192.0.2.1', floodVteps: [] } }])).rejects.toThrow(
      /^ip -batch failed at "link set dev vx1000 up": ip -batch - exited with status 1: RTNETLINK answers: Operation not permitted/,
    );
  });

  it("reports a tap whose attachment the kernel refuses, with the kernel's reason, and attaches the other taps and puts the entries", async () => {
    const kernel = kernelWith(ownSegment(1000, '192.0.2.1')).addVeth('tap0000000aaa1').addVeth('tap0000000bbb2');
    kernel.failLine('ip link set dev tap0000000aaa1 master br1000', 'RTNETLINK answers: Device or resource busy\u001b[31m\nline two');
    const dataplane = new LinuxDataplane(kernel, new RecordingLogger());
    const plan: DataplanePlan = [
      { op: 'put-fdb', entry: { vni: 1000, mac: '02:00:00:00:00:02', vtep: '192.0.2.2' } },
      { op: 'put-port', port: { tap: 'tap0000000aaa1', vni: 1000 } },
      { op: 'put-port', port: { tap: 'tap0000000bbb2', vni: 1000 } },
      { op: 'put-port', port: { tap: 'tap0000000ccc3', vni: 1000 } },
    ];
    await dataplane.apply(plan);
    expect(Object.fromEntries(dataplane.portFailures())).toEqual({
      tap0000000ccc3: 'tap tap0000000ccc3 does not exist (the hypervisor has not created it yet)',
      // Kernel output is hostile text: control characters gone, line breaks made spaces.
      tap0000000aaa1: 'ip refused "link set dev tap0000000aaa1 master br1000": RTNETLINK answers: Device or resource busy[31m line two',
    });
    const state = await observed(kernel);
    // The refused tap's "up" line ran (forced batch) but it is in no bridge: closed.
    expect(state.ports).toEqual({ tap0000000bbb2: { tap: 'tap0000000bbb2', vni: 1000 } });
    expect(Object.keys(state.fdb)).toEqual([fdbKey(1000, '02:00:00:00:00:02')]);
    kernel.healed();
    kernel.addVeth('tap0000000ccc3');
    await dataplane.apply(planChanges({ ...emptyDataplaneState(), ports: new Map(plan.flatMap((s) => (s.op === 'put-port' ? [[s.port.tap, s.port]] : []))) }, await dataplane.observe(), false));
    expect(dataplane.portFailures().size).toBe(0);
    expect(Object.keys((await observed(kernel)).ports).sort()).toEqual(['tap0000000aaa1', 'tap0000000bbb2', 'tap0000000ccc3']);
  });
});

describe('tapFailures', () => {
  const lines = ['qdisc add dev tap0000000aaa1 egress_block 4701 clsact', 'qdisc add dev vx1000 egress_block 4702 clsact', 'link set dev tap0000000bbb2 up', 'link set dev tap0000000aaa1 up'];

  it('maps the failed lines of a forced batch to their taps, the first reason of each', () => {
    const said = batchErrors('Error: Exclusivity flag on, cannot modify.\nCommand failed -:1\nCannot find device "tap0000000bbb2"\nCommand failed -:3\nsecond\nCommand failed -:4\n');
    expect(tapFailures('tc', lines, said)).toEqual({
      taps: new Map([
        ['tap0000000aaa1', 'tc refused "qdisc add dev tap0000000aaa1 egress_block 4701 clsact": Error: Exclusivity flag on, cannot modify.'],
        ['tap0000000bbb2', 'tc refused "link set dev tap0000000bbb2 up": Cannot find device "tap0000000bbb2"'],
      ]),
      unattributed: [],
    });
  });

  it('keeps the lines that concern no tap apart (they fail the whole apply), and bounds a reason', () => {
    const said = new Map([
      [2, 'RTNETLINK answers: File exists'],
      [3, 'x'.repeat(5000)],
      [9, 'a line the batch did not have'],
    ]);
    const { taps, unattributed } = tapFailures('ip', lines, said);
    expect(unattributed).toEqual(['"qdisc add dev vx1000 egress_block 4702 clsact": RTNETLINK answers: File exists', 'line 9: a line the batch did not have']);
    expect(taps.get('tap0000000bbb2')!.length).toBeLessThanOrEqual(MAX_PORT_REASON + 40);
    expect(taps.get('tap0000000bbb2')).toMatch(/^ip refused "link set dev tap0000000bbb2 up": x+… \(cut: \d+ characters in all\)$/);
  });

  it('reads a tap only from a "dev <tap>" word', () => {
    expect(tapOfLine('link set dev tap0123456789a master br1000')).toBe('tap0123456789a');
    expect(tapOfLine('qdisc del dev tap0123456789a clsact')).toBe('tap0123456789a');
    expect(tapOfLine('link set dev vx1000 up')).toBeUndefined();
    expect(tapOfLine('link set dev tapx-evil up')).toBeUndefined();
  });
});

describe('LinuxDataplane.applyFirewall', () => {
  it('loads the ruleset text in one nft -f - transaction', async () => {
    const kernel = new FakeKernel();
    await new LinuxDataplane(kernel, new RecordingLogger()).applyFirewall(ruleset('table bridge overlay\n'));
    expect(kernel.calls).toEqual(['nft -f -\ntable bridge overlay\n']);
    expect([...kernel.nft.keys()]).toEqual(['bridge overlay']);
  });

  it('throws when nft fails', async () => {
    await expect(new LinuxDataplane(new FakeKernel(), new RecordingLogger()).applyFirewall(ruleset('bad'))).rejects.toThrow(/syntax error/);
  });

  it('leaves the kernel holding the rendered firewall, and a check of an unchanged kernel changes nothing', async () => {
    const kernel = new FakeKernel();
    const dataplane = new LinuxDataplane(kernel, new RecordingLogger());
    const port = '019a0000-0000-7000-8000-00000000aaa1';
    const text = renderRuleset({ policies: [{ portId: port, portSecurity: true, mac: 'fa:16:3e:aa:00:01', ips: ['10.0.0.5'], allowedAddressPairs: [], ingress: [], egress: [] }], members: [], tapOf: tapName, vnis: [1000], conntrack: 'bridge' });
    await dataplane.applyFirewall(ruleset(text));
    const table = kernel.nft.get('bridge overlay')!;
    expect(table.sets.get('port_ips4')?.elements).toEqual([`"${tapName(port)}" . 10.0.0.5`]);
    expect(table.chains.get('vm_egress')?.rules.map((r) => r.text)).toEqual(['meta mark set meta mark & 0xf3ffffff', 'iifname vmap @eg_ports', 'iifname "tap*" drop', 'iifname @named_taps drop']);
    kernel.calls.length = 0;
    const again: FirewallRuleset = { text, ports: new Map([[tapName(port), 'digest']]) };
    await dataplane.applyFirewall(again);
    expect(kernel.mutations()).toEqual([]);
    expect(dataplane.firewallInForce()).toBe(again); // the same text: the latest digests describe what is in force
  });
});

describe('LinuxDataplane.applyFirewall element updates of the rendered firewall', () => {
  const GROUP = '019a0000-0000-7000-8000-0000000000g1';
  const ports = ['019a0000-0000-7000-8000-00000000aaa1', '019a0000-0000-7000-8000-00000000aaa2', '019a0000-0000-7000-8000-00000000aaa3'];
  const ssh = { ethertype: 'IPv4', protocol: '6', portMin: 22, portMax: 22, icmpType: -1, icmpCode: -1, remoteCidr: '', remoteGroupId: GROUP };
  const web = { ...ssh, portMin: 443, portMax: 443, remoteGroupId: '', remoteCidr: '0.0.0.0/0' };
  const policy = (i: number, ingress: (typeof ssh)[], ips = [`10.0.0.${i + 1}`]) => ({ portId: ports[i], portSecurity: true, mac: `fa:16:3e:aa:00:0${i + 1}`, ips, allowedAddressPairs: [], ingress, egress: [] });
  const render = (policies: ReturnType<typeof policy>[], members: string[]) =>
    renderRuleset({ policies, members: members.map((cidr) => ({ groupId: GROUP, family: cidr.includes(':') ? 'IPv6' : 'IPv4', cidr })), tapOf: tapName, vnis: [1000], conntrack: 'bridge' });

  it("swaps a port to a chain already there, and members in and out of a group, as element deletes and adds (a map by its key), each landing as rendered", async () => {
    const kernel = new FakeKernel();
    const logger = new RecordingLogger();
    const dp = new LinuxDataplane(kernel, logger);
    const before = render([policy(0, [ssh]), policy(1, [ssh]), policy(2, [web])], ['10.1.0.1', '10.1.0.9', 'fd00::1']);
    await dp.applyFirewall(ruleset(before));
    kernel.calls.length = 0;
    const after = render([policy(0, [web]), policy(1, [ssh]), policy(2, [web], ['10.0.0.3', '10.0.0.33'])], ['10.1.0.9', '10.1.0.20', 'fd00::1']);
    await dp.applyFirewall(ruleset(after));
    const tap = tapName(ports[0]);
    expect(kernel.calls).toHaveLength(1);
    expect(kernel.calls[0].split('\n')).toEqual([
      'nft -f -',
      expect.stringMatching(/^delete element bridge overlay g_\w+_4 \{ 10\.1\.0\.1 \}$/),
      expect.stringMatching(/^add element bridge overlay g_\w+_4 \{ 10\.1\.0\.20 \}$/),
      `add element bridge overlay port_ips4 { "${tapName(ports[2])}" . 10.0.0.33 }`,
      `delete element bridge overlay in_ports { "${tap}" }`,
      expect.stringMatching(new RegExp(`^add element bridge overlay in_ports \\{ "${tap}" : jump p_\\w+_in \\}$`)),
      '',
    ]);
    // The kernel holds what a whole load of `after` leaves, and the next check finds it so.
    const loaded = new FakeKernel();
    await new LinuxDataplane(loaded, new RecordingLogger()).applyFirewall(ruleset(after));
    const sets = (k: FakeKernel) => [...k.nft.get('bridge overlay')!.sets].map(([name, set]) => [name, [...set.elements].sort()]);
    expect(sets(kernel)).toEqual(sets(loaded));
    kernel.calls.length = 0;
    await dp.applyFirewall(ruleset(after));
    expect(kernel.calls).toEqual(['nft -j list table bridge overlay']);
    expect(logger.lines).toEqual([]);
  });
});

describe('LinuxDataplane.applyFirewall element updates on the real nft (root only)', () => {
  const GROUP = '019a0000-0000-7000-8000-0000000000g1';
  const ports = ['019a0000-0000-7000-8000-00000000bbb1', '019a0000-0000-7000-8000-00000000bbb2', '019a0000-0000-7000-8000-00000000bbb3'];
  const ssh = { ethertype: 'IPv4', protocol: '6', portMin: 22, portMax: 22, icmpType: -1, icmpCode: -1, remoteCidr: '', remoteGroupId: GROUP };
  const web = { ...ssh, portMin: 443, portMax: 443, remoteGroupId: '', remoteCidr: '0.0.0.0/0' };
  const policy = (i: number, ingress: (typeof ssh)[], ips = [`10.0.0.${i + 1}`]) => ({ portId: ports[i], portSecurity: true, mac: `fa:16:3e:aa:00:0${i + 1}`, ips, allowedAddressPairs: [], ingress, egress: [] });
  const render = (policies: ReturnType<typeof policy>[], members: string[]) =>
    renderRuleset({ policies, members: members.map((cidr) => ({ groupId: GROUP, family: cidr.includes(':') ? 'IPv6' : 'IPv4', cidr })), tapOf: tapName, vnis: [1000], conntrack: 'br_netfilter' }); // this kernel may lack bridge conntrack
  const CHECK = ['nft -j list table inet overlay', 'nft -j list table bridge overlay'];
  const root = typeof process.getuid === 'function' && process.getuid() === 0;

  (root ? it : it.skip)('leaves nft holding what a whole load leaves, knowing it without a read, and falls back to a rewrite after a hand change', async () => {
    const ns = [`nftdelta${process.pid}`, `nftwhole${process.pid}`];
    ns.forEach((n) => execFileSync('ip', ['netns', 'add', n]));
    try {
      const real = new ProcessCommandRunner();
      const calls: string[] = [];
      const inNs = (n: string): CommandRunner => ({
        run: (cmd, args, stdin) => {
          calls.push([cmd, ...args].join(' ') + (stdin === undefined ? '' : `\n${stdin}`));
          return real.run('ip', ['netns', 'exec', n, cmd, ...args], stdin);
        },
      });
      const logger = new RecordingLogger();
      const dp = new LinuxDataplane(inNs(ns[0]), logger);
      const sets = (n: string) => execFileSync('ip', ['netns', 'exec', n, 'nft', 'list', 'table', 'bridge', 'overlay']).toString().replace(/\n\s*(chain|map|set) /g, '\n$1 ').replace(/\s+/g, ' ');
      const steps: [string, string, RegExp][] = [
        ['first', render([policy(0, [ssh]), policy(1, [ssh]), policy(2, [web])], ['10.1.0.1', '10.1.0.9', '10.1.2.0/24', 'fd00::1']), /^table inet overlay$/],
        // A member leaves, one comes (standing alone), a port swaps to a chain already there, a port gains an address.
        ['elements', render([policy(0, [web]), policy(1, [ssh]), policy(2, [web], ['10.0.0.3', '10.0.0.33'])], ['10.1.0.9', '10.1.0.20', '10.1.2.0/24', 'fd00::1', 'fd00::1:0/112']), /^delete element /],
        // A member beside another (nft merges them): that set is rewritten and read back.
        ['merging', render([policy(0, [web]), policy(1, [ssh]), policy(2, [web], ['10.0.0.3', '10.0.0.33'])], ['10.1.0.9', '10.1.0.10', '10.1.0.20', '10.1.2.0/24', 'fd00::1', 'fd00::1:0/112']), /^flush set /],
        // The merged range goes whole, a prefix goes.
        ['merged away', render([policy(0, [ssh]), policy(1, [ssh]), policy(2, [web])], ['10.1.0.20', 'fd00::1']), /^delete element /],
      ];
      for (const [what, text, sent] of steps) {
        calls.length = 0;
        await dp.applyFirewall(ruleset(text));
        expect([what, calls[0].split('\n')[1]]).toEqual([what, expect.stringMatching(sent)]);
        const whole = new LinuxDataplane(inNs(ns[1]), new RecordingLogger());
        execFileSync('ip', ['netns', 'exec', ns[1], 'nft', 'flush', 'ruleset']);
        await whole.applyFirewall(ruleset(text));
        expect([what, sets(ns[0]).replace(/ # handle \d+/g, '')]).toEqual([what, sets(ns[1]).replace(/ # handle \d+/g, '')]);
        calls.length = 0;
        await dp.applyFirewall(ruleset(text)); // the check: one read, no drift
        expect([what, calls]).toEqual([what, CHECK]);
      }
      expect(logger.lines).toEqual([]);

      // By hand: the dispatch of the port the next update removes deleted already, and a MAC no one wants added.
      const nft = (...args: string[]) => execFileSync('ip', ['netns', 'exec', ns[0], 'nft', ...args]);
      nft('delete', 'element', 'bridge', 'overlay', 'eg_ports', `{ "${tapName(ports[2])}" }`);
      nft('add', 'element', 'bridge', 'overlay', 'port_macs', '{ "tapzz" . 02:00:00:00:00:99 }');
      const next = render([policy(0, [web]), policy(1, [ssh])], ['10.1.0.20', 'fd00::1']);
      calls.length = 0;
      await dp.applyFirewall(ruleset(next));
      expect(calls.slice(0, 2).map((c) => c.split('\n').slice(0, 2).join(' '))).toEqual([expect.stringMatching(/^nft -f - delete element /), expect.stringMatching(/^nft -f - flush set /)]);
      expect(logger.lines).toEqual([expect.stringMatching(/^warn firewall element update failed /)]);
      execFileSync('ip', ['netns', 'exec', ns[1], 'nft', 'flush', 'ruleset']);
      await new LinuxDataplane(inNs(ns[1]), new RecordingLogger()).applyFirewall(ruleset(next));
      expect(sets(ns[0]).replace(/ # handle \d+/g, '')).toEqual(sets(ns[1]).replace(/ # handle \d+/g, ''));
      calls.length = 0;
      await dp.applyFirewall(ruleset(next));
      expect(calls).toEqual(CHECK);
    } finally {
      ns.forEach((n) => execFileSync('ip', ['netns', 'del', n]));
    }
  });
});

describe('LinuxDataplane.applyFirewall drift repair', () => {
  const TEXT = 'table bridge overlay\ndelete table bridge overlay\ntable bridge overlay {\n\tset s {\n\t\ttype ipv4_addr\n\t\telements = { 10.0.0.1 }\n\t}\n\n\tchain c {\n\t\tip saddr @s accept\n\t}\n}\n';
  const GROWN = TEXT.replace('{ 10.0.0.1 }', '{ 10.0.0.1, 10.0.0.2 }');
  const ruleHandle = (kernel: FakeKernel): number => kernel.nft.get('bridge overlay')!.chains.get('c')!.rules[0].handle;
  const rulesOfC = (kernel: FakeKernel): string[] | undefined => kernel.nft.get('bridge overlay')?.chains.get('c')?.rules.map((r) => r.text);

  /**
   * A dataplane that loaded TEXT into a fake kernel, its `nft -j` listings printed as nft prints
   * them (`spaced`) or compact; `garble(text)` makes every `nft -j` read answer `text` instead
   * (or what `text` makes of the listing).
   */
  async function loadedDataplane(spaced = false) {
    const kernel = new FakeKernel();
    let garbled: string | ((listing: string) => string) | undefined;
    const runner: CommandRunner = {
      run: async (cmd, args, stdin) => {
        const out = await kernel.run(cmd, args, stdin);
        if (args[0] !== '-j') {
          return out;
        }
        const listing = spaced ? nftSpaced(JSON.parse(out)) : out;
        return typeof garbled === 'function' ? garbled(listing) : (garbled ?? listing);
      },
    };
    const logger = new RecordingLogger();
    const dp = new LinuxDataplane(runner, logger);
    await dp.applyFirewall(ruleset(TEXT));
    expect(kernel.calls).toEqual([`nft -f -\n${TEXT}`, 'nft -j list table bridge overlay']);
    kernel.calls.length = 0;
    return { kernel, dp, logger, garble: (text: string | ((listing: string) => string) = 'not json') => (garbled = text) };
  }

  it('costs one read, not a reload, when the kernel still holds what was loaded', async () => {
    const { kernel, dp, logger } = await loadedDataplane();
    await dp.applyFirewall(ruleset(TEXT));
    await dp.applyFirewall(ruleset(TEXT));
    expect(kernel.calls).toEqual(['nft -j list table bridge overlay', 'nft -j list table bridge overlay']);
    expect(logger.lines).toEqual([]);
  });

  it.each([
    ['a rule inserted by hand', () => 'nft add rule bridge overlay c drop'],
    ['a rule replaced by hand', (k: FakeKernel) => `nft replace rule bridge overlay c handle ${ruleHandle(k)} ip saddr @s drop`],
    ['a rule deleted', (k: FakeKernel) => `nft delete rule bridge overlay c handle ${ruleHandle(k)}`],
    ['an element removed', () => 'nft delete element bridge overlay s { 10.0.0.1 }'],
    ['the table deleted', () => 'nft delete table bridge overlay'],
  ])('reloads the whole text after %s', async (_what, drift: (k: FakeKernel) => string) => {
    const { kernel, dp, logger } = await loadedDataplane();
    kernel.sh(drift(kernel));
    await dp.applyFirewall(ruleset(TEXT));
    expect(kernel.calls).toEqual(['nft -j list table bridge overlay', `nft -f -\n${TEXT}`, 'nft -j list table bridge overlay']);
    expect(logger.lines).toEqual([expect.stringMatching(/^warn firewall drift \(.*\): reloading the whole table$/)]);
    expect(rulesOfC(kernel)).toEqual(['ip saddr @s accept']);
    expect(kernel.nft.get('bridge overlay')?.sets.get('s')?.elements).toEqual(['10.0.0.1']);
  });

  it('counts its loads, whole and of sets, and the reloads drift forced', async () => {
    const { kernel, dp } = await loadedDataplane();
    await dp.applyFirewall(ruleset(GROWN));
    kernel.sh('nft delete table bridge overlay');
    await dp.applyFirewall(ruleset(GROWN));
    const [loads, drift] = await Promise.all(dp.metrics().map((m) => m.get()));
    const counts = loads.values.filter((v) => (v as { metricName?: string }).metricName === 'overlay_agent_nft_load_seconds_count').map((v) => [v.labels.load, v.labels.result, v.value]);
    expect(counts).toEqual([
      ['whole', 'ok', 2],
      ['elements', 'ok', 1],
    ]);
    expect(drift.values.map((v) => v.value)).toEqual([1]);
  });

  it('loads a change of elements as its elements, read back by no one, and the next check finds nothing to repair', async () => {
    const { kernel, dp, logger } = await loadedDataplane();
    const handle = ruleHandle(kernel);
    await dp.applyFirewall(ruleset(GROWN));
    expect(kernel.calls).toEqual(['nft -f -\nadd element bridge overlay s { 10.0.0.2 }\n']);
    expect(kernel.nft.get('bridge overlay')?.sets.get('s')?.elements).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(ruleHandle(kernel)).toBe(handle); // chains and rules untouched
    kernel.calls.length = 0;
    await dp.applyFirewall(ruleset(GROWN));
    await dp.applyFirewall(ruleset(TEXT));
    expect(kernel.calls).toEqual(['nft -j list table bridge overlay', 'nft -f -\ndelete element bridge overlay s { 10.0.0.2 }\n']);
    kernel.calls.length = 0;
    await dp.applyFirewall(ruleset(TEXT));
    expect(kernel.calls).toEqual(['nft -j list table bridge overlay']);
    expect(kernel.nft.get('bridge overlay')?.sets.get('s')?.elements).toEqual(['10.0.0.1']);
    expect(logger.lines).toEqual([]);
  });

  it('flushes and refills the set, and reads it back, when its elements cannot go and come one by one', async () => {
    const { kernel, dp, logger } = await loadedDataplane();
    const interval = (elements: string) => TEXT.replace('\t\ttype ipv4_addr\n', '\t\ttype ipv4_addr\n\t\tflags interval\n\t\tauto-merge\n').replace('{ 10.0.0.1 }', `{ ${elements} }`);
    await dp.applyFirewall(ruleset(interval('10.0.0.1')));
    kernel.calls.length = 0;
    await dp.applyFirewall(ruleset(interval('10.0.0.1, 10.0.0.2'))); // nft merges 10.0.0.1 and 10.0.0.2
    expect(kernel.calls).toEqual(['nft -f -\nflush set bridge overlay s\nadd element bridge overlay s { 10.0.0.1, 10.0.0.2 }\n', 'nft -j list set bridge overlay s']);
    kernel.calls.length = 0;
    await dp.applyFirewall(ruleset(interval('10.0.0.1, 10.0.0.2, 10.0.9.0/24'))); // stands alone
    expect(kernel.calls).toEqual(['nft -f -\nadd element bridge overlay s { 10.0.9.0/24 }\n']);
    kernel.calls.length = 0;
    await dp.applyFirewall(ruleset(interval('10.0.0.1, 10.0.0.2, 10.0.9.0/24')));
    expect(kernel.calls).toEqual(['nft -j list table bridge overlay']);
    expect(logger.lines).toEqual([]);
  });

  it('flushes and refills the set when an element to delete is no longer there, leaving nothing more open than wanted', async () => {
    const { kernel, dp, logger } = await loadedDataplane();
    kernel.sh('nft delete element bridge overlay s { 10.0.0.1 }');
    kernel.sh('nft add element bridge overlay s { 10.9.9.9 }'); // and one nobody wants
    const SHRUNK = TEXT.replace('{ 10.0.0.1 }', '{ 10.0.0.3 }');
    await dp.applyFirewall(ruleset(SHRUNK));
    expect(kernel.calls).toEqual([
      'nft -f -\ndelete element bridge overlay s { 10.0.0.1 }\nadd element bridge overlay s { 10.0.0.3 }\n',
      'nft -f -\nflush set bridge overlay s\nadd element bridge overlay s { 10.0.0.3 }\n',
      'nft -j list set bridge overlay s',
    ]);
    expect(logger.lines).toEqual([expect.stringMatching(/^warn firewall element update failed \(.*No such file or directory\): rewriting the sets whole$/)]);
    expect(kernel.nft.get('bridge overlay')?.sets.get('s')?.elements).toEqual(['10.0.0.3']);
    kernel.calls.length = 0;
    await dp.applyFirewall(ruleset(SHRUNK));
    expect(kernel.calls).toEqual(['nft -j list table bridge overlay']);
  });

  it('finds an element added by hand beside an element update at the next check, and removes it', async () => {
    const { kernel, dp, logger } = await loadedDataplane();
    kernel.sh('nft add element bridge overlay s { 10.9.9.9 }');
    await dp.applyFirewall(ruleset(GROWN));
    expect(kernel.calls).toEqual(['nft -f -\nadd element bridge overlay s { 10.0.0.2 }\n']);
    kernel.calls.length = 0;
    await dp.applyFirewall(ruleset(GROWN));
    expect(kernel.calls).toEqual(['nft -j list table bridge overlay', `nft -f -\n${GROWN}`, 'nft -j list table bridge overlay']);
    expect(logger.lines).toEqual(['warn firewall drift (elements bridge s changed): reloading the whole table']);
    expect(kernel.nft.get('bridge overlay')?.sets.get('s')?.elements).toEqual(['10.0.0.1', '10.0.0.2']);
  });

  it('fails as a whole load fails when the rewrite after a failed element update fails too, still knowing what is in force', async () => {
    const { kernel, dp } = await loadedDataplane();
    const before = dp.firewallInForce();
    kernel.failWhen('nft -f -', 'Error: Could not process rule: Cannot allocate memory');
    await expect(dp.applyFirewall(ruleset(GROWN))).rejects.toThrow(/Cannot allocate memory/);
    expect(kernel.calls).toEqual(['nft -f -\nadd element bridge overlay s { 10.0.0.2 }\n', 'nft -f -\nflush set bridge overlay s\nadd element bridge overlay s { 10.0.0.1, 10.0.0.2 }\n']);
    expect(dp.firewallInForce()).toBe(before);
    expect(kernel.nft.get('bridge overlay')?.sets.get('s')?.elements).toEqual(['10.0.0.1']);
    kernel.healed();
    kernel.calls.length = 0;
    await dp.applyFirewall(ruleset(GROWN));
    expect(kernel.calls).toEqual(['nft -f -\nadd element bridge overlay s { 10.0.0.2 }\n']);
  });

  it('finds drift that happened before a set update at the next check', async () => {
    const { kernel, dp, logger } = await loadedDataplane();
    kernel.sh('nft add rule bridge overlay c drop');
    await dp.applyFirewall(ruleset(GROWN));
    kernel.calls.length = 0;
    await dp.applyFirewall(ruleset(GROWN));
    expect(kernel.calls).toEqual(['nft -j list table bridge overlay', `nft -f -\n${GROWN}`, 'nft -j list table bridge overlay']);
    expect(logger.lines).toEqual(['warn firewall drift (rules bridge c changed): reloading the whole table']);
    expect(rulesOfC(kernel)).toEqual(['ip saddr @s accept']);
  });

  it('reads a listing as nft prints it one object at a time, and finds drift in it', async () => {
    const { kernel, dp, logger } = await loadedDataplane(true);
    const parse = jest.spyOn(JSON, 'parse');
    try {
      await dp.applyFirewall(ruleset(TEXT));
      // Its metainfo, the table, its set, its chain and its rule: one parse each (the runner above reads the compact listing whole).
      const objects = parse.mock.calls.map(([text]) => String(text)).filter((text) => !text.startsWith('{"nftables"'));
      expect(objects.map((text) => /^\{"(\w+)": /.exec(text)?.[1])).toEqual(['metainfo', 'table', 'set', 'chain', 'rule']);
    } finally {
      parse.mockRestore();
    }
    expect(kernel.calls).toEqual(['nft -j list table bridge overlay']);
    kernel.sh('nft add rule bridge overlay c drop');
    kernel.calls.length = 0;
    await dp.applyFirewall(ruleset(TEXT));
    expect(kernel.calls).toEqual(['nft -j list table bridge overlay', `nft -f -\n${TEXT}`, 'nft -j list table bridge overlay']);
    expect(logger.lines).toEqual(['warn firewall drift (rules bridge c changed): reloading the whole table']);
  });

  it('finds no drift in a listing that does not cut cleanly (parsed whole after its objects were given once): the same objects, the same fingerprint', async () => {
    const { kernel, dp, logger, garble } = await loadedDataplane(true);
    // After the rule, an object whose nested array holds a cut: the pieces up to it were reduced before the cut failed.
    garble((listing) => listing.replace(/\]\}$/, ', {"metainfo": {"x": [{"a": 1}, {"rule": 2}]}}]}'));
    await dp.applyFirewall(ruleset(TEXT));
    expect(kernel.calls).toEqual(['nft -j list table bridge overlay']);
    expect(logger.lines).toEqual([]);
    kernel.sh('nft add rule bridge overlay c drop');
    kernel.calls.length = 0;
    await dp.applyFirewall(ruleset(TEXT));
    expect(kernel.calls).toEqual(['nft -j list table bridge overlay', `nft -f -\n${TEXT}`, 'nft -j list table bridge overlay']);
  });

  it.each([
    ['is cut short', '{"nftables": [{"table": {"family": "bridge", "name": "overlay", "handle": 1}}'],
    ['is not an array', '{"nftables": {"table": {"family": "bridge", "name": "overlay"}}}'],
    ['holds an element that is not an object', '{"nftables": [{"table": {"family": "bridge", "name": "overlay", "handle": 1}}, 7]}'],
    ['holds a rule that is null', '{"nftables": [{"table": {"family": "bridge", "name": "overlay", "handle": 1}}, {"rule": null}]}'],
    ['has text after it', '{"nftables": [{"table": {"family": "bridge", "name": "overlay", "handle": 1}}]}x'],
    ['has another key', '{"tables": []}'],
    ['runs two elements together', '{"nftables": [{"table": {"family": "bridge", "name": "overlay", "handle": 1}}}, {"rule": {}}]}'],
  ])('loads the whole text again when a listing %s', async (_what, listing) => {
    const { kernel, dp, garble } = await loadedDataplane(true);
    garble(listing);
    await dp.applyFirewall(ruleset(TEXT));
    expect(kernel.calls).toEqual(['nft -j list table bridge overlay', `nft -f -\n${TEXT}`, 'nft -j list table bridge overlay']);
  });

  it('loads the whole text again when the tables cannot be read back', async () => {
    const { kernel, dp, garble } = await loadedDataplane();
    garble();
    await dp.applyFirewall(ruleset(TEXT));
    await dp.applyFirewall(ruleset(TEXT));
    expect(kernel.calls).toEqual(['nft -j list table bridge overlay', `nft -f -\n${TEXT}`, 'nft -j list table bridge overlay', `nft -f -\n${TEXT}`, 'nft -j list table bridge overlay']);
  });
});

describe('LinuxDataplane firewall conntrack', () => {
  const ON = '/proc/sys/net/bridge/bridge-nf-call-iptables';
  const ON6 = '/proc/sys/net/bridge/bridge-nf-call-ip6tables';

  /** A fake kernel with bridge conntrack or without it (then `nft -c` refuses `ct` in a bridge table). */
  function kernel(bridgeConntrack: boolean): FakeKernel {
    const k = new FakeKernel();
    k.bridgeConntrack = bridgeConntrack;
    return k;
  }

  function sysctls(initial: Record<string, string>) {
    const values = new Map(Object.entries(initial));
    return { values, read: (p: string) => values.get(p), write: (p: string, v: string) => void values.set(p, v) };
  }

  it('probes bridge conntrack with nft -c and uses it when the kernel has it, touching no sysctl', async () => {
    const k = kernel(true);
    const fs = sysctls({ [ON]: '0', [ON6]: '0' });
    const dp = new LinuxDataplane(k, new RecordingLogger(), fs);
    expect(await dp.prepareFirewall('auto')).toBe('bridge');
    expect(k.calls).toHaveLength(3);
    expect(k.calls[0]).toBe('nft --version');
    expect(k.calls[1]).toMatch(/^nft -c -f -\ntable bridge overlay_probe \{[\s\S]*ct state established accept/);
    expect(k.calls[2]).toBe('tc -V'); // the gate needs tc
    expect(k.nft.size).toBe(0); // the probe is only checked, never loaded
    await dp.applyFirewall(ruleset('table bridge overlay\n'));
    expect(fs.values.get(ON)).toBe('0');
  });

  it('falls back to br_netfilter, switching on its sysctls at start and again before every load', async () => {
    const k = kernel(false);
    const fs = sysctls({ [ON]: '0', [ON6]: '1' });
    const logger = new RecordingLogger();
    const dp = new LinuxDataplane(k, logger, fs);
    expect(await dp.prepareFirewall('auto')).toBe('br_netfilter');
    expect([fs.values.get(ON), fs.values.get(ON6)]).toEqual(['1', '1']);
    fs.values.set(ON6, '0'); // someone turned it off
    await dp.applyFirewall(ruleset('table inet overlay\n'));
    expect(fs.values.get(ON6)).toBe('1');
    expect(k.calls.at(-1)).toBe('nft -f -\ntable inet overlay\n');
    expect(logger.lines.filter((l) => l.startsWith('warn'))).toHaveLength(2);
  });

  it('refuses to start the firewall without bridge conntrack nor br_netfilter', async () => {
    const dp = new LinuxDataplane(kernel(false), new RecordingLogger(), sysctls({}));
    await expect(dp.prepareFirewall('auto')).rejects.toThrow(/br_netfilter is not loaded/);
    await expect(dp.prepareFirewall('br_netfilter')).rejects.toThrow(/br_netfilter is not loaded/);
  });

  it('uses the mode given without probing', async () => {
    const k = kernel(false);
    const dp = new LinuxDataplane(k, new RecordingLogger(), sysctls({}));
    expect(await dp.prepareFirewall('bridge')).toBe('bridge');
    expect(k.calls).toEqual(['nft --version', 'tc -V']);
  });

  it('refuses to start the firewall when nft does not run', async () => {
    const runner: CommandRunner = {
      run: async () => {
        throw new Error('nft: spawn nft ENOENT');
      },
    };
    await expect(new LinuxDataplane(runner, new RecordingLogger(), { read: () => '1', write: () => undefined }).prepareFirewall('auto')).rejects.toThrow(/nft \(nftables\) does not run: nft: spawn nft ENOENT/);
  });
});

describe('LinuxDataplane tc gate (firewall on)', () => {
  // The gate's program, byte for byte: `ld mark; jset <bit>; ret OK; ret SHOT`.
  const TAP_FILTER = `filter replace block ${TAP_GATE_BLOCK} egress pref 1 handle 1 bpf da bytecode "4,32 0 0 4294963220,69 0 1 134217728,6 0 0 4294967295,6 0 0 2"`;
  const VXLAN_FILTER = `filter replace block ${VXLAN_GATE_BLOCK} egress pref 1 handle 1 bpf da bytecode "4,32 0 0 4294963220,69 0 1 67108864,6 0 0 4294967295,6 0 0 2"`;
  const gate = (dev: string, block: number) => `tc qdisc add dev ${dev} egress_block ${block} clsact`;

  async function gated(kernel: FakeKernel): Promise<LinuxDataplane> {
    const dataplane = new LinuxDataplane(kernel, new RecordingLogger(), { read: () => '1', write: () => undefined });
    await dataplane.prepareFirewall('bridge');
    return dataplane;
  }

  it('binds a new VXLAN device and a tap to their gates, with the gate filters, before the tap is attached', async () => {
    const kernel = kernelWith().addVeth('tap0123456789a');
    const dataplane = await gated(kernel);
    await dataplane.apply([
      { op: 'put-segment', segment: { vni: 1000, localVtep: '192.0.2.1', floodVteps: [] } },
      { op: 'put-port', port: { tap: 'tap0123456789a', vni: 1000 } },
    ]);
    const batches = kernel.batches();
    expect(batches.map((b) => b.split('\n')[0])).toEqual(['ip', 'tc -force', 'ip -force']);
    expect(batches[1]).toBe(['tc -force', `qdisc add dev vx1000 egress_block ${VXLAN_GATE_BLOCK} clsact`, `qdisc add dev tap0123456789a egress_block ${TAP_GATE_BLOCK} clsact`, TAP_FILTER, VXLAN_FILTER, ''].join('\n'));
    expect(batches[2]).toBe('ip -force\nlink set dev tap0123456789a master br1000\nlink set dev tap0123456789a up\n');
    const state = await dataplane.observe();
    expect(state.segments.get(1000)?.localVtep).toBe('192.0.2.1');
    expect(state.ports.get('tap0123456789a')?.vni).toBe(1000);
  });

  it('never attaches a tap whose gate the kernel refuses: reports it, takes it out of its bridge if it was in, and attaches the others', async () => {
    const kernel = kernelWith(ownSegment(1000, '192.0.2.1'));
    // aaa1 is attached but lost its gate (someone deleted its clsact); bbb2 is new.
    kernel.addVeth('tap0000000aaa1', { up: true, master: 'br1000' }).addVeth('tap0000000bbb2');
    [gate('vx1000', VXLAN_GATE_BLOCK), `tc ${VXLAN_FILTER}`].forEach((c) => kernel.sh(c));
    kernel.failLine(`tc qdisc add dev tap0000000aaa1 egress_block ${TAP_GATE_BLOCK} clsact`, 'Error: Exclusivity flag on, cannot modify.');
    const dataplane = await gated(kernel);
    const observedBefore = await dataplane.observe();
    expect(observedBefore.ports.get('tap0000000aaa1')?.vni).toBe(-1);
    await dataplane.apply([
      { op: 'put-port', port: { tap: 'tap0000000aaa1', vni: 1000 } },
      { op: 'put-port', port: { tap: 'tap0000000bbb2', vni: 1000 } },
    ]);
    expect(Object.fromEntries(dataplane.portFailures())).toEqual({ tap0000000aaa1: `tc refused "qdisc add dev tap0000000aaa1 egress_block ${TAP_GATE_BLOCK} clsact": Error: Exclusivity flag on, cannot modify.` });
    expect(kernel.batches()[1]).toBe('ip -force\nlink set dev tap0000000aaa1 nomaster\nlink set dev tap0000000bbb2 master br1000\nlink set dev tap0000000bbb2 up\n');
    expect(Object.fromEntries((await dataplane.observe()).ports)).toEqual({ tap0000000bbb2: { tap: 'tap0000000bbb2', vni: 1000 } });
  });

  it('reports a tap or VXLAN device without its gate, or a gate without its filter, as needing repair, and repairs only that', async () => {
    // tap bbb has someone else's clsact; the VXLAN block lost its filter.
    const kernel = kernelWith(ownSegment(1000, '192.0.2.1'));
    kernel.addVeth('tap0123456789a', { up: true, master: 'br1000' }).addVeth('tap00000000bbb', { up: true, master: 'br1000' });
    [gate('vx1000', VXLAN_GATE_BLOCK), gate('tap0123456789a', TAP_GATE_BLOCK), 'tc qdisc add dev tap00000000bbb clsact', `tc ${TAP_FILTER}`].forEach((c) => kernel.sh(c));
    const dataplane = await gated(kernel);
    const state = await dataplane.observe();
    expect(state.segments.get(1000)?.localVtep).toBe('');
    expect(Object.fromEntries(state.ports)).toEqual({ tap0123456789a: { tap: 'tap0123456789a', vni: 1000 }, tap00000000bbb: { tap: 'tap00000000bbb', vni: -1 } });
    const repair: DataplanePlan = [
      { op: 'put-segment', segment: { vni: 1000, localVtep: '192.0.2.1', floodVteps: [] } },
      { op: 'put-port', port: { tap: 'tap00000000bbb', vni: 1000 } },
    ];
    await dataplane.apply(repair);
    expect(kernel.batches()).toEqual([['tc -force', 'qdisc del dev tap00000000bbb clsact', `qdisc add dev tap00000000bbb egress_block ${TAP_GATE_BLOCK} clsact`, TAP_FILTER, VXLAN_FILTER, ''].join('\n')]);
    const repaired = await dataplane.observe();
    expect(repaired.segments.get(1000)?.localVtep).toBe('192.0.2.1');
    expect(repaired.ports.get('tap00000000bbb')?.vni).toBe(1000);
    kernel.calls.length = 0;
    await dataplane.apply(repair);
    expect(kernel.mutations()).toEqual([]);
  });

  it('reads a fully gated kernel as healthy and runs nothing', async () => {
    const kernel = kernelWith(ownSegment(1000, '192.0.2.1'));
    kernel.addVeth('tap0123456789a', { up: true, master: 'br1000' });
    [gate('vx1000', VXLAN_GATE_BLOCK), gate('tap0123456789a', TAP_GATE_BLOCK), `tc ${TAP_FILTER}`, `tc ${VXLAN_FILTER}`].forEach((c) => kernel.sh(c));
    const dataplane = await gated(kernel);
    const state = await dataplane.observe();
    expect(state.segments.get(1000)?.localVtep).toBe('192.0.2.1');
    expect(state.ports.get('tap0123456789a')?.vni).toBe(1000);
    await dataplane.apply([
      { op: 'put-segment', segment: { vni: 1000, localVtep: '192.0.2.1', floodVteps: [] } },
      { op: 'put-port', port: { tap: 'tap0123456789a', vni: 1000 } },
    ]);
    expect(kernel.batches()).toEqual([]);
  });

  it('treats a gate filter with other bytecode as missing', async () => {
    const kernel = kernelWith(ownSegment(1000, '192.0.2.1'), [gate('vx1000', VXLAN_GATE_BLOCK), `tc ${TAP_FILTER.replace(`block ${TAP_GATE_BLOCK}`, `block ${VXLAN_GATE_BLOCK}`)}`]); // the taps' bit: passes the wrong frames
    expect((await (await gated(kernel)).observe()).segments.get(1000)?.localVtep).toBe('');
  });

  it('keeps what was in force when a load fails, and forgets it when the tables had drifted', async () => {
    const kernel = new FakeKernel();
    const dataplane = new LinuxDataplane(kernel, new RecordingLogger());
    const A = 'table bridge overlay {\n}\n';
    const B = 'table bridge overlay {\n\tchain x {\n\t}\n}\n';
    expect(dataplane.firewallInForce()).toBeUndefined();
    await dataplane.applyFirewall(ruleset(A));
    expect(dataplane.firewallInForce()?.text).toBe(A);
    kernel.failWhen('nft -f -', 'injected');
    await expect(dataplane.applyFirewall(ruleset(B))).rejects.toThrow(/injected/);
    expect(dataplane.firewallInForce()?.text).toBe(A); // one transaction: the kernel still holds A
    kernel.sh('nft flush ruleset'); // the tables were flushed by hand
    await expect(dataplane.applyFirewall(ruleset(A))).rejects.toThrow(/injected/);
    expect(dataplane.firewallInForce()).toBeUndefined();
    kernel.healed();
    await dataplane.applyFirewall(ruleset(A));
    expect(dataplane.firewallInForce()?.text).toBe(A);
  });
});

describe('LinuxDataplane.watchArrivals', () => {
  const tap = 'tap0123456789a';
  const mac = 'fa:16:3e:aa:00:01';

  it('reports a watched tap once, when the bridge learns its MAC on it', async () => {
    const kernel = kernelWith(ownSegment(1000, '192.0.2.1')).addVeth(tap, { up: true, master: 'br1000' });
    const dataplane = new LinuxDataplane(kernel, new RecordingLogger());
    const arrived: string[] = [];
    dataplane.watchArrivals(new Map([[tap, mac.toUpperCase()]]), (t) => arrived.push(t));
    kernel.learn(tap, 'fa:16:3e:aa:00:02'); // another MAC: not the VM
    expect(arrived).toEqual([]);
    kernel.learn(tap, mac);
    kernel.learn(tap, mac);
    expect(arrived).toEqual([tap]);
    await dataplane.close();
  });

  it('reports a tap the hypervisor named, in capitals, by its name as the monitor prints it', async () => {
    const named = 'VNet-A.0';
    const kernel = kernelWith(ownSegment(1000, '192.0.2.1')).addVeth(named, { up: true, master: 'br1000' });
    const dataplane = new LinuxDataplane(kernel, new RecordingLogger());
    const arrived: string[] = [];
    dataplane.watchArrivals(new Map([[named, mac]]), (t) => arrived.push(t));
    kernel.learn(named, mac.toUpperCase());
    expect(arrived).toEqual([named]);
    await dataplane.close();
  });

  it('sees an arrival the monitor missed in the learned entries', async () => {
    const kernel = kernelWith(ownSegment(1000, '192.0.2.1')).addVeth(tap, { up: true, master: 'br1000' });
    kernel.learn(tap, mac);
    const dataplane = new LinuxDataplane(kernel, new RecordingLogger());
    const arrived = new Promise<string>((resolve) => dataplane.watchArrivals(new Map([[tap, mac]]), resolve));
    expect(await arrived).toBe(tap);
    await dataplane.close();
  });
});

describe('LinuxDataplane.watchTaps', () => {
  it('says when an awaited tap is created, by its name or its MAC, and not another link', async () => {
    const kernel = kernelWith(ownSegment(1000, '192.0.2.1'));
    const dataplane = new LinuxDataplane(kernel, new RecordingLogger());
    let appeared = 0;
    dataplane.watchTaps({ names: new Set(['tap0123456789a']), macs: new Set(['fe:16:3e:aa:00:01']) }, Date.now(), () => appeared++);
    kernel.addVeth('vnet7', { mac: 'fe:16:3e:aa:00:02' });
    expect(appeared).toBe(0);
    kernel.addVeth('tap0123456789a');
    kernel.addVeth('vnet8', { mac: 'fe:16:3e:aa:00:01' });
    expect(appeared).toBe(2);
    await dataplane.close();
  });
});

describe('LinuxDataplane tracked connections', () => {
  const vm = '10.0.0.5';
  const conn = (c: Partial<TrackedConnection>): TrackedConnection => ({ protocol: 6, src: vm, dst: '10.0.0.9', srcPort: 40000, dstPort: 80, tcpState: 'ESTABLISHED', timeoutSeconds: 99, seenReply: true, assured: true, ...c });

  it('inserts connections into a zone, lists them, counts those already there as installed, and forgets them', async () => {
    const kernel = new FakeKernel();
    const dataplane = new LinuxDataplane(kernel, new RecordingLogger());
    const connections = [conn({}), conn({ protocol: 17, tcpState: '', srcPort: 5353, dstPort: 53, seenReply: false, assured: false }), conn({ src: '10.0.0.9', dst: vm, srcPort: 22, dstPort: 50000 })];
    expect(await dataplane.insertConnections(7, [vm], connections)).toEqual({ installed: 3, failed: 0, error: '' });
    expect(await dataplane.listConnections(7, [vm], 100)).toEqual(expect.arrayContaining(connections));
    expect(await dataplane.listConnections(7, [vm], 2)).toHaveLength(2);
    expect(await dataplane.listConnections(8, [vm], 100)).toEqual([]);
    expect(await dataplane.insertConnections(7, [vm], connections)).toEqual({ installed: 3, failed: 0, error: '' });
    expect(kernel.calls.filter((c) => c.startsWith('conntrack -R'))).toHaveLength(1);
    await dataplane.forgetConnections(7, [vm]);
    expect(await dataplane.listConnections(7, [vm], 100)).toEqual([]);
  });

  it('counts a connection the kernel refuses, or one not valid, as failed, and inserts the rest', async () => {
    const kernel = new FakeKernel();
    kernel.refuseConnection = (c) => c.srcPort === 40001;
    const dataplane = new LinuxDataplane(kernel, new RecordingLogger());
    const result = await dataplane.insertConnections(7, [vm], [conn({ srcPort: 40001 }), conn({ srcPort: 40002 }), conn({ tcpState: 'TIME_WAIT', srcPort: 40003 })]);
    expect(result).toEqual({ installed: 1, failed: 2, error: expect.stringMatching(/Operation failed/) });
    expect((await dataplane.listConnections(7, [vm], 100)).map((c) => c.srcPort)).toEqual([40002]);
  });
});

describe('LinuxDataplane mirrors', () => {
  const SRC = 'tap0000000aaa1';
  const SRC2 = 'tap0000000bbb2';
  const ANALYZER = 'tap0000000ccc3';
  const match = { ethertype: 'IPv4' as const, protocol: 1, remoteCidr: '10.0.0.0/24' };
  const any = { ethertype: '' as const, protocol: 0, remoteCidr: '' };
  const filter = (tapId: string, direction: 'ingress' | 'egress', dev: string, target: string, m: MirrorMatch = any): MirrorFilterState => {
    const f = { tapId, direction, dev, target, match: m };
    return { cookie: mirrorCookie(f), ...f };
  };
  /** Sources: SRC both ways to a remote sink over mx7001 (filtered), SRC2 what it sends to the local analyzer; the sink side of session 7002 redirects to the analyzer. */
  const filters = [filter('s1/p1', 'ingress', SRC, 'mx7001', match), filter('s1/p1', 'egress', SRC, 'mx7001', match), filter('s2/p2', 'egress', SRC2, ANALYZER)];
  const plan: DataplanePlan = [
    { op: 'put-segment', segment: { vni: 1000, localVtep: '192.0.2.1', floodVteps: [] } },
    { op: 'put-port', port: { tap: SRC, vni: 1000 } },
    { op: 'put-port', port: { tap: SRC2, vni: 1000 } },
    { op: 'put-analyzer', analyzer: { tap: ANALYZER } },
    { op: 'put-mirror-device', device: { vni: 7001, localVtep: '192.0.2.1', remote: '192.0.2.9', dstport: 4789, redirect: '' } },
    { op: 'put-mirror-device', device: { vni: 7002, localVtep: '192.0.2.1', remote: '', dstport: 4789, redirect: ANALYZER } },
    ...filters.map((f) => ({ op: 'put-mirror-filter' as const, filter: f })),
  ];

  async function gatedKernel(): Promise<{ kernel: FakeKernel; dataplane: LinuxDataplane }> {
    const kernel = kernelWith().addVeth(SRC).addVeth(SRC2).addVeth(ANALYZER);
    const dataplane = new LinuxDataplane(kernel, new RecordingLogger(), { read: () => '1', write: () => undefined });
    await dataplane.prepareFirewall('bridge');
    kernel.calls.length = 0;
    return { kernel, dataplane };
  }

  it('programs mirror devices, an analyzer tap and mirror filters with these commands (golden), after the links', async () => {
    const { kernel, dataplane } = await gatedKernel();
    await dataplane.apply(plan);
    const text = kernel.batches().join('\n');
    // Cookies are digests: named, so the golden file reads (and stays valid when only they change).
    const named = filters.reduce((t, f, i) => t.split(f.cookie).join(`<cookie ${i + 1}>`), text).replace(new RegExp(sinkCookie(7002, ANALYZER), 'g'), '<sink cookie>');
    expectGoldenFile(join(__dirname, '__golden__', 'mirror-commands.txt'), named);
    expect(dataplane.mirrorFailures().size).toBe(0);
    const state = await dataplane.observe();
    expect(Object.fromEntries(state.mirrorDevices)).toEqual({
      7001: { vni: 7001, localVtep: '192.0.2.1', remote: '192.0.2.9', dstport: 4789, redirect: '' },
      7002: { vni: 7002, localVtep: '192.0.2.1', remote: '', dstport: 4789, redirect: ANALYZER },
    });
    expect([...state.mirrorFilters.values()].map((f) => [f.cookie, f.direction, f.dev, f.target, f.packets]).sort()).toEqual(filters.map((f) => [f.cookie, f.direction, f.dev, f.target, 0]).sort());
    expect([...state.analyzers.keys()]).toEqual([ANALYZER]);
    // Ports stay healthy: the gate still holds with mirror filters beside it in the taps' block.
    expect(state.ports.get(SRC)?.vni).toBe(1000);
    expect(state.segments.get(1000)?.localVtep).toBe('192.0.2.1');
    expect(kernel.links.get(ANALYZER)?.master).toBeUndefined();
  });

  it('runs no mutation when applied again, and reads the counters by cookie', async () => {
    const { kernel, dataplane } = await gatedKernel();
    await dataplane.apply(plan);
    kernel.calls.length = 0;
    await dataplane.apply(plan);
    expect(kernel.mutations()).toEqual([]);
    kernel.count(filters[0].cookie, 3, 300);
    kernel.count(filters[1].cookie, 2, 250);
    const state = await dataplane.observe();
    expect(state.mirrorFilters.get(filters[0].cookie)).toMatchObject({ packets: 3, bytes: 300 });
    expect(state.mirrorFilters.get(filters[1].cookie)).toMatchObject({ packets: 2, bytes: 250 });
  });

  it('puts back a mirror filter deleted by hand, and one whose tap was created anew, and nothing else', async () => {
    const { kernel, dataplane } = await gatedKernel();
    await dataplane.apply(plan);
    const egressPref = kernel.filtersAt(`dev ${SRC} ingress`)[0].pref;
    kernel.sh(`tc filter del dev ${SRC} ingress pref ${egressPref}`);
    const desired = emptyDataplaneState();
    plan.forEach((s) => {
      if (s.op === 'put-mirror-filter') {desired.mirrorFilters.set(s.filter.cookie, s.filter);}
      if (s.op === 'put-mirror-device') {desired.mirrorDevices.set(s.device.vni, s.device);}
      if (s.op === 'put-analyzer') {desired.analyzers.set(s.analyzer.tap, s.analyzer);}
      if (s.op === 'put-port') {desired.ports.set(s.port.tap, s.port);}
      if (s.op === 'put-segment') {desired.segments.set(s.segment.vni, s.segment);}
    });
    const repair = planChanges(desired, await dataplane.observe(), true);
    expect(repair).toEqual([{ op: 'put-mirror-filter', filter: filters[1] }]);
    kernel.calls.length = 0;
    await dataplane.apply(repair);
    expect(kernel.batches()).toEqual([`tc -force\nfilter add dev ${SRC} ingress pref 49152 handle 1 bpf bytecode "${mirrorProgram(match, 'egress')}" action mirred egress mirror dev mx7001 continue cookie ${filters[1].cookie}\n`]);
    expect(planChanges(desired, await dataplane.observe(), true)).toEqual([]);
    // The tap created anew (another ifindex): the filter of what its VM receives points at nothing, and is replaced.
    const link = kernel.links.get(SRC)!;
    kernel.sh(`ip link del dev ${SRC}`);
    kernel.addVeth(SRC);
    expect(kernel.links.get(SRC)!.ifindex).not.toBe(link.ifindex);
    const again = planChanges(desired, await dataplane.observe(), true);
    expect(again.filter((s) => s.op === 'put-mirror-filter')).toEqual([
      { op: 'put-mirror-filter', filter: filters[0] },
      { op: 'put-mirror-filter', filter: filters[1] },
    ]);
    await dataplane.apply(again);
    expect(kernel.filtersAt(`block ${TAP_GATE_BLOCK} egress`).map((f) => f.pref)).toEqual([1, 49152]); // replaced in place
    expect(planChanges(desired, await dataplane.observe(), true)).toEqual([]);
  });

  it('removes a mirror filter, device and analyzer no longer desired, filters first', async () => {
    const { kernel, dataplane } = await gatedKernel();
    await dataplane.apply(plan);
    kernel.calls.length = 0;
    const observed = await dataplane.observe();
    const desired = emptyDataplaneState();
    desired.segments.set(1000, { vni: 1000, localVtep: '192.0.2.1', floodVteps: [] });
    desired.ports.set(SRC, { tap: SRC, vni: 1000 }).set(SRC2, { tap: SRC2, vni: 1000 });
    await dataplane.apply(planChanges(desired, observed, true));
    expect(kernel.batches()).toEqual([
      ['tc -force', `filter del dev ${SRC} ingress pref 49152`, `filter del dev ${SRC2} ingress pref 49152`, `filter del block ${TAP_GATE_BLOCK} egress pref 49152`, `qdisc del dev ${ANALYZER} clsact`, ''].join('\n'),
      ['ip -force', 'link del dev mx7001', 'link del dev mx7002', ''].join('\n'),
    ]);
    const after = await dataplane.observe();
    expect(after.mirrorFilters.size + after.mirrorDevices.size + after.analyzers.size).toBe(0);
    expect(kernel.filtersAt(`block ${TAP_GATE_BLOCK} egress`).map((f) => f.pref)).toEqual([1]);
  });

  it('skips a mirror filter whose tap or sink is missing, says why, and programs the rest', async () => {
    const { kernel, dataplane } = await gatedKernel();
    kernel.links.delete(ANALYZER);
    await dataplane.apply(plan.filter((s) => s.op !== 'put-analyzer'));
    expect(dataplane.mirrorFailures().get(filters[2].cookie)).toBe(`sink ${ANALYZER} does not exist`);
    const state = await dataplane.observe();
    expect(state.mirrorFilters.has(filters[0].cookie) && state.mirrorFilters.has(filters[1].cookie)).toBe(true);
    expect(state.ports.get(SRC2)?.vni).toBe(1000);
  });
});

describe('LinuxDataplane ERSPAN mirrors', () => {
  const SRC = 'tap0000000aaa1';
  const SRC2 = 'tap0000000bbb2';
  const any = { ethertype: '' as const, protocol: 0, remoteCidr: '' };
  const filter = (tapId: string, direction: 'ingress' | 'egress', dev: string, target: string): MirrorFilterState => {
    const f = { tapId, direction, dev, target, match: any };
    return { cookie: mirrorCookie(f), ...f };
  };
  /** SRC both ways to an ERSPAN v2 collector (ms5), SRC2 what it receives to a v1 one (ms900); SRC2 what it sends over VXLAN (mx7001). */
  const erspanFilters = [filter('s1/p1', 'ingress', SRC, 'ms5'), filter('s1/p1', 'egress', SRC, 'ms5'), filter('s2/p2', 'ingress', SRC2, 'ms900')];
  const vxlanFilter = filter('s3/p2', 'egress', SRC2, 'mx7001');
  const plan: DataplanePlan = [
    { op: 'put-segment', segment: { vni: 1000, localVtep: '192.0.2.1', floodVteps: [] } },
    { op: 'put-port', port: { tap: SRC, vni: 1000 } },
    { op: 'put-port', port: { tap: SRC2, vni: 1000 } },
    { op: 'put-mirror-device', device: { vni: 7001, localVtep: '192.0.2.1', remote: '192.0.2.9', dstport: 4789, redirect: '' } },
    { op: 'put-erspan-mirror-device', device: { erspanId: 5, localVtep: '192.0.2.1', remote: '203.0.113.9', version: 2, dir: 'ingress' } },
    { op: 'put-erspan-mirror-device', device: { erspanId: 900, localVtep: '192.0.2.1', remote: '203.0.113.10', version: 1, dir: '' } },
    ...[...erspanFilters, vxlanFilter].map((f) => ({ op: 'put-mirror-filter' as const, filter: f })),
  ];
  const desiredOf = (steps: DataplanePlan) => {
    const desired = emptyDataplaneState();
    for (const s of steps) {
      if (s.op === 'put-mirror-filter') {desired.mirrorFilters.set(s.filter.cookie, s.filter);}
      if (s.op === 'put-mirror-device') {desired.mirrorDevices.set(s.device.vni, s.device);}
      if (s.op === 'put-erspan-mirror-device') {desired.erspanDevices.set(s.device.erspanId, s.device);}
      if (s.op === 'put-port') {desired.ports.set(s.port.tap, s.port);}
      if (s.op === 'put-segment') {desired.segments.set(s.segment.vni, s.segment);}
    }
    return desired;
  };
  const named = (text: string) => [...erspanFilters, vxlanFilter].reduce((t, f, i) => t.split(f.cookie).join(`<cookie ${i + 1}>`), text);

  function kernel(): { kernel: FakeKernel; dataplane: LinuxDataplane } {
    const k = kernelWith().addVeth(SRC).addVeth(SRC2);
    return { kernel: k, dataplane: new LinuxDataplane(k, new RecordingLogger()) };
  }

  it('creates ms<id> devices (type erspan, seq key <id>, v1 index or v2 direction and hwid) in no bridge, not gated, with these commands (golden), and reads them back', async () => {
    const { kernel: k, dataplane } = kernel();
    await dataplane.apply(plan);
    expectGoldenFile(join(__dirname, '__golden__', 'erspan-commands.txt'), named(k.batches().join('\n')));
    expect(Object.fromEntries(dataplane.mirrorFailures())).toEqual({});
    const state = await dataplane.observe();
    expect(Object.fromEntries(state.erspanDevices)).toEqual({
      5: { erspanId: 5, localVtep: '192.0.2.1', remote: '203.0.113.9', version: 2, dir: 'ingress' },
      900: { erspanId: 900, localVtep: '192.0.2.1', remote: '203.0.113.10', version: 1, dir: '' },
    });
    expect(k.links.get('ms5')).toMatchObject({ kind: 'erspan', up: true, alias: 'overlay-agent' });
    expect(k.links.get('ms5')?.master).toBeUndefined();
    expect(k.qdiscs.has('ms5')).toBe(false); // no clsact, no gate
    expect(planChanges(desiredOf(plan), state, true)).toEqual([]);
    k.calls.length = 0;
    await dataplane.apply(plan);
    expect(k.mutations()).toEqual([]);
  });

  it('puts an ERSPAN device back when it drifted (down, another direction), removes one no longer desired, and an IPv6 one is ip6erspan', async () => {
    const { kernel: k, dataplane } = kernel();
    await dataplane.apply(plan);
    k.sh('ip link set dev ms900 down');
    k.links.get('ms5')!.erspan!.dir = 'egress';
    const desired = desiredOf(plan);
    const repair = planChanges(desired, await dataplane.observe(), true);
    expect(repair.map((s) => s.op)).toEqual(['put-erspan-mirror-device', 'put-erspan-mirror-device']);
    k.calls.length = 0;
    await dataplane.apply(repair);
    expect(k.batches()).toEqual([
      ['ip -force', 'link del dev ms5', erspanAddLine(desired.erspanDevices.get(5)!), 'link set dev ms5 alias overlay-agent', 'link set dev ms5 addrgenmode none', 'link set dev ms5 up', 'link set dev ms900 up', ''].join('\n'),
    ]);
    // ms5 was created anew: its filters (their mirred action held the old device) are found and put again by the next plan.
    expect(planChanges(desired, await dataplane.observe(), true).filter((s) => s.op !== 'put-mirror-filter')).toEqual([]);
    desired.erspanDevices.delete(900);
    desired.mirrorFilters.delete(erspanFilters[2].cookie);
    k.calls.length = 0;
    await dataplane.apply(planChanges(desired, await dataplane.observe(), true).filter((s) => s.op.startsWith('remove')));
    expect(k.batches()).toEqual([['tc -force', `filter del block ${TAP_GATE_BLOCK} egress pref 49153`, ''].join('\n'), ['ip -force', 'link del dev ms900', ''].join('\n')]);
    expect(erspanAddLine({ erspanId: 7, localVtep: '2001:db8::1', remote: '2001:db8::9', version: 2, dir: 'egress' })).toBe(
      'link add name ms7 type ip6erspan seq key 7 local 2001:db8::1 remote 2001:db8::9 erspan_ver 2 erspan_dir egress erspan_hwid 0',
    );
  });

  it('on a kernel without ERSPAN, reports each tap into an ms<id> device with the kernel’s refusal, and programs the links and the other mirrors', async () => {
    const { kernel: k, dataplane } = kernel();
    k.missingKinds.add('erspan');
    await dataplane.apply(plan);
    const failures = dataplane.mirrorFailures();
    const line5 = erspanAddLine({ erspanId: 5, localVtep: '192.0.2.1', remote: '203.0.113.9', version: 2, dir: 'ingress' });
    expect(failures.get(erspanFilters[0].cookie)).toBe(`this kernel has no ERSPAN (ip ${line5}: Error: Unknown device type.)`);
    expect(failures.get(erspanFilters[1].cookie)).toBe(failures.get(erspanFilters[0].cookie));
    expect(failures.get(erspanFilters[2].cookie)).toMatch(/^this kernel has no ERSPAN \(ip link add name ms900 type erspan seq key 900 .* erspan_ver 1 erspan 1: Error: Unknown device type\.\)$/);
    expect(failures.has(vxlanFilter.cookie)).toBe(false);
    // No filter into a device that is not there was tried.
    expect(k.batches().join('\n')).not.toMatch(/mirror dev ms/);
    const observed = await dataplane.observe();
    expect(observed.segments.get(1000)?.localVtep).toBe('192.0.2.1');
    expect(observed.ports.get(SRC2)?.vni).toBe(1000);
    expect(observed.mirrorFilters.has(vxlanFilter.cookie)).toBe(true);
    expect(observed.erspanDevices.size).toBe(0);
    // As the agent reports it per mirror tap: the session's status shows it as lastError.
    const counters = mirrorCounters(['s1/p1', 's2/p2', 's3/p2'], desiredOf(plan), observed, new Map(), failures);
    expect(counters.map((c) => [c.id, (c.error ?? '').slice(0, 30)])).toEqual([
      ['s1/p1', 'this kernel has no ERSPAN (ip '],
      ['s2/p2', 'this kernel has no ERSPAN (ip '],
      ['s3/p2', ''],
    ]);
  });

  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  (root ? it : it.skip)('runs the real ip and tc in a throwaway network namespace: a kernel without ERSPAN fails the tap, one with it reads the device back (root only)', async () => {
    const ns = `erspanspec${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      const real = new ProcessCommandRunner();
      const inNs: CommandRunner = {
        run: (cmd, args, stdin) => real.run('ip', ['netns', 'exec', ns, cmd, ...args], stdin),
        watch: (cmd, args, onLine) => real.watch('ip', ['netns', 'exec', ns, cmd, ...args], onLine),
      };
      execFileSync('ip', ['-n', ns, 'link', 'add', SRC, 'type', 'veth', 'peer', 'name', 'peer0']);
      const dataplane = new LinuxDataplane(inNs, new RecordingLogger(), { read: () => '1', write: () => undefined });
      const steps = plan.filter((s) => !(s.op === 'put-port' && s.port.tap === SRC2) && !(s.op === 'put-mirror-filter' && s.filter.dev === SRC2) && !(s.op === 'put-erspan-mirror-device' && s.device.erspanId === 900));
      const vx = filter('s3/p1', 'egress', SRC, 'mx7001');
      steps.push({ op: 'put-mirror-filter', filter: vx });
      await dataplane.apply(steps);
      const observed = await dataplane.observe();
      expect(observed.segments.get(1000)?.localVtep).toBe('192.0.2.1');
      expect(observed.mirrorFilters.has(vx.cookie)).toBe(true);
      const line = erspanAddLine({ erspanId: 5, localVtep: '192.0.2.1', remote: '203.0.113.9', version: 2, dir: 'ingress' });
      if (observed.erspanDevices.has(5)) {
        // This kernel has ERSPAN: the device reads back as put, and its filters are in place.
        expect(observed.erspanDevices.get(5)).toEqual({ erspanId: 5, localVtep: '192.0.2.1', remote: '203.0.113.9', version: 2, dir: 'ingress' });
        expect(dataplane.mirrorFailures().size).toBe(0);
        expect(observed.mirrorFilters.has(erspanFilters[0].cookie) && observed.mirrorFilters.has(erspanFilters[1].cookie)).toBe(true);
      } else {
        expect(dataplane.mirrorFailures().get(erspanFilters[0].cookie)).toMatch(new RegExp(`^this kernel has no ERSPAN \\(ip ${line}: .+\\)$`));
        expect(dataplane.mirrorFailures().get(erspanFilters[1].cookie)).toBe(dataplane.mirrorFailures().get(erspanFilters[0].cookie));
        expect(dataplane.mirrorFailures().has(vx.cookie)).toBe(false);
        // What iproute2 prints of a batch line that fails, as batchErrors reads it.
        const stderr = (() => {
          try {
            execFileSync('ip', ['-n', ns, '-force', '-batch', '-'], { input: `${line}\nlink set dev ms5 up\n`, stdio: ['pipe', 'pipe', 'pipe'] });
            return '';
          } catch (e) {
            return (e as { stderr: Buffer }).stderr.toString();
          }
        })();
        expect([...batchErrors(stderr).keys()]).toEqual([1, 2]);
        expect(batchErrors(stderr).get(2)).toBe('Cannot find device "ms5"');
      }
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });
});

describe('LinuxDataplane: one kernel read per pass, and the fast path (updateForwarding)', () => {
  const reads = (kernel: FakeKernel) => kernel.calls.filter((c) => READS.includes(c)).length;

  it('applies a plan from what its observe read (no second read), once: an apply after it reads again', async () => {
    const kernel = kernelWith(ownSegment(1000, '192.0.2.1'), [remote(1000, '02:00:00:00:00:02', '192.0.2.2')]);
    const dataplane = new LinuxDataplane(kernel, new RecordingLogger());
    const observed = await dataplane.observe();
    const desired = emptyDataplaneState();
    desired.segments.set(1000, { vni: 1000, localVtep: '192.0.2.1', floodVteps: [] });
    desired.fdb.set(fdbKey(1000, '02:00:00:00:00:02'), { vni: 1000, mac: '02:00:00:00:00:02', vtep: '192.0.2.3' });
    const plan = planChanges(desired, observed, true);
    expect(plan).toEqual([{ op: 'put-fdb', entry: { vni: 1000, mac: '02:00:00:00:00:02', vtep: '192.0.2.3' } }]);
    kernel.calls.length = 0;
    await dataplane.apply(plan, observed);
    expect(reads(kernel)).toBe(0);
    expect(kernel.batches()).toEqual([['bridge', 'fdb replace 02:00:00:00:00:02 dev vx1000 dst 192.0.2.3 self permanent', ''].join('\n')]);
    kernel.calls.length = 0;
    await dataplane.apply(plan, observed); // the view is spent: read again, and nothing left to do
    expect(reads(kernel)).toBe(3);
    expect(kernel.mutations()).toEqual([]);
  });

  it('puts and removes forwarding entries in one bridge batch, removals first, without reading the kernel', async () => {
    const kernel = kernelWith(ownSegment(1000, '192.0.2.1'), ownSegment(2000, '192.0.2.1'), [remote(1000, '02:00:00:00:00:02', '192.0.2.2'), remote(2000, '02:00:00:00:00:05', '192.0.2.2')]);
    const dataplane = new LinuxDataplane(kernel, new RecordingLogger());
    await dataplane.updateForwarding([
      { op: 'put-fdb', entry: { vni: 1000, mac: '02:00:00:00:00:02', vtep: '192.0.2.4' } },
      { op: 'put-fdb', entry: { vni: 2000, mac: '02:00:00:00:00:0A', vtep: '192.0.2.3' } },
      { op: 'remove-fdb', vni: 2000, mac: '02:00:00:00:00:05' },
    ]);
    expect(kernel.calls).toEqual([
      [
        'bridge -batch -',
        'fdb del 02:00:00:00:00:05 dev vx2000 self',
        'fdb replace 02:00:00:00:00:02 dev vx1000 dst 192.0.2.4 self permanent',
        'fdb replace 02:00:00:00:00:0a dev vx2000 dst 192.0.2.3 self permanent',
        '',
      ].join('\n'),
    ]);
    const state = await dataplane.observe();
    expect(Object.fromEntries(state.fdb)).toEqual({
      [fdbKey(1000, '02:00:00:00:00:02')]: { vni: 1000, mac: '02:00:00:00:00:02', vtep: '192.0.2.4' },
      [fdbKey(2000, '02:00:00:00:00:0a')]: { vni: 2000, mac: '02:00:00:00:00:0a', vtep: '192.0.2.3' },
    });
  });

  it('throws when the kernel refuses a line (an entry to remove gone, a device missing) or a step is not valid', async () => {
    const kernel = kernelWith(ownSegment(1000, '192.0.2.1'));
    const dataplane = new LinuxDataplane(kernel, new RecordingLogger());
    await expect(dataplane.updateForwarding([{ op: 'remove-fdb', vni: 1000, mac: '02:00:00:00:00:02' }])).rejects.toThrow(/fdb del 02:00:00:00:00:02 dev vx1000 self/);
    await expect(dataplane.updateForwarding([{ op: 'put-fdb', entry: { vni: 3000, mac: '02:00:00:00:00:02', vtep: '192.0.2.2' } }])).rejects.toThrow(/vx3000/);
    kernel.calls.length = 0;
    await expect(dataplane.updateForwarding([{ op: 'put-fdb', entry: { vni: 1000, mac: '02:00:00:00:00:02', vtep: '192.0.2.2 dev' } }])).rejects.toThrow(/invalid step/);
    expect(kernel.calls).toEqual([]);
  });
});
