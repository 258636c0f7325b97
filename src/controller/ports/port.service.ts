import type { Actor } from '../auth/principal';
import { Injectable } from '@nestjs/common';
import { ErrorCode, notFound, OverlayError } from '../errors';
import { type ResourceId } from '../../common/values';
import { assertIpInCidr, generateMac, newId } from '../model/value-parsers';
import { RealizationService, type Realization } from '../distribution/realization.service';
import type { RealizationError } from '../distribution/port-failures';
import { HostRepository } from '../hosts/host.repository';
import { SegmentRepository } from '../segments/segment.repository';
import { MaterializedView } from '../store/materialized-view';
import type { Page, PageRequest } from '../store/page';
import { withSecurityDefaults, type AllowedAddressPair, type Mapping, type Port, type PortRole } from '../model/port';
import { StrictTrunks } from '../audit/strict-trunks';
import { PortRepository } from './port.repository';
import type { CreatePort, RealizationWait, UpdatePort } from './port.schemas';

type SecurityInput = Pick<CreatePort, 'securityGroupIds' | 'portSecurity' | 'allowedAddressPairs'>;
type SecurityFields = Pick<Port, 'securityGroupIds' | 'portSecurity' | 'allowedAddressPairs'>;

const NEW_PORT_SECURITY: SecurityFields = { securityGroupIds: [], portSecurity: true, allowedAddressPairs: [] };

/**
 * Merges the security fields of a request over the port's (a new port's defaults), and checks
 * them together as Neutron does: without port security a port can have neither security groups
 * nor address pairs. `prefix` is the path of the port in the body (`ports[2].` in a batch).
 * The groups themselves (existence, tenant) are checked by the store, in the write.
 */
function mergeSecurity(input: SecurityInput, current: SecurityFields, portMac: string | undefined, prefix: string): SecurityFields {
  const securityGroupIds = input.securityGroupIds ?? current.securityGroupIds;
  securityGroupIds.forEach((id, j) => {
    if (securityGroupIds.indexOf(id) !== j) {
      throw new OverlayError(ErrorCode.InvalidValue, `security group ${id} is listed twice`, { field: `${prefix}securityGroupIds[${j}]` });
    }
  });
  const allowedAddressPairs: AllowedAddressPair[] =
    input.allowedAddressPairs?.map((pair) => ({ ip: pair.ip, mac: pair.mac === undefined || pair.mac === portMac ? null : pair.mac })) ?? current.allowedAddressPairs;
  // No Set for the ports without pairs (a batch makes 1,000 ports).
  const seen = allowedAddressPairs.length > 1 ? new Set<string>() : undefined;
  allowedAddressPairs.forEach((pair, j) => {
    const key = `${pair.ip} ${pair.mac ?? ''}`;
    if (seen?.has(key)) {
      throw new OverlayError(ErrorCode.DuplicateAddressPair, `address pair ${pair.ip}${pair.mac ? ` ${pair.mac}` : ''} is listed twice`, { field: `${prefix}allowedAddressPairs[${j}]` });
    }
    seen?.add(key);
  });
  const portSecurity = input.portSecurity ?? current.portSecurity;
  if (!portSecurity) {
    // Name what the request got wrong: the groups/pairs it sent, or the port security it turned off.
    const culprit = (given: unknown[] | undefined, name: string) => (given?.length ? name : input.portSecurity === false ? 'portSecurity' : name);
    if (securityGroupIds.length) {
      throw new OverlayError(ErrorCode.PortSecurityConflict, 'security groups need port security: give portSecurity true, or securityGroupIds []', {
        field: prefix + culprit(input.securityGroupIds, 'securityGroupIds'),
      });
    }
    if (allowedAddressPairs.length) {
      throw new OverlayError(ErrorCode.PortSecurityConflict, 'allowed address pairs need port security: give portSecurity true, or allowedAddressPairs []', {
        field: prefix + culprit(input.allowedAddressPairs, 'allowedAddressPairs'),
      });
    }
  }
  return { securityGroupIds, portSecurity, allowedAddressPairs };
}

/**
 * An analyzer port receives mirrored copies and never sends into the network (its agent drops
 * whatever it sends): port security has nothing to filter there. It defaults to off, and is
 * refused on (so are security groups and address pairs, which need it: see mergeSecurity).
 */
