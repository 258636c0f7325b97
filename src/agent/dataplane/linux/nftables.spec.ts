import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FirewallRule__Output } from '../../../generated/overlay/v1/FirewallRule';
import type { IpSetMember__Output } from '../../../generated/overlay/v1/IpSetMember';
import type { PortPolicy__Output } from '../../../generated/overlay/v1/PortPolicy';
import { tapName } from '../names';
import { conntrackZones, linkLocalOf, renderFirewall, renderRuleset, type ConntrackMode } from './nftables';
import { parseRuleset, printSetUpdate, setUpdate } from './nft-ruleset';
import { expectGoldenFile } from '../../../../test/support/golden';

/**
 * Golden files under __golden__/: the rendered nft text of representative policies. After an
 * intended change, regenerate with
 * `OVERLAY_UPDATE_GOLDEN=1 npx jest src/agent/dataplane/linux/nftables.spec.ts` and review the diff.
 * As root with `nft` installed, each golden text is also checked by `nft -c -f -` in a
 * throwaway network namespace.
 */
const GOLDEN_DIR = join(__dirname, '__golden__');

function expectGolden(name: string, text: string): void {
  expectGoldenFile(join(GOLDEN_DIR, `${name}.nft`), text);
}

const WEB = '019a0000-0000-7000-8000-00000000aaa1';
const DB = '019a0000-0000-7000-8000-00000000bbb2';
const OPEN = '019a0000-0000-7000-8000-00000000ccc3';
const V6 = '019a0000-0000-7000-8000-00000000ddd4';
const ADMINS = '019a1111-1111-7111-8111-0000000a0001';
const WEBGROUP = '019a1111-1111-7111-8111-0000000a0002';

function rule(r: Partial<FirewallRule__Output>): FirewallRule__Output {
  return { ethertype: 'IPv4', protocol: 'any', portMin: 0, portMax: 0, icmpType: -1, icmpCode: -1, remoteCidr: '', remoteGroupId: '', ...r };
}

function policy(p: Partial<PortPolicy__Output> & { portId: string }): PortPolicy__Output {
  return { portSecurity: true, mac: 'fa:16:3e:00:00:01', ips: [], allowedAddressPairs: [], ingress: [], egress: [], ...p };
}

const egressAll = [rule({ ethertype: 'IPv4', remoteCidr: '0.0.0.0/0' }), rule({ ethertype: 'IPv6', remoteCidr: '::/0' })];

const web = policy({
  portId: WEB,
  mac: 'fa:16:3e:aa:00:01',
  ips: ['10.0.0.5'],
  ingress: [
    rule({ protocol: '6', portMin: 80, portMax: 80, remoteCidr: '0.0.0.0/0' }),
    rule({ protocol: '6', portMin: 22, portMax: 22, remoteGroupId: ADMINS }),
    rule({ protocol: '1', icmpType: 8, icmpCode: -1, remoteCidr: '10.0.0.0/8' }),
    rule({ protocol: '1' }),
    rule({ protocol: '17', portMin: 5000, portMax: 5100, remoteCidr: '192.168.0.0/16' }),
  ],
  egress: egressAll,
});
const members: IpSetMember__Output[] = [
  { groupId: ADMINS, family: 'IPv4', cidr: '10.0.1.7' },
  { groupId: ADMINS, family: 'IPv4', cidr: '10.0.1.0/24' },
  { groupId: ADMINS, family: 'IPv4', cidr: '10.0.0.9' },
  { groupId: ADMINS, family: 'IPv6', cidr: 'fd00::9' },
];

/** The set update that turns the loaded `previous` text into `next`, printed, as the nftables driver loads it; undefined: a whole load. */
function renderSetUpdate(previous: string, next: string): string | undefined {
  const rewrites = setUpdate(parseRuleset(previous)!, parseRuleset(next)!);
  return rewrites && printSetUpdate(rewrites);
}

const render = (policies: PortPolicy__Output[], m: IpSetMember__Output[] = [], conntrack: ConntrackMode = 'bridge', vnis: number[] = [1000]): string =>
  renderRuleset({ policies, members: m, tapOf: tapName, vnis, conntrack });

