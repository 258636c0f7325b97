import { Injectable } from '@nestjs/common';
import type { ResourceId } from '../../common/values';
import { ErrorCode, notFound, OverlayError } from '../errors';
import { MaterializedView } from '../store/materialized-view';
import { readRecord } from '../store/page';
import { RedisStore } from '../store/redis-store';
import type { Principal } from './principal';

/**
 * What a `tenant` token sees: its own tenant, and that tenant's segments, ports, security groups
 * and mirror sessions. Everything of another tenant answers exactly as something that does not exist (the
 * same status, code, message and field: `notFound`), never 403, so a tenant cannot even learn
 * that it exists. Every other role sees every tenant, and these checks cost it nothing.
 *
 * Controllers call the scope with their `@Caller()`; where the answer for a missing object is
 * given in the middle of a service's checks (a batch of ports naming segments), the service takes
 * the caller's tenant (`tenantOf`) and treats another tenant's object as missing at that point.
 * Errors whose text names another tenant's object are reworded on the way out (`confineError`).
 *
 * The tenant of a segment, port, security group or mirror session never changes, so a check made before a
 * write cannot be raced.
 */

/** The tenant a caller is confined to; null for every role but `tenant` (it sees every tenant). */
export function tenantOf(caller: Principal): ResourceId | null {
  if (caller.role !== 'tenant') {
    return null;
  }
  if (caller.tenantId === null) {
    // The token service refuses such a token; fail closed all the same.
    throw new OverlayError(ErrorCode.Forbidden, `token '${caller.name}' has role tenant but no tenant`);
  }
  return caller.tenantId;
}

/** Objects that belong to a tenant and are read or written by id. */
export type TenantObject = 'segment' | 'port' | 'securityGroup' | 'mirrorSession';

/** What a list shows: `{ tenantId }` to filter by (undefined: every tenant), or null: nothing at all. */
export type ListScope = { tenantId: ResourceId | undefined } | null;

const OWNER_IN_ERROR = /^security group (\S+) belongs to another tenant/;
const PORT_OWNER_IN_ERROR = /^port (\S+) belongs to another tenant/;
const OWNING_SEGMENT = / by (segment|mirror session) \S+$/;

/**
 * An error as a tenant caller may see it. The scripts check that a port's or a rule's security
 * group belongs to the same tenant (SECURITY_GROUP_TENANT_MISMATCH, which tells an operator what
 * is wrong); for a tenant that group is another tenant's, so it does not exist: it gets the
 * not-found the same script gives for a missing group, at the same point, with the same field.
 * A mirror session's ports are checked the same way (PORT_TENANT_MISMATCH -> the port's not-found).
 * VNI_TAKEN and VLAN_TAKEN name the segment (or mirror session) holding the number, which may be
 * another tenant's: a tenant is told only that the number is in use. VLAN_NOT_TRUNKED describes the
 * host's switch ports (names, switches, VLANs), the infrastructure's: a tenant is told only that the
 * host does not carry the segment's VLAN. Everything else passes unchanged.
 */
export function confineError(caller: Principal | undefined, error: OverlayError): OverlayError {
  if (caller?.role !== 'tenant') {
    return error;
  }
  switch (error.code) {
    case ErrorCode.SecurityGroupTenantMismatch: {
      const group = OWNER_IN_ERROR.exec(error.message)?.[1];
      // An unexpected wording is answered without the id rather than passed on.
      return group ? notFound('securityGroup', group, error.field) : new OverlayError(ErrorCode.SecurityGroupNotFound, 'no such security group', { field: error.field });
    }
    case ErrorCode.PortTenantMismatch: {
      const port = PORT_OWNER_IN_ERROR.exec(error.message)?.[1];
      return port ? notFound('port', port, error.field) : new OverlayError(ErrorCode.PortNotFound, 'no such port', { field: error.field });
    }
    case ErrorCode.VniTaken:
    case ErrorCode.VlanTaken:
      return new OverlayError(error.code, error.message.replace(OWNING_SEGMENT, ''), { field: error.field });
    case ErrorCode.VlanNotTrunked:
      return new OverlayError(error.code, "the host is not known to carry the segment's VLAN", { field: error.field });
    default:
      return error;
  }
}

@Injectable()
export class TenantScope {
  constructor(
    private readonly view: MaterializedView,
    private readonly store: RedisStore,
  ) {}

  /**
   * A tenant named by id in a request (GET /v1/tenants/{id}, a body's `tenantId`): a tenant
   * caller may name only its own; any other answers as a tenant that does not exist. No read.
   */
  tenant(caller: Principal, tenantId: ResourceId, field = 'id'): void {
    const own = tenantOf(caller);
    if (own !== null && tenantId !== own) {
      throw notFound('tenant', tenantId, field);
    }
  }

  /**
   * Before reading or writing one object by id: another tenant's answers as missing. Free for
   * every role but tenant; for a tenant, this replica's view answers (ownership never changes,
   * so a stale view is right about it), or one HGET for an object the view has not seen yet. A
   * missing object passes: the service answers it, with the same words.
   */
  async own(caller: Principal, kind: TenantObject, id: ResourceId): Promise<void> {
    const tenant = tenantOf(caller);
    if (tenant === null) {
      return;
    }
    const owner = await this.ownerOf(kind, id);
    if (owner !== undefined && owner !== tenant) {
      throw notFound(kind, id);
    }
  }

  /**
   * The tenant filter of a list (`?tenantId=`): as asked for every role but tenant; for a tenant,
   * its own tenant, whether it asked for it or for none. Asking for another tenant shows nothing,
   * which is what a tenant that does not exist shows too (an empty page).
   */
  list(caller: Principal, requested: ResourceId | undefined): ListScope {
    const own = tenantOf(caller);
    if (own === null) {
      return { tenantId: requested };
    }
    return requested === undefined || requested === own ? { tenantId: own } : null;
  }

  /** Pinning a VNI: operators may; a tenant only with a token that allows it (403, naming what is needed). */
  vniPinning(caller: Principal, vni: number | undefined, field = 'vni'): void {
    if (vni !== undefined && caller.role === 'tenant' && !caller.allowVniPinning) {
      throw new OverlayError(
        ErrorCode.Forbidden,
        `pinning a VNI needs role operator, or a tenant token with allowVniPinning; token '${caller.name}' is a tenant token without it (leave vni out to get a free one)`,
        { field },
      );
    }
  }

  private async ownerOf(kind: TenantObject, id: ResourceId): Promise<string | undefined> {
    const state = this.view.current;
    const k = this.store.keys;
    const [seen, hash] =
      kind === 'segment'
        ? [state.segments.get(id), k.segments()]
        : kind === 'port'
          ? [state.ports.get(id), k.ports()]
          : kind === 'mirrorSession'
            ? [state.mirrorSessions.get(id), k.mirrorSessions()]
            : [state.securityGroups.get(id), k.securityGroups()];
    if (seen) {
      return seen.tenantId;
    }
    return (await readRecord<{ tenantId: string }>(this.store, hash, id))?.tenantId;
  }
}
