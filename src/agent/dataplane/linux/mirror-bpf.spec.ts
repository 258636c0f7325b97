import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { MirrorDirection, MirrorMatch } from '../dataplane';
import { DROP_ALL_PROGRAM, MATCH_ALL_PROGRAM, mirrorProgram, programIfindex } from './mirror-bpf';
import { expectGoldenFile } from '../../../../test/support/golden';

/**
 * The golden file __golden__/mirror-bpf.txt holds the program of each case; after an intended
 * change, regenerate with `OVERLAY_UPDATE_GOLDEN=1 npx jest src/agent/dataplane/linux/mirror-bpf.spec.ts`
 * and review the diff. As root, the programs also run for real: in a throwaway network
 * namespace, pings through a veth pair are counted by the mirror actions' statistics.
 */
const ANY: MirrorMatch = { ethertype: '', protocol: 0, remoteCidr: '' };
const cases: [string, MirrorMatch, MirrorDirection, number?][] = [
  ['everything the VM sends', ANY, 'egress'],
  ['everything the VM receives, tap ifindex 7', ANY, 'ingress', 7],
  ['IPv4 the VM sends', { ethertype: 'IPv4', protocol: 0, remoteCidr: '' }, 'egress'],
  ['ICMP the VM sends to 10.77.0.1', { ethertype: 'IPv4', protocol: 1, remoteCidr: '10.77.0.1/32' }, 'egress'],
  ['TCP the VM receives from 10.0.0.0/8, ifindex 42', { ethertype: 'IPv4', protocol: 6, remoteCidr: '10.0.0.0/8' }, 'ingress', 42],
  ['IPv4 the VM sends to 0.0.0.0/0', { ethertype: 'IPv4', protocol: 0, remoteCidr: '0.0.0.0/0' }, 'egress'],
  ['IPv6 UDP the VM sends to fd00:1:2::/48', { ethertype: 'IPv6', protocol: 17, remoteCidr: 'fd00:1:2::/48' }, 'egress'],
  ['IPv6 the VM receives from 2001:db8::1/128, ifindex 3', { ethertype: 'IPv6', protocol: 0, remoteCidr: '2001:db8::1/128' }, 'ingress', 3],
  ['IPv6 the VM receives from ::ffff:10.0.0.0/100', { ethertype: 'IPv6', protocol: 0, remoteCidr: '::ffff:10.0.0.0/100' }, 'ingress'],
];

