import { fdbKey, type DataplanePlan, type FirewallRuleset } from '../dataplane';
import type { CommandRunner } from './command-runner';
import { LinuxDataplane, TAP_GATE_BLOCK, VXLAN_GATE_BLOCK, type DataplaneLogger } from './linux.dataplane';

/** Answers the two reads with canned JSON and records every batch it is given. */
class FakeRunner implements CommandRunner {
  readonly calls: string[] = [];
  /** `ip` or `bridge`, a newline, then the batch text. */
  readonly batches: string[] = [];
  failBatch?: { cmd: string; message: string };
  /** `tc -j qdisc show` output, and `tc -j filter show block <n> egress` per block (absent: no such block). */
  qdiscs: unknown[] = [];
  blockFilters = new Map<number, unknown[]>();

  constructor(
    public links: unknown[],
    public fdb: unknown[],
  ) {}

  async run(cmd: string, args: string[], stdin?: string): Promise<string> {
    const line = [cmd, ...args].join(' ');
    this.calls.push(line);
    if (line === 'nft --version' || line === 'tc -V') {
      return '';
    }
    if (line === 'tc -j qdisc show') {
      return JSON.stringify(this.qdiscs);
    }
    const block = /^tc -j filter show block (\d+) egress$/.exec(line);
    if (block) {
      const filters = this.blockFilters.get(Number(block[1]));
      if (!filters) {
        throw new Error(`tc exited with status 1: Cannot find block "${block[1]}"`);
      }
      return JSON.stringify(filters);
    }
    if (line === 'ip -j -d link show') {
      return JSON.stringify(this.links);
    }
    if (line === 'bridge -j fdb show') {
      return JSON.stringify(this.fdb);
    }
    if (args.join(' ') === '-batch -') {
      if (this.failBatch?.cmd === cmd) {
        throw new Error(this.failBatch.message);
      }
      this.batches.push(`${cmd}\n${stdin}`);
      return '';
    }
    throw new Error(`unexpected command: ${line}`);
  }
}

class RecordingLogger implements DataplaneLogger {
  readonly lines: string[] = [];
  info(m: string): void {
    this.lines.push(`info ${m}`);
  }
  warn(m: string): void {
    this.lines.push(`warn ${m}`);
  }
}

// Trimmed from real `ip -j -d link show` / `bridge -j fdb show` output (iproute2 6.1, Linux 6.x).
/** A ruleset of this text (the Linux dataplane loads the text; the tap digests are the agent's). */
const ruleset = (text: string): FirewallRuleset => ({ text, ports: new Map() });

const lo = { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, operstate: 'UNKNOWN', link_type: 'loopback', address: '00:00:00:00:00:00' };
const eth0 = { ifindex: 2, link: null, ifname: 'eth0', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1500, operstate: 'UP', linkinfo: { info_kind: 'veth' } };
/** The host's own bridge: same naming pattern, no alias. Must never be read as a segment. */
const hostBr0 = { ifindex: 3, ifname: 'br0', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1500, operstate: 'UP', linkinfo: { info_kind: 'bridge', info_data: { stp_state: 0 } } };
const hostBr7 = { ifindex: 4, ifname: 'br7', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1500, operstate: 'UP', linkinfo: { info_kind: 'bridge', info_data: { stp_state: 0 } } };

function vxlan(vni: number, local: string, opts: { up?: boolean; master?: string | null; learning?: boolean; portLearning?: boolean; port?: number; id?: number; alias?: string | null } = {}) {
  const master = opts.master === undefined ? `br${vni}` : opts.master;
  return {
    ifindex: 100 + vni,
    ifname: `vx${vni}`,
    flags: opts.up === false ? ['BROADCAST', 'MULTICAST'] : ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    mtu: 1450,
    ...(master ? { master } : {}),
    operstate: 'UNKNOWN',
    address: 'e2:7d:db:fd:9e:36',
    linkinfo: {
      info_kind: 'vxlan',
      info_data: { id: opts.id ?? vni, local, port_range: { low: 0, high: 0 }, port: opts.port ?? 4789, learning: opts.learning ?? false, ttl: 0, df: 'unset', ageing: 300, udp_csum: true },
      ...(master ? { info_slave_kind: 'bridge', info_slave_data: { state: 'forwarding', priority: 32, cost: 100, learning: opts.portLearning ?? false, flood: true } } : {}),
    },
    inet6_addr_gen_mode: 'none',
    ...(opts.alias === null ? {} : { ifalias: opts.alias ?? 'overlay-agent' }),
  };
}