const cases: Record<string, () => string> = {
  web: () => render([web], members),
  'port-security-off': () => render([policy({ portId: OPEN, portSecurity: false, mac: 'fa:16:3e:cc:00:03', ips: ['10.0.0.8'] })]),
  'allowed-address-pairs': () =>
    render([
      policy({
        portId: DB,
        mac: 'fa:16:3e:bb:00:02',
        ips: ['10.0.0.6', 'fd00::6'],
        allowedAddressPairs: [
          { ip: '10.0.0.100', mac: 'fa:16:3e:bb:00:02' },
          { ip: '10.0.2.0/24', mac: 'fa:16:3e:bb:ff:ff' },
          { ip: 'fd00::100', mac: 'fa:16:3e:bb:00:02' },
        ],
        ingress: [rule({ protocol: '6', portMin: 5432, portMax: 5432, remoteGroupId: WEBGROUP })],
        egress: egressAll,
      }),
    ]),
  ipv6: () =>
    render(
      [
        policy({
          portId: V6,
          mac: 'fa:16:3e:dd:00:04',
          ips: ['fd00::4'],
          ingress: [
            rule({ ethertype: 'IPv6', protocol: '6', portMin: 443, portMax: 443, remoteCidr: '::/0' }),
            rule({ ethertype: 'IPv6', protocol: '58', icmpType: 128, icmpCode: 0, remoteCidr: 'fd00::/64' }),
            rule({ ethertype: 'IPv6', protocol: '6', portMin: 22, portMax: 22, remoteGroupId: ADMINS }),
          ],
          egress: [rule({ ethertype: 'IPv6', protocol: '17', portMin: 53, portMax: 53, remoteCidr: 'fd00::53/128' })],
        }),
      ],
      members,
    ),
  'no-policy': () => render([]),
  'no-rules': () => render([policy({ portId: WEB, mac: 'fa:16:3e:aa:00:01', ips: ['10.0.0.5'] })]),
  // br_netfilter mode: conntrack in the inet family, zones per bridge, ct state as mark bits.
  'web-br-netfilter': () => render([web, policy({ portId: OPEN, portSecurity: false, mac: 'fa:16:3e:cc:00:03', ips: ['10.0.0.8'] })], members, 'br_netfilter', [1000, 66536, 2000]),
  'no-policy-br-netfilter': () => render([], [], 'br_netfilter', []),
};

