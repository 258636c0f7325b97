import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { FirewallRule__Output } from '../src/generated/overlay/v1/FirewallRule';
import type { IpSetMember__Output } from '../src/generated/overlay/v1/IpSetMember';
import type { PortPolicy__Output } from '../src/generated/overlay/v1/PortPolicy';
import type { FirewallRuleset } from '../src/agent/dataplane/dataplane';
import { ProcessCommandRunner, type CommandRunner } from '../src/agent/dataplane/linux/command-runner';
import { LinuxDataplane } from '../src/agent/dataplane/linux/linux.dataplane';
import { renderRuleset } from '../src/agent/dataplane/linux/nftables';
import { tapName } from '../src/agent/dataplane/names';

/*
 * `node dist/bench/nft-set-updates.js` (root, nft; not part of `npm run bench`): the cost of the
 * firewall's set updates alone. In a throwaway network namespace, the firewall of the agent
 * benchmark's host (1,000 ports, br_netfilter mode, 10 groups of 1,000 members that do not
 * touch each other: 10,000 set elements) is loaded by a LinuxDataplane through the agent's
 * ProcessCommandRunner, then UPDATES texts are applied one after the other, each with one
 * member of one group replaced by an address standing alone (rendered beforehand, not timed).
 * Printed per update: wall time, this process's CPU (applyFirewall: parse, compare, what it
 * sends and reads), the CPU of the commands it ran (nft, and `ip netns exec` in front of each),
 * the loads by kind (overlay_agent_nft_load_seconds), and the warnings logged.
 */

const UPDATES = 100;
const PORTS = 1_000;
const GROUPS = 10;
const MEMBERS = 10_000;

const group = (g: number): string => `019a0000-0000-7000-8000-0000000${String(g).padStart(5, '0')}`;
const port = (n: number): string => `019a0000-0000-7000-9000-0000000${String(n).padStart(5, '0')}`;
const rule = (r: Partial<FirewallRule__Output>): FirewallRule__Output => ({ ethertype: 'IPv4', protocol: 'any', portMin: 0, portMax: 0, icmpType: -1, icmpCode: -1, remoteCidr: '', remoteGroupId: '', ...r });
const hex2 = (n: number): string => (n & 255).toString(16).padStart(2, '0');

const policies: PortPolicy__Output[] = Array.from({ length: PORTS }, (_, n) => {
  const s = Math.floor(n / 10);
  return {
    portId: port(n),
    portSecurity: true,
    mac: `02:01:00:00:${hex2(n >> 8)}:${hex2(n)}`,
    ips: [`10.${s}.0.${(n % 10) + 1}`],
    allowedAddressPairs: [],
    ingress: [rule({ protocol: '6', portMin: 22, portMax: 22, remoteGroupId: group(s % GROUPS) }), rule({ protocol: '6', portMin: 5432, portMax: 5432, remoteGroupId: group((s + 3) % GROUPS) })],
    egress: [rule({ remoteCidr: '0.0.0.0/0' })],
  };
});
// Member i of group i % 10: a group's addresses are 10 apart, so none merges with another.
const members: IpSetMember__Output[] = Array.from({ length: MEMBERS }, (_, i) => ({ groupId: group(i % GROUPS), family: 'IPv4', cidr: `10.${Math.floor(i / 100)}.1.${(i % 100) + 1}` }));
const vnis = Array.from({ length: 100 }, (_, s) => 10_000 + s);
const render = (m: IpSetMember__Output[]): FirewallRuleset => ({ text: renderRuleset({ policies, members: m, tapOf: tapName, vnis, conntrack: 'br_netfilter' }), ports: new Map() });

/** CPU milliseconds of the children waited for (cutime + cstime of /proc/self/stat, at 100 ticks a second). */
function childrenCpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('nft-set-updates: needs root (a network namespace, nft): skipped');
    return;
  }
  const ns = `ovl-bench-nftset-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const real = new ProcessCommandRunner();
    const runner: CommandRunner = { run: (cmd, args, stdin) => real.run('ip', ['netns', 'exec', ns, cmd, ...args], stdin) };
    const warnings: string[] = [];
    const dataplane = new LinuxDataplane(runner, { info: () => undefined, warn: (m) => warnings.push(m) }, { read: () => '1', write: () => undefined });
    await dataplane.applyFirewall(render(members));
    const texts = Array.from({ length: UPDATES }, (_, k) => {
      const m = [...members];
      m[k * 7] = { ...m[k * 7], cidr: `10.200.${k}.1` };
      return render(m);
    });
    const cpu0 = process.cpuUsage();
    const children0 = childrenCpuMs();
    const t0 = performance.now();
    for (const text of texts) {
      await dataplane.applyFirewall(text);
    }
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const children = childrenCpuMs() - children0;
    const [loads] = await Promise.all(dataplane.metrics().map((m) => m.get()));
    const counts = loads.values
      .filter((v) => (v as { metricName?: string }).metricName === 'overlay_agent_nft_load_seconds_count' && v.value > 0)
      .map((v) => `${v.labels.load} ${v.labels.result} ${v.value}`)
      .join(', ');
    const per = (ms: number) => (ms / UPDATES).toFixed(1);
    console.log(`nftables set updates: ${UPDATES} updates of one group member each, firewall of ${PORTS} ports with ${GROUPS} groups of ${MEMBERS / GROUPS} members (br_netfilter mode)`);
    console.log(`  per update: wall ${per(wall)} ms; applyFirewall CPU ${per((cpu.user + cpu.system) / 1000)} ms; commands' CPU ${per(children)} ms`);
    console.log(`  loads (with the first, whole): ${counts}; warnings: ${warnings.length ? warnings.join(' | ') : 'none'}`);
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