function bridge(vni: number, opts: { up?: boolean; alias?: string | null } = {}) {
  return {
    ifindex: 200 + vni,
    ifname: `br${vni}`,
    flags: opts.up === false ? ['BROADCAST', 'MULTICAST'] : ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    mtu: 1450,
    operstate: 'UP',
    linkinfo: { info_kind: 'bridge', info_data: { forward_delay: 1500, stp_state: 0, vlan_filtering: 0 } },
    inet6_addr_gen_mode: 'none',
    ...(opts.alias === null ? {} : { ifalias: opts.alias ?? 'overlay-agent' }),
  };
}

function tap(name: string, opts: { up?: boolean; master?: string } = {}) {
  return {
    ifindex: 300 + name.length,
    link: 'eth0',
    ifname: name,
    flags: opts.up ? ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'] : ['BROADCAST', 'MULTICAST'],
    mtu: 1500,
    ...(opts.master ? { master: opts.master } : {}),
    operstate: opts.up ? 'UP' : 'DOWN',
    linkinfo: { info_kind: 'veth', ...(opts.master ? { info_slave_kind: 'bridge', info_slave_data: { state: 'forwarding', learning: true } } : {}) },
  };
}

const remote = (ifname: string, mac: string, dst: string) => ({ mac, ifname, dst, flags: ['self'], state: 'permanent' });
const local = (ifname: string, mac: string, master: string) => ({ mac, ifname, flags: [], master, state: 'permanent' });

