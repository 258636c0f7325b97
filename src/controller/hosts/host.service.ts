import type { Actor } from '../auth/principal';
import { Injectable } from '@nestjs/common';
import { ErrorCode, notFound, OverlayError } from '../errors';
import { type ResourceId } from '../../common/values';
import { newId } from '../model/value-parsers';
import { RealizationService, type HostAgentStatus } from '../distribution/realization.service';
import type { Page, PageRequest } from '../store/page';
import type { Host, HostInventory, Uplink } from '../model/host';
import { HostRepository } from './host.repository';
import type { CreateHost, InventoryInput, UpdateHost } from './host.schemas';

/** Fills the optional inventory fields with null, so stored records always have one shape. */
function normalizeInventory(input: InventoryInput | undefined): HostInventory {
  const uplinks: Uplink[] = (input?.uplinks ?? []).map((u) => ({
    name: u.name,
    driver: u.driver ?? null,
    pciAddress: u.pciAddress ? u.pciAddress.toLowerCase() : null,
    switch: u.switch ?? null,
    switchPort: u.switchPort ?? null,
    team: u.team ?? null,
    mode: u.mode ?? null,
    failureDetection: u.failureDetection ?? null,
  }));
  const names = new Set<string>();
  uplinks.forEach((u, i) => {
    if (names.has(u.name)) {
      throw new OverlayError(ErrorCode.InvalidValue, `uplink ${u.name} is listed twice`, { field: `inventory.uplinks[${i}].name` });
    }
    names.add(u.name);
  });
  return { uplinks, trunkedVlans: [...new Set(input?.trunkedVlans ?? [])].sort((a, b) => a - b) };
}

@Injectable()
export class HostService {
  constructor(
    private readonly hosts: HostRepository,
    private readonly realization: RealizationService,
  ) {}

  async create(input: CreateHost, actor: Actor): Promise<Host> {
    const now = new Date().toISOString();
    return this.hosts.create({
      id: newId(),
      name: input.name,
      vtepIp: input.vtepIp,
      inventory: normalizeInventory(input.inventory),
      createdAt: now,
      updatedAt: now,
    }, actor);
  }

  /** Changes name, VTEP or inventory (the inventory is replaced whole). Retries on a concurrent change. */
  async update(id: ResourceId, input: UpdateHost, actor: Actor): Promise<Host> {
    const inventory = input.inventory === undefined ? undefined : normalizeInventory(input.inventory);
    for (;;) {
      const current = await this.read(id);
      const next: Host = {
        ...current,
        name: input.name ?? current.name,
        vtepIp: input.vtepIp ?? current.vtepIp,
        inventory: inventory ?? current.inventory,
        updatedAt: new Date().toISOString(),
      };
      if (await this.hosts.replace(current, next, actor)) {
        return next;
      }
    }
  }

  /** The host with its agent's state: connected, acknowledged revision, lag, last error. */
  async get(id: ResourceId): Promise<Host & HostAgentStatus> {
    const host = await this.read(id);
    return { ...host, ...(await this.realization.hostStatus([host.id])).get(host.id)! };
  }

  private async read(id: ResourceId): Promise<Host> {
    const host = await this.hosts.get(id);
    if (!host) {
      throw notFound('host', id);
    }
    return host;
  }

  async list(page: PageRequest): Promise<Page<Host & HostAgentStatus>> {
    const result = await this.hosts.list(page);
    const status = await this.realization.hostStatus(result.items.map((h) => h.id));
    return { ...result, items: result.items.map((h) => ({ ...h, ...status.get(h.id)! })) };
  }

  /** Refused while ports are bound to the host. */
  async delete(id: ResourceId, actor: Actor): Promise<void> {
    await this.hosts.delete(id, actor);
  }
}
