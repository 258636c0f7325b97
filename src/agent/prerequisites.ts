import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { ConntrackSetting } from './config';

/**
 * What the Linux dataplane needs of its host, checked at start before anything is changed,
 * without root and without running anything: files only (PATH, /sys/module, the kernel's
 * config, /lib/modules, /proc/sys/net/bridge, /proc/self/status). Every missing piece is one
 * line saying what and how to get it; the agent prints them all and exits with
 * PREREQUISITES_EXIT_CODE (the systemd unit does not restart it for that). What cannot be told
 * from files (bridge conntrack when the kernel's config is not readable, `nft` refusing to run)
 * is still found by the dataplane's own probes at start (LinuxDataplane.prepareFirewall).
 */
export const PREREQUISITES_EXIT_CODE = 69; // sysexits' EX_UNAVAILABLE: a support program or file does not exist

/** Where the check looks. main.ts passes the process's own; unit specs a fake tree. */
export interface PrerequisiteSources {
  /** The PATH the agent's commands are found in (as spawn does). */
  path: string;
  /** The root `sys/`, `proc/`, `boot/` and `lib/modules/` are read under (OVERLAY_SYSFS_ROOT; `/` on a host). */
  root: string;
  /** The running kernel's release (`uname -r`), naming /boot/config-<release> and /lib/modules/<release>. */
  release: string;
  /** The process's effective uid: root needs no ambient capability for its children. */
  euid: number;
}

/** What this configuration uses: the firewall brings nftables, conntrack and the tc gate. */
export interface PrerequisiteNeeds {
  firewall: boolean;
  conntrack: ConntrackSetting;
}

export interface PrerequisiteReport {
  /** One line per missing piece: what is missing, then how to get it. Empty: the agent can start. */
  missing: string[];
  /** Kernel features that could not be told from files (neither loaded nor in a readable config): the start goes on. */
  unknown: string[];
}

/** A program the agent runs, and where it comes from. */
interface Program {
  name: string;
  packageName: string;
  firewallOnly: boolean;
}

const PROGRAMS: Program[] = [
  { name: 'ip', packageName: 'iproute2', firewallOnly: false },
  { name: 'bridge', packageName: 'iproute2', firewallOnly: false },
  { name: 'tc', packageName: 'iproute2', firewallOnly: false },
  { name: 'nft', packageName: 'nftables', firewallOnly: true },
  // Debian and Ubuntu call the package conntrack, Fedora and RHEL conntrack-tools.
  { name: 'conntrack', packageName: 'conntrack (conntrack-tools)', firewallOnly: true },
];

/** A kernel feature: its module (as /sys/module and /lib/modules name it) and its config symbol. */
interface KernelFeature {
  what: string;
  module: string;
  config: string;
  firewallOnly: boolean;
}

const KERNEL_FEATURES: KernelFeature[] = [
  { what: 'VXLAN', module: 'vxlan', config: 'CONFIG_VXLAN', firewallOnly: false },
  { what: 'the Linux bridge', module: 'bridge', config: 'CONFIG_BRIDGE', firewallOnly: false },
  { what: 'nftables', module: 'nf_tables', config: 'CONFIG_NF_TABLES', firewallOnly: true },
  // The tc gate: a clsact qdisc (sch_ingress) with a classic BPF filter (cls_bpf) on every tap.
  { what: 'the clsact qdisc', module: 'sch_ingress', config: 'CONFIG_NET_SCH_INGRESS', firewallOnly: true },
  { what: 'the BPF classifier', module: 'cls_bpf', config: 'CONFIG_NET_CLS_BPF', firewallOnly: true },
];

const BRIDGE_CONNTRACK: KernelFeature = { what: 'bridge conntrack', module: 'nf_conntrack_bridge', config: 'CONFIG_NF_CONNTRACK_BRIDGE', firewallOnly: true };
/** Exists once br_netfilter is loaded (per network namespace). */
const BR_NETFILTER_SWITCH = 'proc/sys/net/bridge/bridge-nf-call-iptables';
const CAP_NET_ADMIN = 12n;

export function checkPrerequisites(needs: PrerequisiteNeeds, sources: PrerequisiteSources): PrerequisiteReport {
  const missing: string[] = [];
  const unknown: string[] = [];
  const noFirewall = needs.firewall ? ', or run without the firewall (OVERLAY_FIREWALL=0)' : '';

  missing.push(...capabilityProblems(sources));

  for (const program of PROGRAMS.filter((p) => needs.firewall || !p.firewallOnly)) {
    if (!onPath(program.name, sources.path)) {
      missing.push(`\`${program.name}\` is not in PATH (${sources.path}): install ${program.packageName}${program.firewallOnly ? noFirewall : ''}`);
    }
  }

  const kernel = new KernelEvidence(sources.root, sources.release);
  for (const feature of KERNEL_FEATURES.filter((f) => needs.firewall || !f.firewallOnly)) {
    const has = kernel.has(feature);
    if (has === 'absent') {
      missing.push(`the kernel lacks ${feature.what} (${feature.config}, module ${feature.module}; ${kernel.source}): use a kernel built with it${feature.firewallOnly ? noFirewall : ''}`);
    } else if (has === 'unknown') {
      unknown.push(`${feature.what} (${feature.config})`);
    }
  }

  if (needs.firewall) {
    const brNetfilter = existsSync(join(sources.root, BR_NETFILTER_SWITCH));
    const loadBrNetfilter = 'load br_netfilter (`modprobe br_netfilter`, and `echo br_netfilter > /etc/modules-load.d/br_netfilter.conf` for the next boots)';
    const bridgeConntrack = () => kernel.has(BRIDGE_CONNTRACK);
    if (needs.conntrack === 'br_netfilter' && !brNetfilter) {
      missing.push(`br_netfilter is not loaded (no /${BR_NETFILTER_SWITCH}), and OVERLAY_CONNTRACK=br_netfilter needs it: ${loadBrNetfilter}`);
    } else if (needs.conntrack === 'bridge' && bridgeConntrack() === 'absent') {
      missing.push(`the kernel has no bridge conntrack (CONFIG_NF_CONNTRACK_BRIDGE; ${kernel.source}), and OVERLAY_CONNTRACK=bridge needs it: use a kernel built with it, or OVERLAY_CONNTRACK=br_netfilter and ${loadBrNetfilter}`);
    } else if (needs.conntrack === 'auto' && !brNetfilter && bridgeConntrack() === 'absent') {
      missing.push(`the firewall has no connection tracking: the kernel has no bridge conntrack (CONFIG_NF_CONNTRACK_BRIDGE; ${kernel.source}) and br_netfilter is not loaded (no /${BR_NETFILTER_SWITCH}): ${loadBrNetfilter}${noFirewall}`);
    }
  }
  return { missing, unknown };
}

