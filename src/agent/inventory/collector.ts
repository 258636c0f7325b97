import type { ObservedInventory } from '../../controller/model/observed-inventory';
import type { Logger } from '../../common/logger';
import type { CommandRunner } from '../dataplane/linux/command-runner';
import { parseJsonArray } from '../dataplane/linux/kernel-view';
import { parseLldpNeighbors } from './lldp';
import { parseInventoryLinks, type InventoryIpLink } from './links';
import { readNic } from './sysfs';
import { parseTeamdState } from './teamd';
import { routeDevices, samplePeers, vtepDevice, type IpAddrLink, type IpRoute } from './vtep';

export interface InventorySources {
  /** Commands (`ip`, `teamdctl`, `lldpcli`) run here; tests record and answer them. */
  runner: CommandRunner;
  /** The root sysfs is read under (OVERLAY_SYSFS_ROOT): `/` on a host, a fake tree in tests. */
  sysRoot: string;
  /** lldpd's control socket (OVERLAY_LLDPD_SOCKET), given to `lldpcli -u`; unset: lldpcli's default. */
  lldpdSocket?: string;
  logger?: Pick<Logger, 'warn'>;
}

/** What of the desired state the collection needs: the local VTEP, and the span's VTEPs to route to. */
export interface InventoryScope {
  vtepIp: string;
  peerVteps: string[];
}

/**
 * Collects the host's ObservedInventory, once per call:
 * - links, bonds and teams: `ip -d -j link show` (links.ts); a team's mode and ports from
 *   `teamdctl <team> state dump` (teamd.ts), its team left null (unknown) when teamd is absent
 *   or does not answer;
 * - each physical NIC's driver, PCI address and bus, NUMA node from sysfs (sysfs.ts);
 * - each link's LLDP neighbour from `lldpcli -f json show neighbors details` (lldp.ts), with
 *   `-u <socket>` when lldpd listens elsewhere than lldpcli's default; no lldpd (the command
 *   fails): lldp null everywhere;
 * - the device holding the local VTEP (`ip -j addr show`) and, for at most 8 peer VTEPs of the
 *   span, the devices the kernel routes to them through (`ip -j route get <peer> fibmatch`: the
 *   whole matching route, so a multipath route gives all its nexthops' devices, where a plain
 *   `route get` names only the one the hash picked for that flow).
 * Only `ip link` failing fails the collection; every other source failing leaves its fields null.
 */
export class InventoryCollector {
  constructor(private readonly sources: InventorySources) {}

  async collect(scope: InventoryScope): Promise<ObservedInventory> {
    const { runner, sysRoot } = this.sources;
    const raw = parseJsonArray<InventoryIpLink>(await runner.run('ip', ['-d', '-j', 'link', 'show']), 'ip -d -j link show');
    const links = parseInventoryLinks(raw);
    const socket = this.sources.lldpdSocket ? ['-u', this.sources.lldpdSocket] : [];
    const lldp = await this.optional('lldpcli', [...socket, '-f', 'json', 'show', 'neighbors', 'details'], parseLldpNeighbors, 'LLDP neighbours unknown (is lldpd installed and running?)');
    for (const link of links) {
      if (link.kind === 'physical') {
        link.nic = readNic(sysRoot, link.name);
      }
      link.lldp = lldp?.get(link.name) ?? null;
      if (link.kind === 'team') {
        link.team = await this.optional('teamdctl', [link.name, 'state', 'dump'], parseTeamdState, `team ${link.name}'s mode and ports unknown (teamd does not answer)`);
      }
    }
    return { links, ...(await this.vtep(scope)) };
  }

  private async vtep(scope: InventoryScope): Promise<Pick<ObservedInventory, 'vtepDevice' | 'vtepRoutes'>> {
    if (!scope.vtepIp) {
      return { vtepDevice: null, vtepRoutes: [] };
    }
    const addrs = await this.optional('ip', ['-j', 'addr', 'show'], (text) => parseJsonArray<IpAddrLink>(text, 'ip -j addr show'), 'the VTEP device unknown');
    const vtepRoutes: ObservedInventory['vtepRoutes'] = [];
    for (const destination of samplePeers(scope.peerVteps, scope.vtepIp)) {
      const devices = await this.optional('ip', ['-j', 'route', 'get', destination, 'fibmatch'], (text) => routeDevices(parseJsonArray<IpRoute>(text, 'ip -j route get')), `no route to the peer VTEP ${destination}`);
      vtepRoutes.push({ destination, devices: (devices ?? []).filter((d) => d.length <= 256).slice(0, 64) });
    }
    return { vtepDevice: addrs ? vtepDevice(addrs, scope.vtepIp) : null, vtepRoutes };
  }

  /**
   * Watches netlink link events (`ip monitor link`, through the runner's `watch`) and calls
   * `changed` on each that concerns a device the inventory lists: taps, veths and the agent's own
   * vx/br/mx/ms devices come and go with ports and are left out. Undefined when the runner cannot
   * watch.
   */
  watchLinks(changed: () => void): { stop(): void } | undefined {
    return this.sources.runner.watch?.('ip', ['monitor', 'link'], (line) => {
      if (linkEventConcernsInventory(line)) {
        changed();
      }
    });
  }

  /** Runs a source that may be missing: its parse, or null (logged once per message) when it fails. */
  private async optional<T>(cmd: string, args: string[], parse: (text: string) => T, unknown: string): Promise<T | null> {
    try {
      return parse(await this.sources.runner.run(cmd, args));
    } catch (err) {
      this.warn(`inventory: ${unknown}: ${(err as Error).message}`);
      return null;
    }
  }

  private readonly warned = new Set<string>();

  private warn(message: string): void {
    if (!this.warned.has(message)) {
      this.warned.add(message);
      this.sources.logger?.warn(message);
    }
  }
}

/** `ip monitor link` lines name the device after the index (`3: eno1: <...>`, `Deleted 7: tap1: ...`, `8: bond0.100@bond0: ...`). */
const LINK_EVENT_RE = /^(?:Deleted )?\d+: ([^:@\s]+)/;
const CHURN_RE = /^(?:tap|vnet|veth|(?:vx|br|mx|ms)\d)/;

/** Pure: whether an `ip monitor link` line is about a device the inventory may list (not a tap, a veth or an agent's device). */
export function linkEventConcernsInventory(line: string): boolean {
  const m = LINK_EVENT_RE.exec(line.trim());
  return m !== null && !CHURN_RE.test(m[1]);
}