describe('LinuxDataplane.observe', () => {
  const links = [
    lo,
    eth0,
    hostBr0,
    vxlan(1000, '192.0.2.1'),
    bridge(1000),
    tap('tap0123456789a', { up: true, master: 'br1000' }),
    tap('tapdeadbeef000', { up: false, master: 'br1000' }),
    // Degraded: down and learning on.
    vxlan(2000, '192.0.2.1', { up: false, learning: true }),
    bridge(2000),
    // Not ours: no alias, though named like ours; a tap on the host's bridge.
    vxlan(3000, '192.0.2.1', { alias: null, master: null }),
    tap('tapffffffff000', { up: true, master: 'br0' }),
    { ...bridge(7), ifalias: undefined },
  ];
  const fdb = [
    local('vx1000', 'e2:7d:db:fd:9e:36', 'br1000'),
    remote('vx1000', '02:00:00:00:00:02', '192.0.2.2'),
    remote('vx1000', '00:00:00:00:00:00', '192.0.2.3'),
    remote('vx1000', '00:00:00:00:00:00', '192.0.2.2'),
    remote('vx1000', '02:00:00:00:00:03', '192.0.2.3'),
    remote('vx1000', '02:00:00:00:00:03', '192.0.2.2'),
    remote('vx2000', '00:00:00:00:00:00', '192.0.2.2'),
    remote('vx3000', '02:00:00:00:00:09', '192.0.2.9'),
    { mac: '33:33:00:00:00:01', ifname: 'tap0123456789a', flags: ['self'], state: 'permanent' },
    local('tapffffffff000', 'be:93:12:31:8e:a0', 'br0'),
  ];

  it('maps exactly the links and entries it owns to DataplaneState', async () => {
    const runner = new FakeRunner(links, fdb);
    const state = await new LinuxDataplane(runner, new RecordingLogger()).observe();
    expect(runner.calls.sort()).toEqual(['bridge -j fdb show', 'ip -j -d link show']);
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
    const state = await new LinuxDataplane(new FakeRunner([lo, vxlan(1000, '192.0.2.1', { master: null }), bridge(1000)], []), new RecordingLogger()).observe();
    expect(state.segments.get(1000)).toEqual({ vni: 1000, localVtep: '', floodVteps: [] });
  });

  it('reads an empty kernel as an empty state', async () => {
    const state = await new LinuxDataplane(new FakeRunner([lo], []), new RecordingLogger()).observe();
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

  it('programs a new segment in an ip batch, attaches its tap in a second one, then puts the entries in one bridge batch', async () => {
    const runner = new FakeRunner([lo, eth0, hostBr0, tap('tap0123456789a')], []);
    await new LinuxDataplane(runner, new RecordingLogger()).apply(plan);
    expect(runner.batches).toEqual([
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
      ['ip', 'link set dev tap0123456789a master br1000', 'link set dev tap0123456789a up', ''].join('\n'),
      [
        'bridge',
        'fdb append 00:00:00:00:00:00 dev vx1000 dst 192.0.2.2 self permanent',
        'fdb append 00:00:00:00:00:00 dev vx1000 dst 192.0.2.3 self permanent',
        'fdb replace 02:00:00:00:00:02 dev vx1000 dst 192.0.2.2 self permanent',
        'fdb replace 02:00:00:00:00:03 dev vx1000 dst 192.0.2.3 self permanent',
        '',
      ].join('\n'),
    ]);
  });

  it('runs nothing but its reads when the kernel already matches (idempotent)', async () => {
    const runner = new FakeRunner(
      [lo, eth0, vxlan(1000, '192.0.2.1'), bridge(1000), tap('tap0123456789a', { up: true, master: 'br1000' })],
      [remote('vx1000', '00:00:00:00:00:00', '192.0.2.2'), remote('vx1000', '00:00:00:00:00:00', '192.0.2.3'), remote('vx1000', '02:00:00:00:00:02', '192.0.2.2'), remote('vx1000', '02:00:00:00:00:03', '192.0.2.3')],
    );
    await new LinuxDataplane(runner, new RecordingLogger()).apply(plan);
    expect(runner.batches).toEqual([]);
    expect(runner.calls.sort()).toEqual(['bridge -j fdb show', 'ip -j -d link show']);
  });

  it('repairs drift with the fewest commands, removals first', async () => {
    const runner = new FakeRunner(
      [lo, eth0, vxlan(1000, '192.0.2.1', { up: false, portLearning: true }), bridge(1000), vxlan(2000, '192.0.2.1'), bridge(2000), tap('tap0123456789a', { up: true, master: 'br2000' }), tap('tap00000000bbb', { up: true, master: 'br1000' })],
      [
        remote('vx1000', '00:00:00:00:00:00', '192.0.2.2'),
        remote('vx1000', '00:00:00:00:00:00', '192.0.2.9'),
        remote('vx1000', '02:00:00:00:00:02', '192.0.2.9'),
        remote('vx1000', '02:00:00:00:00:03', '192.0.2.3'),
        remote('vx1000', '02:00:00:00:00:03', '192.0.2.2'),
        remote('vx1000', '02:00:00:00:00:04', '192.0.2.2'),
        remote('vx2000', '02:00:00:00:00:05', '192.0.2.2'),
      ],
    );
    await new LinuxDataplane(runner, new RecordingLogger()).apply([
      { op: 'remove-port', tap: 'tap0123456789a' },
      { op: 'remove-port', tap: 'tap00000000bbb' },
      { op: 'remove-fdb', vni: 1000, mac: '02:00:00:00:00:04' },
      { op: 'remove-fdb', vni: 2000, mac: '02:00:00:00:00:05' },
      { op: 'remove-segment', vni: 2000 },
      ...plan,
    ]);
    expect(runner.batches).toEqual([
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
      ['ip', 'link set dev tap0123456789a master br1000', ''].join('\n'),
      [
        'bridge',
        'fdb append 00:00:00:00:00:00 dev vx1000 dst 192.0.2.3 self permanent',
        'fdb replace 02:00:00:00:00:02 dev vx1000 dst 192.0.2.2 self permanent',
        'fdb replace 02:00:00:00:00:03 dev vx1000 dst 192.0.2.3 self permanent',
        '',
      ].join('\n'),
    ]);
  });


  it('recreates a VXLAN device with the wrong VNI and puts its entries back', async () => {
    const runner = new FakeRunner([lo, vxlan(1000, '192.0.2.1', { id: 1001 }), bridge(1000)], [remote('vx1000', '02:00:00:00:00:07', '192.0.2.7'), remote('vx1000', '00:00:00:00:00:00', '192.0.2.2')]);
    await new LinuxDataplane(runner, new RecordingLogger()).apply([{ op: 'put-segment', segment: { vni: 1000, localVtep: '192.0.2.1', floodVteps: ['192.0.2.2'] } }]);
    expect(runner.batches).toEqual([
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
  });

  it('changes the local VTEP in place', async () => {
    const runner = new FakeRunner([lo, vxlan(1000, '192.0.2.9'), bridge(1000)], []);
    await new LinuxDataplane(runner, new RecordingLogger()).apply([{ op: 'put-segment', segment: { vni: 1000, localVtep: '192.0.2.1', floodVteps: [] } }]);
    expect(runner.batches).toEqual(['ip\nlink set dev vx1000 type vxlan local 192.0.2.1 nolearning\n']);
  });

  it('skips a tap that does not exist yet, logs it once, and applies the rest', async () => {
    const runner = new FakeRunner([lo, vxlan(1000, '192.0.2.1'), bridge(1000)], []);
    const logger = new RecordingLogger();
    const dataplane = new LinuxDataplane(runner, logger);
    const step: DataplanePlan = [
      { op: 'put-fdb', entry: { vni: 1000, mac: '02:00:00:00:00:02', vtep: '192.0.2.2' } },
      { op: 'put-port', port: { tap: 'tap0123456789a', vni: 1000 } },
    ];
    await dataplane.apply(step);
    await dataplane.apply(step);
    expect(runner.batches).toEqual(['bridge\nfdb replace 02:00:00:00:00:02 dev vx1000 dst 192.0.2.2 self permanent\n', 'bridge\nfdb replace 02:00:00:00:00:02 dev vx1000 dst 192.0.2.2 self permanent\n']);
    expect(logger.lines).toEqual(['warn tap tap0123456789a does not exist yet; its port will be attached by a later reconcile']);
  });

  it('leaves links it does not own alone, and refuses to build a segment over them', async () => {
    const runner = new FakeRunner([lo, hostBr0, hostBr7, tap('tap0123456789a', { up: true, master: 'br7' }), vxlan(3000, '192.0.2.1', { alias: null, master: null })], []);
    const dataplane = new LinuxDataplane(runner, new RecordingLogger());
    await dataplane.apply([
      { op: 'remove-port', tap: 'tap0123456789a' },
      { op: 'remove-segment', vni: 7 },
      { op: 'remove-segment', vni: 3000 },
    ]);
    expect(runner.batches).toEqual([]);
    await expect(dataplane.apply([{ op: 'put-segment', segment: { vni: 7, localVtep: '192.0.2.1', floodVteps: [] } }])).rejects.toThrow(
      'cannot program segment 7: link br7 exists but is not an overlay-agent bridge (alias overlay-agent); it is left untouched, rename or delete it',
    );
    expect(runner.batches).toEqual([]);
  });

  it('refuses a step whose values would not be safe in a batch script, before running anything', async () => {
    const runner = new FakeRunner([lo], []);
    const dataplane = new LinuxDataplane(runner, new RecordingLogger());
    await expect(dataplane.apply([{ op: 'put-fdb', entry: { vni: 1000, mac: '02:00:00:00:00:02', vtep: '192.0.2.2\nlink del dev eth0' } }])).rejects.toThrow('put-fdb: "192.0.2.2\\nlink del dev eth0" is not an IP address');
    await expect(dataplane.apply([{ op: 'put-port', port: { tap: 'eth0', vni: 1000 } }])).rejects.toThrow('put-port: "eth0" is not a tap name');
    await expect(dataplane.apply([{ op: 'remove-segment', vni: 0 }])).rejects.toThrow('remove-segment: VNI 0 out of range');
    expect(runner.calls).toEqual([]);
  });

  it('throws when a batch fails, naming the line that failed', async () => {
    const runner = new FakeRunner([lo, eth0, tap('tap0123456789a')], []);
    runner.failBatch = { cmd: 'ip', message: 'ip -batch - exited with status 1: Error: argument "br1000" is wrong: Device does not exist\nCommand failed -:1' };
    await expect(new LinuxDataplane(runner, new RecordingLogger()).apply([{ op: 'put-port', port: { tap: 'tap0123456789a', vni: 1000 } }])).rejects.toThrow(
      /^ip -batch failed at "link set dev tap0123456789a master br1000": ip -batch - exited with status 1: Error: argument "br1000" is wrong/,
    );
  });
});

describe('LinuxDataplane.applyFirewall', () => {
  it('loads the ruleset text in one nft -f - transaction', async () => {
    const calls: { line: string; stdin?: string }[] = [];
    const runner: CommandRunner = {
      async run(cmd, args, stdin) {
        calls.push({ line: [cmd, ...args].join(' '), stdin });
        return '';
      },
    };
    await new LinuxDataplane(runner, new RecordingLogger()).applyFirewall(ruleset('table bridge overlay\n'));
    expect(calls).toEqual([{ line: 'nft -f -', stdin: 'table bridge overlay\n' }]);
  });

  it('throws when nft fails', async () => {
    const runner: CommandRunner = {
      async run() {
        throw new Error('nft -f - exited with status 1: Error: syntax error');
      },
    };
    await expect(new LinuxDataplane(runner, new RecordingLogger()).applyFirewall(ruleset('bad'))).rejects.toThrow(/syntax error/);
  });
});

describe('LinuxDataplane.applyFirewall drift repair', () => {
  const TEXT = 'table bridge overlay\ndelete table bridge overlay\ntable bridge overlay {\n\tset s {\n\t\ttype ipv4_addr\n\t\telements = { 10.0.0.1 }\n\t}\n\n\tchain c {\n\t\tip saddr @s accept\n\t}\n}\n';
  const GROWN = TEXT.replace('{ 10.0.0.1 }', '{ 10.0.0.1, 10.0.0.2 }');
  const table = { family: 'bridge', name: 'overlay', handle: 7 };
  const rule = (handle: number, expr: unknown = [{ accept: null }]) => ({ rule: { family: 'bridge', table: 'overlay', chain: 'c', handle, expr } });

  /** A fake `nft`: `-f -` records the load, `-j list table` answers with `kernel` (throws when undefined, as for a deleted table). */
  function nftKernel() {
    const fake = {
      kernel: undefined as unknown[] | undefined,
      calls: [] as string[],
      runner: {
        async run(cmd: string, args: string[], stdin?: string): Promise<string> {
          fake.calls.push(`${[cmd, ...args].join(' ')}${stdin ? `\n${stdin}` : ''}`);
          if (args[0] === '-j') {
            if (!fake.kernel) {
              throw new Error('nft -j list table bridge overlay exited with status 1: Error: No such file or directory');
            }
            const items = args[2] === 'table' ? fake.kernel : fake.kernel.filter((o) => (o as { set?: { name: string } }).set?.name === args[5]);
            return JSON.stringify({ nftables: [{ metainfo: { version: '1.0.6' } }, ...items] });
          }
          return '';
        },
      } as CommandRunner,
    };
    return fake;
  }
  const loaded = (elem: string[]) => [{ table }, { set: { family: 'bridge', table: 'overlay', name: 's', handle: 1, type: 'ipv4_addr', elem } }, { chain: { family: 'bridge', table: 'overlay', name: 'c', handle: 2 } }, rule(3)];

  async function loadedDataplane() {
    const fake = nftKernel();
    const logger = new RecordingLogger();
    const dp = new LinuxDataplane(fake.runner, logger);
    fake.kernel = loaded(['10.0.0.1']);
    await dp.applyFirewall(ruleset(TEXT));
    expect(fake.calls).toEqual([`nft -f -\n${TEXT}`, 'nft -j list table bridge overlay']);
    fake.calls.length = 0;
    return { fake, dp, logger };
  }

  it('costs one read, not a reload, when the kernel still holds what was loaded', async () => {
    const { fake, dp, logger } = await loadedDataplane();
    await dp.applyFirewall(ruleset(TEXT));
    await dp.applyFirewall(ruleset(TEXT));
    expect(fake.calls).toEqual(['nft -j list table bridge overlay', 'nft -j list table bridge overlay']);
    expect(logger.lines).toEqual([]);
  });

  it.each([
    ['a rule inserted by hand', (k: unknown[]) => [...k, rule(9, [{ drop: null }])]],
    ['a rule replaced by hand', (k: unknown[]) => [...k.slice(0, 3), rule(3, [{ drop: null }])]],
    ['a rule deleted', (k: unknown[]) => k.slice(0, 3)],
    ['an element removed', () => loaded([])],
    ['the table deleted', () => undefined],
  ])('reloads the whole text after %s', async (_what, drift: (k: unknown[]) => unknown[] | undefined) => {
    const { fake, dp, logger } = await loadedDataplane();
    fake.kernel = drift(fake.kernel!);
    await dp.applyFirewall(ruleset(TEXT));
    expect(fake.calls).toEqual(['nft -j list table bridge overlay', `nft -f -\n${TEXT}`, 'nft -j list table bridge overlay']);
    expect(logger.lines).toEqual([expect.stringMatching(/^warn firewall drift \(.*\): reloading the whole table$/)]);
  });

  it('loads a change of elements as a set update and reads back only the sets it rewrote', async () => {
    const { fake, dp, logger } = await loadedDataplane();
    fake.kernel = loaded(['10.0.0.1', '10.0.0.2']);
    await dp.applyFirewall(ruleset(GROWN));
    expect(fake.calls).toEqual(['nft -f -\nflush set bridge overlay s\nadd element bridge overlay s { 10.0.0.1, 10.0.0.2 }\n', 'nft -j list set bridge overlay s']);
    fake.calls.length = 0;
    await dp.applyFirewall(ruleset(GROWN));
    expect(fake.calls).toEqual(['nft -j list table bridge overlay']);
    expect(logger.lines).toEqual([]);
  });

  it('finds drift that happened before a set update at the next check', async () => {
    const { fake, dp, logger } = await loadedDataplane();
    fake.kernel = [...loaded(['10.0.0.1', '10.0.0.2']), rule(9, [{ drop: null }])];
    await dp.applyFirewall(ruleset(GROWN));
    fake.calls.length = 0;
    await dp.applyFirewall(ruleset(GROWN));
    expect(fake.calls).toEqual(['nft -j list table bridge overlay', `nft -f -\n${GROWN}`, 'nft -j list table bridge overlay']);
    expect(logger.lines).toEqual(['warn firewall drift (rules bridge c changed): reloading the whole table']);
  });

  it('loads the whole text again when the tables cannot be read back', async () => {
    const { fake, dp } = await loadedDataplane();
    fake.runner.run = async (cmd, args, stdin) => {
      fake.calls.push(`${[cmd, ...args].join(' ')}${stdin ? `\n${stdin}` : ''}`);
      return args[0] === '-j' ? 'not json' : '';
    };
    await dp.applyFirewall(ruleset(TEXT));
    await dp.applyFirewall(ruleset(TEXT));
    expect(fake.calls).toEqual(['nft -j list table bridge overlay', `nft -f -\n${TEXT}`, 'nft -j list table bridge overlay', `nft -f -\n${TEXT}`, 'nft -j list table bridge overlay']);
  });
});

describe('LinuxDataplane firewall conntrack', () => {
  const ON = '/proc/sys/net/bridge/bridge-nf-call-iptables';
  const ON6 = '/proc/sys/net/bridge/bridge-nf-call-ip6tables';

  /** Answers `nft -c` (the probe) as told, records every nft call. */
  function nftRunner(bridgeConntrack: boolean) {
    const calls: string[] = [];
    const runner: CommandRunner = {
      async run(cmd, args, stdin) {
        calls.push(`${[cmd, ...args].join(' ')}\n${stdin ?? ''}`);
        if (args[0] === '-c' && !bridgeConntrack) {
          throw new Error('Error: Could not process rule: Protocol error');
        }
        return '';
      },
    };
    return { runner, calls };
  }

  function sysctls(initial: Record<string, string>) {
    const values = new Map(Object.entries(initial));
    return { values, read: (p: string) => values.get(p), write: (p: string, v: string) => void values.set(p, v) };
  }

  it('probes bridge conntrack with nft -c and uses it when the kernel has it, touching no sysctl', async () => {
    const { runner, calls } = nftRunner(true);
    const fs = sysctls({ [ON]: '0', [ON6]: '0' });
    const dp = new LinuxDataplane(runner, new RecordingLogger(), fs);
    expect(await dp.prepareFirewall('auto')).toBe('bridge');
    expect(calls).toHaveLength(3);
    expect(calls[0]).toBe('nft --version\n');
    expect(calls[1]).toMatch(/^nft -c -f -\ntable bridge overlay_probe \{[\s\S]*ct state established accept/);
    expect(calls[2]).toBe('tc -V\n'); // the gate needs tc
    await dp.applyFirewall(ruleset('table bridge overlay\n'));
    expect(fs.values.get(ON)).toBe('0');
  });

  it('falls back to br_netfilter, switching on its sysctls at start and again before every load', async () => {
    const { runner, calls } = nftRunner(false);
    const fs = sysctls({ [ON]: '0', [ON6]: '1' });
    const logger = new RecordingLogger();
    const dp = new LinuxDataplane(runner, logger, fs);
    expect(await dp.prepareFirewall('auto')).toBe('br_netfilter');
    expect([fs.values.get(ON), fs.values.get(ON6)]).toEqual(['1', '1']);
    fs.values.set(ON6, '0'); // someone turned it off
    await dp.applyFirewall(ruleset('table inet overlay\n'));
    expect(fs.values.get(ON6)).toBe('1');
    expect(calls.at(-1)).toBe('nft -f -\ntable inet overlay\n');
    expect(logger.lines.filter((l) => l.startsWith('warn'))).toHaveLength(2);
  });

  it('refuses to start the firewall without bridge conntrack nor br_netfilter', async () => {
    const { runner } = nftRunner(false);
    const dp = new LinuxDataplane(runner, new RecordingLogger(), sysctls({}));
    await expect(dp.prepareFirewall('auto')).rejects.toThrow(/br_netfilter is not loaded/);
    await expect(dp.prepareFirewall('br_netfilter')).rejects.toThrow(/br_netfilter is not loaded/);
  });

  it('uses the mode given without probing', async () => {
    const { runner, calls } = nftRunner(false);
    const dp = new LinuxDataplane(runner, new RecordingLogger(), sysctls({}));
    expect(await dp.prepareFirewall('bridge')).toBe('bridge');
    expect(calls).toEqual(['nft --version\n', 'tc -V\n']);
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
  /** `tc -j filter show block <n> egress` of the gate filter, as tc 6.1 prints it. */
  const gateFilter = (bit: number) => [
    { protocol: 'all', pref: 1, kind: 'bpf', chain: 0 },
    {
      protocol: 'all',
      pref: 1,
      kind: 'bpf',
      chain: 0,
      options: {
        handle: '0x1',
        'direct-action': true,
        not_in_hw: true,
        bytecode: {
          length: 4,
          insns: [
            { code: 32, jt: 0, jf: 0, k: 4294963220 },
            { code: 69, jt: 0, jf: 1, k: bit },
            { code: 6, jt: 0, jf: 0, k: 0 },
            { code: 6, jt: 0, jf: 0, k: 2 },
          ],
        },
      },
    },
  ];
  const clsact = (dev: string, block?: number) => ({ kind: 'clsact', handle: 'ffff:', dev, parent: 'ffff:fff1', ...(block ? { egress_block: block } : {}), options: {} });
  const TAP_FILTER = `filter replace block ${TAP_GATE_BLOCK} egress pref 1 handle 1 bpf da bytecode "4,32 0 0 4294963220,69 0 1 134217728,6 0 0 0,6 0 0 2"`;
  const VXLAN_FILTER = `filter replace block ${VXLAN_GATE_BLOCK} egress pref 1 handle 1 bpf da bytecode "4,32 0 0 4294963220,69 0 1 67108864,6 0 0 0,6 0 0 2"`;

  async function gated(runner: FakeRunner): Promise<LinuxDataplane> {
    const dataplane = new LinuxDataplane(runner, new RecordingLogger(), { read: () => '1', write: () => undefined });
    await dataplane.prepareFirewall('bridge');
    return dataplane;
  }

  it('binds a new VXLAN device and a tap to their gates, with the gate filters, before the tap is attached', async () => {
    const runner = new FakeRunner([lo, eth0, tap('tap0123456789a')], []);
    await (
      await gated(runner)
    ).apply([
      { op: 'put-segment', segment: { vni: 1000, localVtep: '192.0.2.1', floodVteps: [] } },
      { op: 'put-port', port: { tap: 'tap0123456789a', vni: 1000 } },
    ]);
    const order = runner.batches.map((b) => b.split('\n')[0]);
    expect(order).toEqual(['ip', 'tc', 'ip']);
    expect(runner.batches[1]).toBe(['tc', `qdisc add dev vx1000 egress_block ${VXLAN_GATE_BLOCK} clsact`, `qdisc add dev tap0123456789a egress_block ${TAP_GATE_BLOCK} clsact`, TAP_FILTER, VXLAN_FILTER, ''].join('\n'));
    expect(runner.batches[2]).toBe('ip\nlink set dev tap0123456789a master br1000\nlink set dev tap0123456789a up\n');
  });

  it('reports a tap or VXLAN device without its gate, or a gate without its filter, as needing repair, and repairs only that', async () => {
    const links = [lo, vxlan(1000, '192.0.2.1'), bridge(1000), tap('tap0123456789a', { up: true, master: 'br1000' }), tap('tap00000000bbb', { up: true, master: 'br1000' })];
    const runner = new FakeRunner(links, []);
    // tap bbb has someone else's clsact; the VXLAN block lost its filter.
    runner.qdiscs = [clsact('vx1000', VXLAN_GATE_BLOCK), clsact('tap0123456789a', TAP_GATE_BLOCK), clsact('tap00000000bbb')];
    runner.blockFilters.set(TAP_GATE_BLOCK, gateFilter(0x08000000));
    runner.blockFilters.set(VXLAN_GATE_BLOCK, []);
    const dataplane = await gated(runner);
    const state = await dataplane.observe();
    expect(state.segments.get(1000)?.localVtep).toBe('');
    expect(Object.fromEntries(state.ports)).toEqual({ tap0123456789a: { tap: 'tap0123456789a', vni: 1000 }, tap00000000bbb: { tap: 'tap00000000bbb', vni: -1 } });
    await dataplane.apply([
      { op: 'put-segment', segment: { vni: 1000, localVtep: '192.0.2.1', floodVteps: [] } },
      { op: 'put-port', port: { tap: 'tap00000000bbb', vni: 1000 } },
    ]);
    expect(runner.batches).toEqual([['tc', 'qdisc del dev tap00000000bbb clsact', `qdisc add dev tap00000000bbb egress_block ${TAP_GATE_BLOCK} clsact`, TAP_FILTER, VXLAN_FILTER, ''].join('\n')]);
  });

  it('reads a fully gated kernel as healthy and runs nothing', async () => {
    const runner = new FakeRunner([lo, vxlan(1000, '192.0.2.1'), bridge(1000), tap('tap0123456789a', { up: true, master: 'br1000' })], []);
    runner.qdiscs = [clsact('vx1000', VXLAN_GATE_BLOCK), clsact('tap0123456789a', TAP_GATE_BLOCK)];
    runner.blockFilters.set(TAP_GATE_BLOCK, gateFilter(0x08000000));
    runner.blockFilters.set(VXLAN_GATE_BLOCK, gateFilter(0x04000000));
    const dataplane = await gated(runner);
    const state = await dataplane.observe();
    expect(state.segments.get(1000)?.localVtep).toBe('192.0.2.1');
    expect(state.ports.get('tap0123456789a')?.vni).toBe(1000);
    await dataplane.apply([
      { op: 'put-segment', segment: { vni: 1000, localVtep: '192.0.2.1', floodVteps: [] } },
      { op: 'put-port', port: { tap: 'tap0123456789a', vni: 1000 } },
    ]);
    expect(runner.batches).toEqual([]);
  });

  it('treats a gate filter with other bytecode as missing', async () => {
    const runner = new FakeRunner([lo, vxlan(1000, '192.0.2.1'), bridge(1000)], []);
    runner.qdiscs = [clsact('vx1000', VXLAN_GATE_BLOCK)];
    runner.blockFilters.set(VXLAN_GATE_BLOCK, gateFilter(0x08000000)); // the taps' bit: passes the wrong frames
    expect((await (await gated(runner)).observe()).segments.get(1000)?.localVtep).toBe('');
  });

  it('keeps what was in force when a load fails, and forgets it when the tables had drifted', async () => {
    let failLoads = false;
    let listed: string | undefined = JSON.stringify({ nftables: [{ table: { family: 'bridge', name: 'overlay', handle: 1 } }] });
    const runner: CommandRunner = {
      async run(cmd, args) {
        if (args.join(' ') === '-f -' && failLoads) {
          throw new Error('nft -f - exited with status 1: injected');
        }
        if (args[0] === '-j') {
          if (listed === undefined) {
            throw new Error('No such file or directory');
          }
          return listed;
        }
        return '';
      },
    };
    const dataplane = new LinuxDataplane(runner, new RecordingLogger());
    const A = 'table bridge overlay {\n}\n';
    const B = 'table bridge overlay {\n\tchain x {\n\t}\n}\n';
    expect(dataplane.firewallInForce()).toBeUndefined();
    await dataplane.applyFirewall(ruleset(A));
    expect(dataplane.firewallInForce()?.text).toBe(A);
    failLoads = true;
    await expect(dataplane.applyFirewall(ruleset(B))).rejects.toThrow(/injected/);
    expect(dataplane.firewallInForce()?.text).toBe(A); // one transaction: the kernel still holds A
    listed = undefined; // the tables were flushed by hand
    await expect(dataplane.applyFirewall(ruleset(A))).rejects.toThrow(/injected/);
    expect(dataplane.firewallInForce()).toBeUndefined();
    failLoads = false;
    await dataplane.applyFirewall(ruleset(A));
    expect(dataplane.firewallInForce()?.text).toBe(A);
  });
});
