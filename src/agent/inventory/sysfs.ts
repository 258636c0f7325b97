import { readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ObservedNic } from '../../controller/model/observed-inventory';

const PCI_ADDRESS_RE = /^([0-9a-f]{4}:[0-9a-f]{2}):[0-9a-f]{2}\.[0-7]$/i;

/**
 * What sysfs (and procfs, for the routing setting) says of a NIC under `sysRoot` (`/` on a host; a fake tree in tests):
 * `sys/class/net/<if>/device` (the PCI address is the basename of its target when it looks like
 * dddd:bb:dd.f; the bus is its dddd:bb), `device/driver` (the driver is the basename of its
 * target) and `device/numa_node` (-1 or unreadable: null). Null when the link has no device (a
 * virtual link). Reads only; never throws.
 */
export function readNic(sysRoot: string, ifname: string): ObservedNic | null {
  if (ifname.includes('/') || ifname === '.' || ifname === '..') {
    return null;
  }
  const device = join(sysRoot, 'sys/class/net', ifname, 'device');
  const target = link(device);
  if (target === null) {
    return null;
  }
  const address = basename(target);
  const pci = PCI_ADDRESS_RE.exec(address);
  const driverTarget = link(join(device, 'driver'));
  const numa = text(join(device, 'numa_node'));
  const numaNode = numa !== null && /^\d+$/.test(numa) ? Number(numa) : null;
  return {
    driver: driverTarget === null ? null : basename(driverTarget),
    pciAddress: pci ? address.toLowerCase() : null,
    pciBus: pci ? pci[1].toLowerCase() : null,
    numaNode: numaNode !== null && numaNode <= 65_535 ? numaNode : null,
    ignoreRoutesWithLinkdown: ignoresLinkdownRoutes(sysRoot, ifname),
  };
}

/**
 * The IPv4 `ignore_routes_with_linkdown` in force for routes over `ifname`, under `root`'s
 * `proc/sys/net/ipv4/conf`: the kernel skips such routes when the setting of `all` or of the
 * device is 1. Null when neither can be read.
 */
export function ignoresLinkdownRoutes(root: string, ifname: string): boolean | null {
  const conf = join(root, 'proc/sys/net/ipv4/conf');
  const values = [text(join(conf, 'all', 'ignore_routes_with_linkdown')), text(join(conf, ifname, 'ignore_routes_with_linkdown'))];
  if (values.some((v) => v !== null && v !== '0')) {
    return true;
  }
  return values.every((v) => v === '0') ? false : null;
}

function link(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

function text(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}