function analyzerSecurity<T extends Pick<SecurityInput, 'portSecurity'>>(input: T, role: PortRole, prefix: string): T {
  if (role !== 'analyzer') {
    return input;
  }
  if (input.portSecurity === true) {
    throw new OverlayError(ErrorCode.PortSecurityConflict, 'an analyzer port has no port security (it only receives mirrored copies): leave portSecurity out, or false', { field: `${prefix}portSecurity` });
  }
  return { ...input, portSecurity: false };
}

/**
 * A port as the API shows it: the defaults of older records filled in, and its role (stored only
 * for analyzer ports: absent = vm, which keeps the records and the view of most ports as they were).
 */
function present<T extends Port>(port: T): T & { role: PortRole; tapName: string | null } {
  // A copy, then the two fields set on it: the same fields in the same order as
  // `{ ...port, role, tapName }`, which V8 (Node 20) makes about 20 times slower (µs per answer).
  const presented = Object.assign({}, withSecurityDefaults(port)) as T & { role: PortRole; tapName: string | null };
  presented.role ??= 'vm';
  presented.tapName ??= null;
  return presented;
}

/**
 * What a write that waited (`?wait=realized`) adds to its answer: `pendingHostIds` only when not
 * realized, `realizationError` only when a host the port is local to acknowledged the write
 * without it (it could not program it).
 */
export interface Realized {
  realized?: boolean;
  pendingHostIds?: string[];
  realizationError?: RealizationError;
}

/** A port's answer to a wait that ended with `r`. */
const realizedFields = (r: Realization, portId?: string): Realized => {
  const failure = portId === undefined ? undefined : r.failures.get(portId);
  return r.realized && !failure ? { realized: true } : { realized: false, pendingHostIds: r.pendingHostIds, ...(failure && { realizationError: failure }) };
};

const GENERATED_MAC_ATTEMPTS = 5;

/** How long a filtered list waits for this replica's view to reach Redis' revision (504 TIMEOUT past it). */
const VIEW_CATCH_UP_MS = 5_000;

/** `GET /v1/ports` filters; every one given must hold. */
export interface PortFilter {
  segmentId?: ResourceId;
  hostId?: ResourceId;
  vmId?: string;
  tenantId?: ResourceId;
  /** Canonical (lower-case) MAC. */
  mac?: string;
}

@Injectable()
export class PortService {
  constructor(
    private readonly ports: PortRepository,
    private readonly segments: SegmentRepository,
    private readonly hosts: HostRepository,
    private readonly realization: RealizationService,
    private readonly view: MaterializedView,
    private readonly strictTrunks: StrictTrunks,
  ) {}

  /** `tenant`: the tenant the caller is confined to (null: any), whose segments alone it may name (see createAll). */
  async create(input: CreatePort, actor: Actor, wait?: RealizationWait, tenant: ResourceId | null = null): Promise<Port & Realized> {
    try {
      const { ports, revision } = await this.createAll([input], tenant, actor);
      return present((await this.withRealization(ports, revision, wait))[0]);
    } catch (err) {
      // A single create reports `mac`, not `ports[0].mac`.
      if (err instanceof OverlayError && err.field?.startsWith('ports[0].')) {
        throw new OverlayError(err.code, err.message.replaceAll('ports[0].', ''), { field: err.field.slice('ports[0].'.length) });
      }
      throw err;
    }
  }

  async createBatch(inputs: CreatePort[], actor: Actor, wait?: RealizationWait, tenant: ResourceId | null = null): Promise<{ items: (Port & Realized)[] }> {
    const { ports: created, revision } = await this.createAll(inputs, tenant, actor);
    return { items: (await this.withRealization(created, revision, wait)).map(present) };
  }

  /**
   * With `wait`, holds the answer until the write is realized (every host whose span it changed
   * has applied it, see RealizationService) or the wait times out; every port of one write shares
   * its revision, so they carry the same `pendingHostIds` (the hosts that had not acknowledged
   * it) when not realized. A port whose host acknowledged the write without it (it could not
   * program it) ends the wait at once: it is not realized, with its `realizationError`.
   */
  private async withRealization(ports: Port[], revision: number, wait?: RealizationWait): Promise<(Port & Realized)[]> {
    if (!wait) {
      return ports;
    }
    const outcome = await this.realization.waitForRevision(revision, wait.timeoutMs, ports);
    return ports.map((p) => ({ ...p, ...realizedFields(outcome, p.id) }));
  }