describe('renderRuleset', () => {
  for (const [name, make] of Object.entries(cases)) {
    it(`renders the ${name} case as in its golden file`, () => {
      expectGolden(name, make());
    });
  }

  it('renders the same text whatever the order of policies, rules and members', () => {
    const shuffled = { ...web, ingress: [...web.ingress].reverse(), egress: [...web.egress].reverse() };
    const other = policy({ portId: DB, ips: ['10.0.0.6'] });
    expect(render([other, shuffled], [...members].reverse())).toBe(render([web, other], members));
  });

  it('drops traffic of every overlay tap that has no policy, and accepts the rest of the bridge', () => {
    const text = render([]);
    expect(text).toContain('iifname "tap*" drop');
    expect(text).toContain('oifname "tap*" drop');
    expect(text).toContain('policy accept;');
  });

  it('closes as well the taps named otherwise that are attached to an overlay bridge, unless they have a policy', () => {
    const text = renderRuleset({ policies: [web], members, tapOf: () => 'vnet0', vnis: [1000], conntrack: 'bridge', namedTaps: ['vnet0', 'vnet1', 'tap0123456789a'] });
    expect(text).toContain('set named_taps {\n\t\ttype ifname\n\t\telements = { "vnet0", "vnet1" }');
    expect(text).toContain('"vnet0" : jump p_');
    const egress = text.slice(text.indexOf('chain vm_egress {')).split('\n\t}')[0].split('\n');
    expect(egress.slice(-3).map((l) => l.trim())).toEqual(['iifname vmap @eg_ports', 'iifname "tap*" drop', 'iifname @named_taps drop']);
    expect(text).toContain('oifname @named_taps drop');
  });

  it('allows everything on a port without port security', () => {
    const text = cases['port-security-off']();
    expect(text).toContain(`"${tapName(OPEN)}" : jump open_eg`);
    expect(text).toContain(`"${tapName(OPEN)}" : jump open_in`);
    expect(text).not.toContain('chain p_');
  });

  it('ends every port chain with drop and starts with the add-delete idiom for both tables', () => {
    const idiom = 'table inet overlay\ndelete table inet overlay\ntable bridge overlay\ndelete table bridge overlay\n';
    const text = cases.web();
    expect(text.startsWith(`${idiom}table bridge overlay {\n`)).toBe(true);
    expect(text.match(/\n\t\tdrop\n\t}/g)).toHaveLength(2);
    expect(cases['web-br-netfilter']().startsWith(`${idiom}table inet overlay {\n`)).toBe(true);
  });

  it('tests ct state natively in bridge mode, and only mark bits set by the inet table in br_netfilter mode', () => {
    const native = cases.web();
    expect(native).toContain('\t\tct state established,related meta mark set meta mark | 0x04000000 accept\n');
    expect(native).not.toContain('table inet overlay {');
    expect(native).toContain('ct zone set meta ibrname map { "br1000" : 1000 }');
    const brnf = cases['web-br-netfilter']();
    const bridgeTable = brnf.slice(brnf.indexOf('table bridge overlay {'));
    expect(bridgeTable).not.toMatch(/\bct\b/);
    expect(bridgeTable).toContain('meta mark & 0x03000000 == 0x01000000 meta mark set meta mark | 0x08000000 accept');
    expect(bridgeTable).toContain('type filter hook prerouting priority 10;');
    expect(bridgeTable).toContain('iifname @vxlans meta mark set meta mark & 0xfcffffff');
    expect(brnf).toContain('ct zone set iifname map { "br1000" : 1000, "br2000" : 2000, "br66536" : 1001 }');
  });

  it('stamps every frame it lets through to or from a tap, and clears the stamps of every frame entering the bridge first', () => {
    for (const text of [cases.web(), cases['web-br-netfilter'](), cases['port-security-off']()]) {
      const bridgeTable = text.slice(text.indexOf('table bridge overlay {'));
      // No plain accept anywhere but in the base chains' policies: every verdict that passes a frame stamps it.
      const accepts = bridgeTable.split('\n').filter((l) => /\baccept\b/.test(l) && !l.includes('policy accept;'));
      expect(accepts.length).toBeGreaterThan(0);
      for (const line of accepts) {
        expect(line).toMatch(/meta mark set meta mark \| 0x0(4|8)000000 accept$/);
      }
      expect(bridgeTable).toMatch(/chain vm_egress \{\n\t\ttype filter hook prerouting priority \d+; policy accept;\n\t\tmeta mark set meta mark & 0xf3ffffff\n/);
    }
    // Egress verdicts stamp egress, ingress verdicts ingress.
    const text = cases.web();
    const chainBody = (name: string) => text.slice(text.indexOf(`chain ${name} {`)).split('\n\t}')[0];
    expect(chainBody('eg_basics')).not.toContain('0x08000000');
    expect(chainBody('in_basics')).not.toContain('0x04000000');
  });

  it('renders a policy it rendered before (kept by object) as it renders a copy never seen, whatever changed around it', () => {
    const other = policy({ portId: DB, ips: ['10.0.0.6'], ingress: [rule({ protocol: '6', portMin: 22, portMax: 22, remoteGroupId: WEBGROUP })] });
    const input = (policies: PortPolicy__Output[], m: IpSetMember__Output[], tapOf = tapName, mode: ConntrackMode = 'br_netfilter') => ({ policies, members: m, tapOf, vnis: [1000], conntrack: mode, portVnis: new Map([[WEB, 1000], [DB, 1000]]) });
    const fresh = (i: ReturnType<typeof input>) => renderFirewall({ ...i, policies: structuredClone(i.policies) });
    const steps = [
      input([web, other], members),
      input([web, other], [...members, { groupId: WEBGROUP, family: 'IPv4', cidr: '10.9.9.9' }]), // a member: the sets and digests naming them
      input([web, other], members.slice(1)),
      input([web], members), // a port gone
      input([web, other], members, (id) => (id === WEB ? 'vnet7' : tapName(id))), // a tap renamed
      input([web, other], [...members, { groupId: 'another-group', family: 'IPv4', cidr: '10.8.8.8' }]), // another group: set names may change
      input([web, other], members, tapName, 'bridge'), // another mode
      input([web, other], members),
    ];
    for (const step of steps) {
      const kept = renderFirewall(step);
      const never = fresh(step);
      expect(kept.text).toBe(never.text);
      expect([...kept.ports]).toEqual([...never.ports]);
    }
  });

  it("gives a tap the same digest in two renders exactly when its filtering is the same", () => {
    const digests = (policies: PortPolicy__Output[], m: IpSetMember__Output[] = members, vnis = [1000], portVnis = new Map([[WEB, 1000], [DB, 1000]])) =>
      renderFirewall({ policies, members: m, tapOf: tapName, vnis, conntrack: 'br_netfilter', portVnis }).ports;
    const other = policy({ portId: DB, ips: ['10.0.0.6'] });
    const base = digests([web, other]);
    expect([...base.keys()].sort()).toEqual([tapName(WEB), tapName(DB)].sort());
    // Unrelated changes leave a tap's digest alone: another port, a set it does not name, a segment.
    expect(digests([web]).get(tapName(WEB))).toBe(base.get(tapName(WEB)));
    expect(digests([web, other], [...members, { groupId: WEBGROUP, family: 'IPv4', cidr: '10.9.9.9' }]).get(tapName(WEB))).toBe(base.get(tapName(WEB)));
    expect(digests([web, other], members, [1000, 2000]).get(tapName(WEB))).toBe(base.get(tapName(WEB)));
    // Its rules, its addresses, the members of a set it names, its zone, its port security change it.
    const changed = [
      digests([{ ...web, ingress: web.ingress.slice(1) }, other]),
      digests([{ ...web, ips: ['10.0.0.55'] }, other]),
      digests([web, other], members.slice(1)),
      digests([web, other], members, [999, 1000], new Map([[WEB, 999], [DB, 1000]])),
      digests([{ ...web, portSecurity: false }, other]),
    ];
    for (const d of changed) {
      expect(d.get(tapName(WEB))).not.toBe(base.get(tapName(WEB)));
      expect(d.get(tapName(DB))).toBe(base.get(tapName(DB)));
    }
  });

  it('gives every segment a stable conntrack zone of its own, never zone 0', () => {
    expect([...conntrackZones([2000, 1000])]).toEqual([
      [1000, 1000],
      [2000, 2000],
    ]);
    // 65536 and 66536 collide with 0 and 1000: the next free zones, by ascending VNI.
    expect([...conntrackZones([66536, 65536, 1000, 1001])]).toEqual([
      [1000, 1000],
      [1001, 1001],
      [65536, 1],
      [66536, 1002],
    ]);
    expect(conntrackZones([3, 1, 2])).toEqual(conntrackZones([1, 2, 3]));
    expect(new Set(conntrackZones(Array.from({ length: 3000 }, (_, i) => 1000 + i * 65536)).values()).size).toBe(3000);
  });

  it('defines an empty set for a group that a rule names but that has no members', () => {
    const text = render([web]);
    expect(text).toMatch(/set g_0000000a0001_4 \{\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\tauto-merge\n\t}/);
  });

  it('turns a change of set members alone into a set update, and anything else into a whole reload', () => {
    const grown = [...members, { groupId: ADMINS, family: 'IPv4', cidr: '10.0.0.42' }];
    const before = render([web], members, 'br_netfilter');
    expect(renderSetUpdate(before, render([web], grown, 'br_netfilter'))).toBe(
      'flush set bridge overlay g_0000000a0001_4\nadd element bridge overlay g_0000000a0001_4 { 10.0.0.42, 10.0.0.9, 10.0.1.0/24, 10.0.1.7 }\n',
    );
    // An emptied set is flushed only (it stays: a rule names it); a set that goes away is a reload.
    expect(renderSetUpdate(before, render([web], members.filter((m) => m.family === 'IPv6'), 'br_netfilter'))).toBe('flush set bridge overlay g_0000000a0001_4\n');
    expect(renderSetUpdate(before, render([web], [], 'br_netfilter'))).toBeUndefined();
    expect(renderSetUpdate(before, before)).toBeUndefined();
    // A new segment changes the zones (rules) too; a new port adds chains.
    expect(renderSetUpdate(before, render([web], grown, 'br_netfilter', [1000, 1001]))).toBeUndefined();
    expect(renderSetUpdate(before, render([web, policy({ portId: DB })], members, 'br_netfilter'))).toBeUndefined();
  });

  it('shares one policy chain between ports with the same rules, so such a port joining, leaving or moving is a set update', () => {
    const twin = { ...web, portId: DB, mac: 'fa:16:3e:bb:00:02', ips: ['10.0.0.6'] };
    const one = render([web], members);
    const two = render([web, twin], members);
    expect(two.match(/^\tchain p_/gm)).toHaveLength(2);
    const lines = (renderSetUpdate(one, two) ?? '').split('\n');
    expect(lines.slice(0, 6)).toEqual([
      'flush set bridge overlay port_macs',
      'add element bridge overlay port_macs { "tap0000000aaa1" . fa:16:3e:aa:00:01, "tap0000000bbb2" . fa:16:3e:bb:00:02 }',
      'flush set bridge overlay port_ips4',
      'add element bridge overlay port_ips4 { "tap0000000aaa1" . 10.0.0.5, "tap0000000bbb2" . 10.0.0.6 }',
      'flush set bridge overlay port_ips6',
      'add element bridge overlay port_ips6 { "tap0000000aaa1" . fe80::f816:3eff:feaa:1, "tap0000000bbb2" . fe80::f816:3eff:febb:2 }',
    ]);
    expect(lines[6]).toBe('flush map bridge overlay eg_ports');
    expect(lines[7]).toMatch(/^add element bridge overlay eg_ports \{ "tap0000000aaa1" : jump (p_[0-9a-f]{16}_eg), "tap0000000bbb2" : jump \1 \}$/);
    expect(lines[8]).toBe('flush map bridge overlay in_ports');
    expect(lines[9]).toMatch(/^add element bridge overlay in_ports \{ "tap0000000aaa1" : jump (p_[0-9a-f]{16}_in), "tap0000000bbb2" : jump \1 \}$/);
    expect(lines.slice(10)).toEqual(['']);
    expect(renderSetUpdate(two, one)).toMatch(/^flush set bridge overlay port_macs\n/);
    // New addresses: only the address sets change.
    const moved = render([web, { ...twin, ips: ['10.0.0.7'] }], members);
    expect(renderSetUpdate(two, moved)).toBe('flush set bridge overlay port_ips4\nadd element bridge overlay port_ips4 { "tap0000000aaa1" . 10.0.0.5, "tap0000000bbb2" . 10.0.0.7 }\n');
    // Other rules: a chain of their own, a whole reload.
    expect(renderSetUpdate(two, render([web, { ...twin, egress: [] }], members))).toBeUndefined();
  });

  it('checks source addresses by one lookup keyed by the tap, leaving out addresses inside a prefix of the same port', () => {
    const text = render([
      policy({
        portId: DB,
        ips: ['10.0.2.5', 'fd00::6'],
        allowedAddressPairs: [
          { ip: '10.0.2.0/24', mac: '' },
          { ip: '10.0.2.0/25', mac: '' },
          { ip: 'fd00::/64', mac: '' },
          { ip: 'fe80::/10', mac: '' },
        ],
      }),
      policy({ portId: WEB, ips: ['10.0.2.5'] }),
    ]);
    expect(text).toContain('elements = { "tap0000000aaa1" . 10.0.2.5, "tap0000000bbb2" . 10.0.2.0/24 }');
    expect(text).toContain('elements = { "tap0000000aaa1" . fe80::f816:3eff:fe00:1, "tap0000000bbb2" . fd00::/64, "tap0000000bbb2" . fe80::/10 }');
    // No anonymous set in a policy chain: their cost grows faster than linearly with their number.
    expect(text.slice(text.indexOf('\tchain p_'))).not.toContain('{ ');
  });

  it('computes the EUI-64 link-local address of a MAC', () => {
    expect(linkLocalOf('fa:16:3e:aa:00:01')).toBe('fe80::f816:3eff:feaa:1');
  });

  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const nft = ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft'].find((p) => existsSync(p));
  (root && nft ? it : it.skip)('loads every golden text with nft -c in a network namespace (root only)', () => {
    const ns = `nftspec${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    const check = (input: string) => execFileSync('ip', ['netns', 'exec', ns, nft as string, '-c', '-f', '-'], { input, stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      // Conntrack in the bridge family needs CONFIG_NF_CONNTRACK_BRIDGE. On a kernel without it
      // every `ct` expression in a bridge table is refused, so the texts of the native mode are
      // checked without those lines; the br_netfilter texts are checked whole.
      let bridgeConntrack = true;
      try {
        check('table bridge nftspec_probe {\n\tchain c {\n\t\tct state established accept\n\t}\n}\n');
      } catch {
        bridgeConntrack = false;
      }
      for (const [name, make] of Object.entries(cases)) {
        const text = bridgeConntrack || name.endsWith('br-netfilter') ? make() : make().replace(/^\t\tct .*\n/gm, '');
        try {
          check(text);
        } catch (e) {
          throw new Error(`${name}: ${(e as { stderr?: Buffer }).stderr?.toString() ?? String(e)}`);
        }
      }
      // For real: the br_netfilter table, then a set update on top of it.
      const nftIn = (input: string, ...args: string[]) => execFileSync('ip', ['netns', 'exec', ns, nft as string, ...args], { input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
      const before = render([web], members, 'br_netfilter');
      nftIn(before, '-f', '-');
      const chains = () => nftIn('', '-a', 'list', 'table', 'bridge', 'overlay').replace(/\tset [\s\S]*?\n\t}\n|\tmap [\s\S]*?\n\t}\n/g, '');
      const handles = chains();
      expect(handles).toMatch(/chain p_[0-9a-f]{16}_in \{ # handle \d+\n\t\tjump in_basics # handle \d+/);
      const grown = render([web], [...members, { groupId: ADMINS, family: 'IPv4', cidr: '10.0.0.42' }], 'br_netfilter');
      nftIn(renderSetUpdate(before, grown) as string, '-f', '-');
      expect(nftIn('', 'list', 'set', 'bridge', 'overlay', 'g_0000000a0001_4')).toContain('10.0.0.42');
      expect(chains()).toBe(handles);
      // A second port with web's rules, then a new address of it: set and map elements only.
      const twin = { ...web, portId: DB, mac: 'fa:16:3e:bb:00:02', ips: ['10.0.0.6'] };
      const joined = render([web, twin], [...members, { groupId: ADMINS, family: 'IPv4', cidr: '10.0.0.42' }], 'br_netfilter');
      nftIn(renderSetUpdate(grown, joined) as string, '-f', '-');
      const moved = render([web, { ...twin, ips: ['10.0.0.7'], allowedAddressPairs: [{ ip: '10.0.3.0/24', mac: '' }] }], [...members, { groupId: ADMINS, family: 'IPv4', cidr: '10.0.0.42' }], 'br_netfilter');
      nftIn(renderSetUpdate(joined, moved) as string, '-f', '-');
      expect(nftIn('', 'list', 'map', 'bridge', 'overlay', 'eg_ports')).toContain(`"${tapName(DB)}" : jump p_`);
      expect(nftIn('', 'list', 'set', 'bridge', 'overlay', 'port_ips4')).toContain(`"${tapName(DB)}" . 10.0.3.0/24`);
      expect(chains()).toBe(handles);
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });
});