/**
 * The agent's commands (ip, bridge, tc, nft, conntrack) need CAP_NET_ADMIN, and so does writing
 * br_netfilter's switches under /proc/sys/net/bridge (the kernel gives a holder of CAP_NET_ADMIN
 * root's access to its network namespace's sysctls). A non-root process passes a capability to
 * the programs it runs only when it is ambient (AmbientCapabilities= in the unit). Nothing when
 * /proc/self/status cannot be read.
 */
function capabilityProblems(sources: PrerequisiteSources): string[] {
  const status = readText(join(sources.root, 'proc/self/status'));
  const capability = (set: string): boolean | undefined => {
    const hex = status?.match(new RegExp(`^${set}:\\s*([0-9a-f]+)$`, 'm'))?.[1];
    return hex === undefined ? undefined : ((BigInt(`0x${hex}`) >> CAP_NET_ADMIN) & 1n) === 1n;
  };
  const howToRun = 'run it as root, or as its own user with AmbientCapabilities=CAP_NET_ADMIN (deploy/systemd/overlay-agent.service)';
  if (capability('CapEff') === false) {
    return [`the process lacks CAP_NET_ADMIN (uid ${sources.euid}): ${howToRun}`];
  }
  if (sources.euid !== 0 && capability('CapAmb') === false) {
    return [`CAP_NET_ADMIN is not ambient (uid ${sources.euid}), so ip, tc, nft and conntrack would run without it: ${howToRun}`];
  }
  return [];
}

/** Whether `name` is an executable file in one of `path`'s directories (empty entries skipped, as the current directory would be a surprise). */
function onPath(name: string, path: string): boolean {
  return path
    .split(delimiter)
    .filter((dir) => dir.startsWith('/'))
    .some((dir) => {
      const file = join(dir, name);
      try {
        accessSync(file, constants.X_OK);
        return statSync(file).isFile();
      } catch {
        return false;
      }
    });
}

/**
 * What files say of the kernel's features, best first: the module is loaded or built in
 * (/sys/module/<module>: built-in ones show there when they have parameters or a version);
 * else the kernel's config (/proc/config.gz, else /boot/config-<release>: `=y` built in, `=m`
 * loaded on first use, as the kernel does for VXLAN, bridge, nftables and tc modules); else
 * /lib/modules/<release>'s modules.builtin and modules.dep. `unknown` when none is readable.
 */
class KernelEvidence {
  private config?: Map<string, string>;
  private modules?: Set<string>;
  /** Where the answer of `has` comes from, for messages. */
  readonly source: string;

  constructor(
    private readonly root: string,
    release: string,
  ) {
    const procConfig = join(root, 'proc/config.gz');
    const bootConfig = join(root, 'boot', `config-${release}`);
    const modulesDir = join(root, 'lib/modules', release);
    const gzipped = readBytes(procConfig);
    const text = gzipped ? gunzipText(gzipped) : readText(bootConfig);
    if (text !== undefined) {
      this.config = new Map([...text.matchAll(/^(CONFIG_\w+)=(.*)$/gm)].map((m) => [m[1], m[2]]));
      this.source = `not in ${gzipped ? '/proc/config.gz' : `/boot/config-${release}`}`;
    } else if (existsSync(modulesDir)) {
      this.modules = new Set(['modules.builtin', 'modules.dep'].flatMap((file) => moduleNames(readText(join(modulesDir, file)) ?? '')));
      this.source = `neither built in nor in /lib/modules/${release}`;
    } else {
      this.source = 'the kernel config is not readable';
    }
  }

  has(feature: KernelFeature): 'present' | 'absent' | 'unknown' {
    if (existsSync(join(this.root, 'sys/module', feature.module))) {
      return 'present';
    }
    if (this.config) {
      return ['y', 'm'].includes(this.config.get(feature.config) ?? '') ? 'present' : 'absent';
    }
    if (this.modules) {
      return this.modules.has(feature.module) ? 'present' : 'absent';
    }
    return 'unknown';
  }
}

/** Module names in modules.builtin or modules.dep (`kernel/drivers/net/vxlan/vxlan.ko.zst: ...`), `-` read as `_` as the kernel does. */
function moduleNames(text: string): string[] {
  return [...text.matchAll(/([^/\s:]+)\.ko(?:\.\w+)?(?=:|$)/gm)].map((m) => m[1].replace(/-/g, '_'));
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function readBytes(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

function gunzipText(bytes: Buffer): string | undefined {
  try {
    return gunzipSync(bytes).toString('utf8');
  } catch {
    return undefined;
  }
}

