import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { checkPrerequisites, type PrerequisiteNeeds, type PrerequisiteSources } from './prerequisites';

const RELEASE = '6.1.0-test';
const PROGRAMS = ['ip', 'bridge', 'tc', 'nft', 'conntrack'];
const MODULES = ['vxlan', 'bridge', 'nf_tables', 'sch_ingress', 'cls_bpf'];
/** /proc/self/status capability lines: CAP_NET_ADMIN is bit 12 (0x1000). */
const ROOT_STATUS = 'Name:\tnode\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\n';
const AMBIENT_STATUS = 'CapInh:\t0000000000001000\nCapPrm:\t0000000000001000\nCapEff:\t0000000000001000\nCapAmb:\t0000000000001000\n';
const FIREWALL: PrerequisiteNeeds = { firewall: true, conntrack: 'auto' };

/**
 * A fake host: `root` holds sys/, proc/, boot/ and lib/modules/ as the check reads them, `bin`
 * the programs on PATH. `healthyHost` has everything a firewalled agent needs, as root; each
 * test takes one piece away (or changes how the kernel tells it).
 */
describe('checkPrerequisites', () => {
  let root: string;
  let bin: string;
  let sources: PrerequisiteSources;
  const write = (path: string, content: string | Buffer, mode = 0o644): void => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
    chmodSync(join(root, path), mode);
  };
  const remove = (path: string): void => rmSync(join(root, path), { recursive: true, force: true });
  const check = (needs: PrerequisiteNeeds = FIREWALL) => checkPrerequisites(needs, sources);

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'overlay-prerequisites-'));
    bin = join(root, 'usr/sbin');
    for (const program of PROGRAMS) {
      write(`usr/sbin/${program}`, '#!/bin/sh\n', 0o755);
    }
    for (const module of MODULES) {
      mkdirSync(join(root, 'sys/module', module), { recursive: true });
    }
    write('proc/sys/net/bridge/bridge-nf-call-iptables', '1\n');
    write('proc/self/status', ROOT_STATUS);
    sources = { path: `/nonexistent:${bin}`, root, release: RELEASE, euid: 0 };
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('finds nothing missing on a host that has everything', () => {
    expect(check()).toEqual({ missing: [], unknown: [] });
  });

  describe('programs', () => {
    it.each([
      ['ip', 'iproute2'],
      ['bridge', 'iproute2'],
      ['tc', 'iproute2'],
      ['nft', 'nftables'],
      ['conntrack', 'conntrack (conntrack-tools)'],
    ])('says once that %s is missing and which package brings it', (program, packageName) => {
      remove(`usr/sbin/${program}`);
      const { missing } = check();
      expect(missing).toEqual([`\`${program}\` is not in PATH (/nonexistent:${bin}): install ${packageName}${['nft', 'conntrack'].includes(program) ? ', or run without the firewall (OVERLAY_FIREWALL=0)' : ''}`]);
    });

    it('does not count a file that is not executable, nor a directory', () => {
      chmodSync(join(bin, 'nft'), 0o644);
      remove('usr/sbin/tc');
      mkdirSync(join(bin, 'tc'));
      expect(check().missing.map((line) => line.split(' ')[0])).toEqual(['`tc`', '`nft`']);
    });

    it('finds them in any directory of PATH, and ignores relative entries', () => {
      remove('usr/sbin/ip');
      write('opt/bin/ip', '#!/bin/sh\n', 0o755);
      sources.path = `${bin}::${join(root, 'opt/bin')}`;
      expect(check().missing).toEqual([]);
      sources.path = `${bin}:.:opt/bin`;
      expect(check().missing).toHaveLength(1);
    });

    it('needs neither nft nor conntrack without the firewall', () => {
      remove('usr/sbin/nft');
      remove('usr/sbin/conntrack');
      expect(check({ firewall: false, conntrack: 'auto' }).missing).toEqual([]);
    });
  });

  describe('kernel features', () => {
    const config = (lines: string[]): Buffer => gzipSync(lines.join('\n') + '\n');
    const ALL = ['CONFIG_VXLAN=y', 'CONFIG_BRIDGE=m', 'CONFIG_NF_TABLES=m', 'CONFIG_NET_SCH_INGRESS=m', 'CONFIG_NET_CLS_BPF=m', 'CONFIG_NF_CONNTRACK_BRIDGE=m'];
    beforeEach(() => remove('sys/module'));

    it('reads /proc/config.gz when the modules are not loaded: built in or a module both count', () => {
      write('proc/config.gz', config(ALL));
      expect(check()).toEqual({ missing: [], unknown: [] });
    });

    it('says which feature the config lacks, one line each', () => {
      write('proc/config.gz', config(['# CONFIG_VXLAN is not set', ...ALL.slice(1, 4)]));
      expect(check().missing).toEqual([
        'the kernel lacks VXLAN (CONFIG_VXLAN, module vxlan; not in /proc/config.gz): use a kernel built with it',
        'the kernel lacks the BPF classifier (CONFIG_NET_CLS_BPF, module cls_bpf; not in /proc/config.gz): use a kernel built with it, or run without the firewall (OVERLAY_FIREWALL=0)',
      ]);
    });

    it('takes a loaded module over the config', () => {
      write('proc/config.gz', config(ALL.slice(1)));
      mkdirSync(join(root, 'sys/module/vxlan'), { recursive: true });
      expect(check().missing).toEqual([]);
    });

    it('reads /boot/config-<release> when /proc/config.gz is absent', () => {
      write(`boot/config-${RELEASE}`, ALL.slice(1).join('\n'));
      expect(check().missing).toEqual([`the kernel lacks VXLAN (CONFIG_VXLAN, module vxlan; not in /boot/config-${RELEASE}): use a kernel built with it`]);
    });

    it('reads modules.builtin and modules.dep when no config is readable', () => {
      write(`lib/modules/${RELEASE}/modules.builtin`, 'kernel/net/bridge/bridge.ko\nkernel/net/sched/sch_ingress.ko\n');
      write(`lib/modules/${RELEASE}/modules.dep`, 'kernel/drivers/net/vxlan/vxlan.ko.zst: kernel/net/ipv4/udp_tunnel.ko.zst\nkernel/net/ipv4/udp_tunnel.ko.zst:\nkernel/net/netfilter/nf_tables.ko.xz: kernel/net/netfilter/nfnetlink.ko.xz\n');
      expect(check().missing).toEqual([`the kernel lacks the BPF classifier (CONFIG_NET_CLS_BPF, module cls_bpf; neither built in nor in /lib/modules/${RELEASE}): use a kernel built with it, or run without the firewall (OVERLAY_FIREWALL=0)`]);
    });

    it('reports what it cannot tell as unknown, not missing', () => {
      expect(check()).toEqual({ missing: [], unknown: ['VXLAN (CONFIG_VXLAN)', 'the Linux bridge (CONFIG_BRIDGE)', 'nftables (CONFIG_NF_TABLES)', 'the clsact qdisc (CONFIG_NET_SCH_INGRESS)', 'the BPF classifier (CONFIG_NET_CLS_BPF)'] });
    });
  });

  describe("the firewall's connection tracking", () => {
    const withConfig = (bridgeConntrack: boolean): void =>
      write('proc/config.gz', gzipSync(`CONFIG_VXLAN=y\n${bridgeConntrack ? 'CONFIG_NF_CONNTRACK_BRIDGE=y' : '# CONFIG_NF_CONNTRACK_BRIDGE is not set'}\n`));

    it('auto: br_netfilter loaded is enough', () => {
      withConfig(false);
      expect(check().missing).toEqual([]);
    });

    it('auto: bridge conntrack in the kernel is enough', () => {
      withConfig(true);
      remove('proc/sys/net/bridge');
      expect(check().missing).toEqual([]);
    });

    it('auto: neither is one line saying how to load br_netfilter', () => {
      withConfig(false);
      remove('proc/sys/net/bridge');
      expect(check().missing).toEqual([
        'the firewall has no connection tracking: the kernel has no bridge conntrack (CONFIG_NF_CONNTRACK_BRIDGE; not in /proc/config.gz) and br_netfilter is not loaded (no /proc/sys/net/bridge/bridge-nf-call-iptables): load br_netfilter (`modprobe br_netfilter`, and `echo br_netfilter > /etc/modules-load.d/br_netfilter.conf` for the next boots), or run without the firewall (OVERLAY_FIREWALL=0)',
      ]);
      expect(check({ firewall: false, conntrack: 'auto' }).missing).toEqual([]);
    });

    it('auto: leaves the question to the start probe when the kernel config cannot be read', () => {
      remove('proc/sys/net/bridge');
      expect(check().missing).toEqual([]);
    });

    it('br_netfilter: needs the module whatever the kernel has', () => {
      withConfig(true);
      remove('proc/sys/net/bridge');
      expect(check({ firewall: true, conntrack: 'br_netfilter' }).missing).toEqual([expect.stringMatching(/^br_netfilter is not loaded \(no \/proc\/sys\/net\/bridge\/bridge-nf-call-iptables\), and OVERLAY_CONNTRACK=br_netfilter needs it: load br_netfilter/)]);
    });

    it('bridge: needs CONFIG_NF_CONNTRACK_BRIDGE whatever br_netfilter does', () => {
      withConfig(false);
      expect(check({ firewall: true, conntrack: 'bridge' }).missing).toEqual([expect.stringMatching(/^the kernel has no bridge conntrack \(CONFIG_NF_CONNTRACK_BRIDGE; not in \/proc\/config.gz\), and OVERLAY_CONNTRACK=bridge needs it/)]);
      withConfig(true);
      expect(check({ firewall: true, conntrack: 'bridge' }).missing).toEqual([]);
    });
  });

  describe('CAP_NET_ADMIN', () => {
    it('is enough as root without ambient capabilities', () => {
      expect(check().missing).toEqual([]);
    });

    it('is enough for another user when it is ambient', () => {
      write('proc/self/status', AMBIENT_STATUS);
      sources.euid = 65534;
      expect(check().missing).toEqual([]);
    });

    it('is missing without it in the effective set', () => {
      write('proc/self/status', 'CapEff:\t0000000000000000\nCapAmb:\t0000000000000000\n');
      sources.euid = 65534;
      expect(check().missing).toEqual(['the process lacks CAP_NET_ADMIN (uid 65534): run it as root, or as its own user with AmbientCapabilities=CAP_NET_ADMIN (deploy/systemd/overlay-agent.service)']);
    });

    it('is not passed on to the commands when it is effective but not ambient for another user', () => {
      write('proc/self/status', 'CapEff:\t0000000000001000\nCapAmb:\t0000000000000000\n');
      sources.euid = 65534;
      expect(check().missing).toEqual([expect.stringMatching(/^CAP_NET_ADMIN is not ambient \(uid 65534\), so ip, tc, nft and conntrack would run without it/)]);
    });

    it('is not judged when /proc/self/status cannot be read', () => {
      remove('proc/self');
      sources.euid = 65534;
      expect(check().missing).toEqual([]);
    });
  });
});
