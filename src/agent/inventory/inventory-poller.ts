import type { HostInventory } from '../../generated/overlay/v1/HostInventory';
import type { ObservedInventory } from '../../controller/model/observed-inventory';
import type { Logger } from '../../common/logger';
import type { InventoryCollector, InventoryScope } from './collector';
import { samplePeers } from './vtep';

/** Pure: the inventory as HostObservation.inventory carries it (null fields left unset: proto3 `optional`). */
export function toHostInventory(inventory: ObservedInventory): HostInventory {
  const opt = <K extends string, V>(key: K, v: V | null): { [P in K]?: V } => (v === null ? {} : ({ [key]: v } as { [P in K]?: V }));
  return {
    links: inventory.links.map((l) => ({
      name: l.name,
      kind: l.kind,
      up: l.up,
      ...opt('master', l.master),
      team: l.team ? { mode: l.team.mode, miimon: l.team.miimon, arpInterval: l.team.arpInterval, ...opt('arpValidate', l.team.arpValidate), members: l.team.members.map((m) => ({ ...m })) } : null,
      nic: l.nic ? { ...opt('driver', l.nic.driver), ...opt('pciAddress', l.nic.pciAddress), ...opt('pciBus', l.nic.pciBus), ...opt('numaNode', l.nic.numaNode), ...opt('ignoreRoutesWithLinkdown', l.nic.ignoreRoutesWithLinkdown) } : null,
      lldp: l.lldp ? { ...opt('chassisId', l.lldp.chassisId), ...opt('systemName', l.lldp.systemName), ...opt('portId', l.lldp.portId), ...opt('portDescription', l.lldp.portDescription), vlans: [...l.lldp.vlans] } : null,
      ...opt('vlanId', l.vlanId),
      ...opt('parent', l.parent),
    })),
    ...opt('vtepDevice', inventory.vtepDevice),
    vtepRoutes: inventory.vtepRoutes.map((r) => ({ destination: r.destination, devices: [...r.devices] })),
  };
}

/** A burst of link events (a bond failing over: the slave, then the bond) makes one collection, this long after the first. */
export const LINK_EVENT_DEBOUNCE_MS = 2_000;

const scopeKey = (scope: InventoryScope): string => JSON.stringify([scope.vtepIp, samplePeers(scope.peerVteps, scope.vtepIp)]);

/**
 * Collects the inventory at start and every `intervalMs` (OVERLAY_INVENTORY_INTERVAL_MS; 0: never,
 * and the agent sends none), and keeps the last one collected for the host observations the
 * reconciler sends (`changed` has it send a changed one at once). A failed collection keeps the
 * previous result. When the collector can watch netlink link events (`ip monitor link`), an event
 * on a listed device (a bond member going down, a NIC added) collects again LINK_EVENT_DEBOUNCE_MS
 * later (a burst makes one collection): the periodic collection stays, for what sends no link
 * event (LLDP neighbours, teamd's runner, routes).
 */
export class InventoryPoller {
  private timer?: NodeJS.Timeout;
  private debounce?: NodeJS.Timeout;
  private watcher?: { stop(): void };
  private running = false;
  private collecting?: Promise<void>;
  private result?: HostInventory;
  /** The scope of the last collection started (its VTEP and sampled peers), to tell when the span moved it. */
  private scopeKey?: string;

  constructor(
    private readonly collector: Pick<InventoryCollector, 'collect'> & Partial<Pick<InventoryCollector, 'watchLinks'>>,
    private readonly scope: () => InventoryScope,
    private readonly intervalMs: number,
    private readonly logger: Pick<Logger, 'warn'>,
    /** Called after each collection that changed the inventory. */
    private readonly changed: () => void = () => undefined,
  ) {}

  /** The last inventory collected; undefined before the first (or when collection is off). */
  last(): HostInventory | undefined {
    return this.result;
  }

  start(): void {
    if (this.intervalMs <= 0 || this.running) {
      return;
    }
    this.running = true;
    void this.collectNow();
    this.timer = setInterval(() => void this.collectNow(), this.intervalMs);
    this.timer.unref?.();
    this.watcher = this.collector.watchLinks?.(() => {
      if (this.running && this.debounce === undefined) {
        this.debounce = setTimeout(() => {
          this.debounce = undefined;
          if (this.running) {
            void this.collectNow();
          }
        }, LINK_EVENT_DEBOUNCE_MS);
      }
    });
  }

  stop(): void {
    this.running = false;
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    this.debounce = undefined;
    this.watcher?.stop();
    this.watcher = undefined;
  }

  /**
   * Collects again, now, when the span changed what the collection asks about (the local VTEP, the
   * peer VTEPs sampled): the first collection runs before the controller's snapshot says either.
   */
  scopeChanged(): void {
    if (this.running && this.collecting === undefined && scopeKey(this.scope()) !== this.scopeKey) {
      void this.collectNow();
    }
  }

  /** One collection (a running one is not doubled); resolves when it is done. */
  collectNow(): Promise<void> {
    const scope = this.scope();
    this.scopeKey = scopeKey(scope);
    this.collecting ??= this.collector
      .collect(scope)
      .then((inventory) => {
        const next = toHostInventory(inventory);
        const before = JSON.stringify(this.result);
        this.result = next;
        if (JSON.stringify(next) !== before) {
          this.changed();
        }
      })
      .catch((err: unknown) => this.logger.warn(`inventory: collection failed, keeping the last one: ${(err as Error).message}`))
      .finally(() => {
        this.collecting = undefined;
      });
    return this.collecting;
  }
}
