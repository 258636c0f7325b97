import type { ResourceId } from '../../common/values';

/**
 * Who calls the API. Every `/v1` call carries a bearer token; the token's record decides its
 * role and scope (see tokens/). The roles, from most to least power:
 * - `admin`: everything, tokens included;
 * - `operator`: tenants, segments (VNI pinning included), hosts, ports, security groups, migrations;
 * - `tenant`: one tenant's segments, ports and security groups; another tenant's objects do not exist for it;
 * - `migration-hook`: prepare, commit, abort and read migrations (of its hosts, when scoped), read ports and hosts;
 * - `auditor`: reads everything, the audit trail and the tokens' metadata included, changes nothing;
 * - `metrics`: reads GET /metrics only (a Prometheus scraper's token: leaked, it shows no tenant's data).
 */
export const ROLES = ['admin', 'operator', 'tenant', 'migration-hook', 'auditor', 'metrics'] as const;
export type Role = (typeof ROLES)[number];

/** An authenticated caller: its token's id, name, role and scope. */
export interface Principal {
  tokenId: ResourceId;
  name: string;
  role: Role;
  /** The one tenant a `tenant` token sees; null for every other role. */
  tenantId: ResourceId | null;
  /** A `migration-hook` token's hosts: only migrations from or to them; null = any host. */
  hostIds: ResourceId[] | null;
  /** A `tenant` token may pin a segment's VNI. */
  allowVniPinning: boolean;
}

/**
 * Who made a change, as the audit trail and the change log record it: a token's holder (with
 * where the request came from and what it called), or the controller itself (a migration that
 * expired, a commit an agent asked for).
 */
export type Actor =
  | { kind: 'token'; tokenId: ResourceId; name: string; role: Role; source: string; method: string; route: string }
  | { kind: 'system'; name: string };

/** The controller itself, for its own bookkeeping writes (agents' acks and claims, a token's last use): they make no audited change. */
export const CONTROLLER: Actor = { kind: 'system', name: 'overlayd' };

/** A named part of the controller acting on its own (an expiry, a commit an agent asked for, the bootstrap). */
export const systemActor = (name: string): Actor => ({ kind: 'system', name });