describe('mirrorProgram', () => {
  it('renders every case as in its golden file', () => {
    const text = cases.map(([name, match, direction, ifindex]) => `# ${name}\n${mirrorProgram(match, direction, ifindex)}\n`).join('');
    expectGoldenFile(join(__dirname, '__golden__', 'mirror-bpf.txt'), text);
  });

  it('is a well-formed program: its count, every jump inside it, ending in match then no match', () => {
    for (const [, match, direction, ifindex] of cases) {
      const [count, ...insns] = mirrorProgram(match, direction, ifindex).split(',');
      expect(insns).toHaveLength(Number(count));
      insns.forEach((insn, i) => {
        const [code, jt, jf] = insn.split(' ').map(Number);
        if (code === 0x15) {
          expect(i + 1 + jt).toBeLessThan(insns.length);
          expect(i + 1 + jf).toBe(insns.length - 1);
        }
      });
      expect(insns.slice(-2)).toEqual(['6 0 0 4294967295', '6 0 0 0']);
    }
  });

  it('checks the ifindex first, and reads it back', () => {
    const insns = mirrorProgram(ANY, 'ingress', 42)
      .split(',')
      .slice(1)
      .map((i) => i.split(' ').map(Number))
      .map(([code, jt, jf, k]) => ({ code, jt, jf, k }));
    expect(programIfindex(insns)).toBe(42);
    expect(programIfindex([{ code: 6, jt: 0, jf: 0, k: 0 }])).toBeUndefined();
  });

  it('refuses a malformed match', () => {
    expect(() => mirrorProgram({ ethertype: '', protocol: 6, remoteCidr: '' }, 'egress')).toThrow('a protocol or remote CIDR needs an ethertype');
    expect(() => mirrorProgram({ ethertype: 'IPv4', protocol: 0, remoteCidr: 'fd00::/8' }, 'egress')).toThrow('is not an IPv4 prefix');
    expect(() => mirrorProgram({ ethertype: 'IPv4', protocol: 0, remoteCidr: '10.0.0.0/33' }, 'egress')).toThrow('is not a prefix');
    expect(() => mirrorProgram({ ethertype: 'IPv4', protocol: 300, remoteCidr: '' }, 'egress')).toThrow('protocol 300 out of range');
  });

  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  (root ? it : it.skip)('copies exactly the frames that match, in both directions, behind a pref-1 filter that goes on (root only)', () => {
    // Host namespace: the "tap" (tapsrc) and the mirror target (mirtgt); VM namespace: vmsrc, 10.77.0.2.
    const host = `mxbpfh${process.pid}`;
    const vm = `mxbpfv${process.pid}`;
    const sh = (ns: string, ...args: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }).toString();
    execFileSync('ip', ['netns', 'add', host]);
    execFileSync('ip', ['netns', 'add', vm]);
    try {
      sh(host, 'ip', 'link', 'add', 'tapsrc', 'type', 'veth', 'peer', 'name', 'vmsrc');
      sh(host, 'ip', 'link', 'set', 'vmsrc', 'netns', vm);
      sh(host, 'ip', 'link', 'add', 'mirtgt', 'type', 'veth', 'peer', 'name', 'mirpeer');
      for (const dev of ['lo', 'tapsrc', 'mirtgt', 'mirpeer']) {
        sh(host, 'ip', 'link', 'set', dev, 'up');
      }
      sh(host, 'ip', 'addr', 'add', '10.77.0.1/24', 'dev', 'tapsrc');
      sh(vm, 'ip', 'link', 'set', 'lo', 'up');
      sh(vm, 'ip', 'link', 'set', 'vmsrc', 'up');
      sh(vm, 'ip', 'addr', 'add', '10.77.0.2/24', 'dev', 'vmsrc');
      const ifindex = (JSON.parse(sh(host, 'ip', '-j', 'link', 'show', 'tapsrc')) as { ifindex: number }[])[0].ifindex;
      const filters: [string, string, MirrorMatch, MirrorDirection][] = [
        ['01', 'dev tapsrc ingress', { ethertype: 'IPv4', protocol: 1, remoteCidr: '10.77.0.1/32' }, 'egress'],
        ['02', 'dev tapsrc ingress', { ethertype: 'IPv4', protocol: 6, remoteCidr: '' }, 'egress'],
        ['03', 'dev tapsrc ingress', { ethertype: 'IPv4', protocol: 1, remoteCidr: '10.78.0.0/16' }, 'egress'],
        ['04', 'block 4701 egress', { ethertype: 'IPv4', protocol: 1, remoteCidr: '10.77.0.0/24' }, 'ingress'],
        ['05', 'block 4701 egress', { ethertype: 'IPv6', protocol: 17, remoteCidr: 'fd00::/8' }, 'ingress'],
      ];
      const lines = [
        'qdisc add dev tapsrc egress_block 4701 clsact',
        // Stands for the gate letting a stamped frame on (TC_ACT_UNSPEC).
        'filter add block 4701 egress pref 1 handle 1 bpf da bytecode "1,6 0 0 4294967295"',
        ...filters.map(([cookie, where, match, direction], i) => `filter add ${where} pref ${49152 + i} handle 1 bpf bytecode "${mirrorProgram(match, direction, direction === 'ingress' ? ifindex : undefined)}" action mirred egress mirror dev mirtgt continue cookie ${cookie}`),
        // Another tap's filter in the shared block: its ifindex never matches.
        `filter add block 4701 egress pref 49200 handle 1 bpf bytecode "${mirrorProgram(ANY, 'ingress', ifindex + 1000)}" action mirred egress mirror dev mirtgt continue cookie 06`,
      ];
      execFileSync('ip', ['netns', 'exec', host, 'tc', '-batch', '-'], { input: lines.join('\n') + '\n', stdio: ['pipe', 'pipe', 'pipe'] });
      sh(vm, 'ping', '-c', '5', '-i', '0.2', '-W', '2', '10.77.0.1');
      type Listing = { options?: { actions?: { cookie?: string; stats?: { packets?: number } }[] } }[];
      const counts = new Map<string, number>();
      for (const where of [['dev', 'tapsrc', 'ingress'], ['block', '4701', 'egress']]) {
        for (const f of JSON.parse(sh(host, 'tc', '-j', '-s', 'filter', 'show', ...where)) as Listing) {
          const a = f.options?.actions?.[0];
          if (a?.cookie) {
            counts.set(a.cookie, a.stats?.packets ?? 0);
          }
        }
      }
      // 5 requests sent, 5 replies received; no TCP, nothing to 10.78/16, no IPv6 UDP, not the other tap.
      expect(Object.fromEntries(counts)).toEqual({ '01': 5, '02': 0, '03': 0, '04': 5, '05': 0, '06': 0 });
    } finally {
      execFileSync('ip', ['netns', 'del', host]);
      execFileSync('ip', ['netns', 'del', vm]);
    }
  });
});

describe('fixed programs', () => {
  it('match all (a sink redirect) and drop all (an analyzer, direct action)', () => {
    expect(MATCH_ALL_PROGRAM).toBe('1,6 0 0 4294967295');
    expect(DROP_ALL_PROGRAM).toBe('1,6 0 0 2');
  });
});
