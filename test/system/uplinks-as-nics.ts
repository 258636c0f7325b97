import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Hypervisor, Topology } from './topology';

/** Rewrites `ip -d -j link show`: the veths named in argv[3] (comma-separated) lose their linkinfo. */
const AS_NICS_SCRIPT = `
const { execFileSync } = require('child_process');
const [ip, names] = [process.argv[2], new Set(process.argv[3].split(','))];
let out;
try {
  out = execFileSync(ip, ['-d', '-j', 'link', 'show'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
} catch (e) {
  process.exit(typeof e.status === 'number' ? e.status : 1);
}
const links = JSON.parse(out);
for (const link of links) {
  if (names.has(link.ifname) && link.linkinfo && link.linkinfo.info_kind === 'veth') {
    delete link.linkinfo;
  }
}
process.stdout.write(JSON.stringify(links));
`;

/**
 * The agent's inventory leaves veths out (a VM's or a container's veth is no uplink, and a host
 * has hundreds), yet in a namespace a hypervisor's uplinks can only be veths: this kernel has no
 * dummy, netdevsim or other device that passes packets and has no link kind. This writes an
 * `ip` for one agent's PATH that shows the hypervisor's uplinks (`hv.uplinks`) as plain Ethernet
 * devices, as NICs look, in `ip -d -j link show` (the one command the inventory reads kinds
 * from) and runs every other `ip` command unchanged: their carrier, addresses, routes and the
 * LLDP heard on them stay the kernel's. Returns the agent's environment (its PATH).
 */
export function uplinksAsNics(topology: Topology, hv: Hypervisor): Record<string, string> {
  const realIp = execFileSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).trim();
  const dir = join(topology.dir, `uplinks-as-nics-${hv.name}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'as-nics.js'), AS_NICS_SCRIPT);
  writeFileSync(
    join(dir, 'ip'),
    `#!/bin/sh
if [ "$*" = "-d -j link show" ]; then
  exec "${process.execPath}" "${join(dir, 'as-nics.js')}" "${realIp}" "${hv.uplinks.join(',')}"
fi
exec "${realIp}" "$@"
`,
  );
  chmodSync(join(dir, 'ip'), 0o755);
  return { PATH: `${dir}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` };
}