  /**
   * Validates against the segments, then stores every port in one step; regenerates a generated MAC
   * that collided. A caller confined to `tenant` gets another tenant's segment answered as one that
   * does not exist, at the same point of the checks (a segment's tenant never changes).
   */
  private async createAll(inputs: CreatePort[], tenant: ResourceId | null, actor: Actor): Promise<{ ports: Port[]; revision: number }> {
    // Segments are immutable once created, so this replica's view can answer; one it has not seen
    // yet (just created elsewhere) is read from Redis. The script checks existence again anyway.
    const segmentIds = [...new Set(inputs.map((p) => p.segmentId))];
    const segments = new Map(segmentIds.map((id) => [id, this.view.current.segments.get(id)]));
    const unseen = segmentIds.filter((id) => !segments.get(id));
    (await this.segments.getMany(unseen)).forEach((s, i) => segments.set(unseen[i], s));
    const now = new Date().toISOString();
    const ports: Port[] = inputs.map((input, i) => {
      const segment = segments.get(input.segmentId);
      if (!segment || (tenant !== null && segment.tenantId !== tenant)) {
        throw notFound('segment', input.segmentId, `ports[${i}].segmentId`);
      }
      const ips = input.ips ?? [];
      ips.forEach((ip, j) => {
        const field = `ports[${i}].ips[${j}]`;
        if (ips.indexOf(ip) !== j) {
          throw new OverlayError(ErrorCode.DuplicateIp, `IP ${ip} is listed twice`, { field });
        }
        if (segment.cidr) {
          assertIpInCidr(ip, segment.cidr as Parameters<typeof assertIpInCidr>[1], field);
        }
      });
      const role = input.role ?? 'vm';
      return {
        id: newId(),
        segmentId: segment.id,
        tenantId: segment.tenantId,
        vmId: input.vmId ?? null,
        mac: input.mac ?? generateMac(),
        ips,
        hostId: input.hostId ?? null,
        ...(input.tapName ? { tapName: input.tapName } : {}),
        ...mergeSecurity(analyzerSecurity(input, role, `ports[${i}].`), NEW_PORT_SECURITY, input.mac, `ports[${i}].`),
        ...(role === 'analyzer' ? { role } : {}),
        migration: null,
        createdAt: now,
        updatedAt: now,
      };
    });
    if (this.strictTrunks.enabled) {
      await this.strictTrunks.check(ports.map((p, i) => ({ segmentId: p.segmentId, hostId: p.hostId, field: `ports[${i}].hostId` })));
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return { ports, revision: await this.ports.createMany(ports, actor) };
      } catch (err) {
        const index = err instanceof OverlayError && err.code === ErrorCode.DuplicateMac ? /^ports\[(\d+)\]\.mac$/.exec(err.field ?? '') : null;
        if (!index || inputs[Number(index[1])].mac !== undefined || attempt >= GENERATED_MAC_ATTEMPTS) {
          throw err;
        }
        ports[Number(index[1])].mac = generateMac();
      }
    }
  }

  /** Binds, unbinds or relabels; replaces its security settings. Retries when the port changed concurrently. */
  async update(id: ResourceId, input: UpdatePort, actor: Actor, wait?: RealizationWait): Promise<Port & Realized> {
    for (;;) {
      // `current` is compared with the stored record as it is: defaults are filled in `next` only.
      const current = await this.read(id);
      const filled = withSecurityDefaults(current);
      const next: Port = {
        ...filled,
        hostId: input.hostId === undefined ? current.hostId : input.hostId,
        vmId: input.vmId === undefined ? current.vmId : input.vmId,
        tapName: input.tapName === undefined ? (current.tapName ?? null) : input.tapName,
        ...mergeSecurity(analyzerSecurity(input, current.role ?? 'vm', ''), filled, current.mac, ''),
        updatedAt: new Date().toISOString(),
      };
      if (next.hostId !== current.hostId) {
        await this.strictTrunks.check([{ segmentId: next.segmentId, hostId: next.hostId, field: 'hostId' }]);
      }
      const revision = await this.ports.replace(current, next, actor);
      if (revision >= 0) {
        return present((await this.withRealization([next], revision, wait))[0]);
      }
    }
  }

  /**
   * The port, with `realized` (every host that needs its entries has acknowledged them, and its
   * own host programmed it) and `realizationError` (why its host could not, or null).
   */
  async get(id: ResourceId): Promise<Port & { realized: boolean; realizationError: RealizationError | null }> {
    const port = present(await this.read(id));
    const realized = await this.realization.portsRealized([port]);
    return { ...port, ...realized.get(port.id)! };
  }

  /** Listed ports, each with `realizationError` (null when its host programmed it, or has said nothing against it). */
  private async withRealizationErrors(page: Page<Port>): Promise<Page<Port & { realizationError: RealizationError | null }>> {
    const errors = await this.realization.realizationErrors(page.items);
    return { ...page, items: page.items.map((p) => ({ ...p, realizationError: errors.get(p.id) ?? null })) };
  }

  private async read(id: ResourceId): Promise<Port> {
    const port = await this.ports.get(id);
    if (!port) {
      throw notFound('port', id);
    }
    return port;
  }

  /**
   * Lists ports: all, or those matching every filter given. A segment alone or a host alone is
   * an index in Redis, read as it is. A VM, a tenant, or a segment and a host together, have
   * none: they are found in this replica's view, caught up with Redis first (a port written a
   * moment ago, on any replica, is listed), and the records then read from Redis are checked
   * again. (A tenant's list thus never pages through another tenant's ports: its cursor and
   * `nextCursor` depend on its own ports alone.)
   */
  async list(page: PageRequest, filter: PortFilter): Promise<Page<Port & { realizationError: RealizationError | null }>> {
    const { segmentId, hostId, vmId, tenantId, mac } = filter;
    if (vmId === undefined && tenantId === undefined && mac === undefined && (segmentId === undefined || hostId === undefined)) {
      const result = await this.ports.list(page, { segmentId, hostId });
      return this.withRealizationErrors({ ...result, items: result.items.map(present) });
    }
    await this.view.catchUp(VIEW_CATCH_UP_MS);
    const matches = (p: Port): boolean =>
      (segmentId === undefined || p.segmentId === segmentId) &&
      (hostId === undefined || p.hostId === hostId) &&
      (vmId === undefined || p.vmId === vmId) &&
      (mac === undefined || p.mac === mac) &&
      (tenantId === undefined || p.tenantId === tenantId);
    const ids: string[] = [];
    for (const port of this.view.current.ports.values()) {
      if (matches(port) && (page.cursor === undefined || port.id > page.cursor)) {
        ids.push(port.id);
      }
    }
    // Ids are UUIDv7 in lower-case hex: string order is creation order, as in the Redis indexes.
    ids.sort();
    const pageIds = ids.slice(0, page.limit);
    const records = await this.ports.getMany(pageIds);
    return this.withRealizationErrors({ items: records.filter(matches).map(present), nextCursor: ids.length > page.limit ? pageIds[pageIds.length - 1] : null });
  }

  /**
   * Deletes the port. With `wait`, holds the answer until every host whose span the deletion
   * changed (the port's host, its segment's other hosts, hosts holding its groups' members) has
   * applied it: `realized` says whether that happened within the timeout.
   */
  async delete(id: ResourceId, actor: Actor, wait?: RealizationWait): Promise<{ id: ResourceId } & Realized> {
    const revision = await this.ports.delete(id, actor);
    return wait ? { id, ...realizedFields(await this.realization.waitForRevision(revision, wait.timeoutMs)) } : { id };
  }

  /** The segment's forwarding table: every bound port's MAC and IPs -> its host's VTEP. */
  async mappings(segmentId: ResourceId): Promise<{ segmentId: string; vni: number; items: Mapping[] }> {
    const segment = await this.segments.get(segmentId);
    if (!segment) {
      throw notFound('segment', segmentId);
    }
    const bound = (await this.ports.listBySegment(segmentId)).filter((p): p is Port & { hostId: string } => p.hostId !== null);
    const hostIds = [...new Set(bound.map((p) => p.hostId))];
    const hosts = new Map((await this.hosts.getMany(hostIds)).map((h, i) => [hostIds[i], h]));
    const items: Mapping[] = [];
    for (const port of bound) {
      const host = hosts.get(port.hostId);
      if (host) {
        items.push({ portId: port.id, mac: port.mac, ips: port.ips, hostId: host.id, vtepIp: host.vtepIp });
      }
    }
    return { segmentId, vni: segment.vni, items };
  }
}
