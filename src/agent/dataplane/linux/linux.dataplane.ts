import type { Metric } from 'prom-client';
import type { AwaitedTaps, Dataplane, DataplanePlan, DataplaneState, FirewallRuleset, ForwardingStep, HostKernelState, InsertedConnections, TrackedConnection } from '../dataplane';
import { ArrivalMonitor } from './arrival-monitor';
import type { CommandRunner } from './command-runner';
import { ConntrackDriver } from './conntrack.driver';
import type { Logger } from '../../../common/logger';
import { hostLinks, KernelReader } from './kernel-view';
import { resolveTaps, type TapChoice, type TapClaim } from '../taps';
import { LinkMonitor } from './link-monitor';
import { LinksDriver } from './links.driver';
import type { ConntrackMode } from './nftables';
import { NftablesDriver, procSysctls, type ConntrackSetting, type Sysctls } from './nftables.driver';

/**
 * The Dataplane on Linux: small drivers over one command runner and one kernel reader, each
 * owning its part of the kernel. The links driver: VXLAN devices, bridges, taps attached, their
 * forwarding entries and the tc gate (links.driver.ts); the nftables driver: the firewall's
 * tables (nftables.driver.ts); the arrival monitor: a migrating VM's first frame
 * (arrival-monitor.ts); the link monitor: a tap the agent waits for (link-monitor.ts); the
 * conntrack driver: tracked connections (conntrack.driver.ts). This
 * class only wires them and delegates; see each driver for what it guarantees.
 */
export class LinuxDataplane implements Dataplane {
  private readonly links: LinksDriver;
  private readonly nftables: NftablesDriver;
  private readonly arrivals: ArrivalMonitor;
  private readonly taps: LinkMonitor;
  private readonly conntrack: ConntrackDriver;
  private readonly kernel: KernelReader;

  constructor(
    runner: CommandRunner,
    private readonly logger: Logger,
    sysctls: Sysctls = procSysctls,
  ) {
    const kernel = new KernelReader(runner);
    this.kernel = kernel;
    this.links = new LinksDriver(runner, kernel, logger);
    this.nftables = new NftablesDriver(runner, kernel, logger, sysctls);
    this.arrivals = new ArrivalMonitor(runner, kernel);
    this.taps = new LinkMonitor(runner);
    this.conntrack = new ConntrackDriver(runner, logger);
  }

  /**
   * Chooses the firewall's conntrack mode (see nftables.ts) and readies the kernel for it, and
   * gates taps and VXLAN devices from now on; call once at start, before applyFirewall. Throws,
   * saying why, when `nft` or `tc` does not run or the chosen mode cannot work here. Idempotent.
   */
  async prepareFirewall(setting: ConntrackSetting): Promise<ConntrackMode> {
    const mode = await this.nftables.chooseMode(setting);
    await this.links.enableGate();
    this.nftables.use(mode);
    this.logger.info(`firewall conntrack: ${mode}${setting === 'auto' ? ' (probed)' : ''}`);
    return mode;
  }

  observe(): Promise<DataplaneState> {
    return this.links.observe();
  }

  apply(plan: DataplanePlan, from?: DataplaneState): Promise<void> {
    return this.links.apply(plan, from);
  }

  updateForwarding(steps: ForwardingStep[]): Promise<void> {
    return this.links.updateForwarding(steps);
  }

  applyFirewall(ruleset: FirewallRuleset): Promise<void> {
    return this.nftables.apply(ruleset);
  }

  /**
   * Each local port's tap (taps.ts), from the links of the last observe (read now before the
   * first). Whether a link carries an address is read (one more `ip -j addr show`) only when a
   * tap would be taken by its MAC: an uplink is never taken for a VM's tap.
   */
  async resolveTaps(claims: readonly TapClaim[]): Promise<Map<string, TapChoice>> {
    const links = this.links.lastLinks() ?? (await this.kernel.links());
    const found = resolveTaps(claims, hostLinks(links));
    if (![...found.values()].some((c) => 'by' in c && c.by === 'MAC')) {
      return found;
    }
    return resolveTaps(claims, hostLinks(links, await this.kernel.addressed()));
  }

  mirrorFailures(): ReadonlyMap<string, string> {
    return this.links.mirrorFailures();
  }

  portFailures(): ReadonlyMap<string, string> {
    return this.links.portFailures();
  }

  observeHost(): HostKernelState | undefined {
    return this.links.observeHost();
  }

  firewallInForce(): FirewallRuleset | undefined {
    return this.nftables.inForce();
  }

  metrics(): Metric<string>[] {
    return [this.nftables.loadSeconds, this.nftables.driftRepairs];
  }

  watchArrivals(ports: ReadonlyMap<string, string>, arrived: (tap: string) => void): void {
    this.arrivals.watch(ports, arrived);
  }

  watchTaps(awaited: AwaitedTaps, since: number, appeared: () => void): void {
    this.taps.watch(awaited, since, appeared);
  }

  forgetConnections(zone: number, ips: string[]): Promise<void> {
    return this.conntrack.forget(zone, ips);
  }

  listConnections(zone: number, ips: string[], limit: number): Promise<TrackedConnection[]> {
    return this.conntrack.list(zone, ips, limit);
  }

  insertConnections(zone: number, ips: string[], connections: TrackedConnection[]): Promise<InsertedConnections> {
    return this.conntrack.insert(zone, ips, connections);
  }

  async close(): Promise<void> {
    this.arrivals.close();
    this.taps.close();
  }
}
