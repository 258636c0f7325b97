/**
 * A live migration of a VM's ports from one host to another, make before break (see
 * docs/migration.md):
 *
 *   preparing --destination acked--> prepared --commit--> committed --peers and source acked--> completed
 *       \                               \
 *        +------------------------------+--abort--> aborted, or past expiresAt --> expired
 *
 * - preparing: the destination has been sent the ports (as prepared: tap and rules, closed to
 *   all else), their policies, sets and segment tables; the source still forwards.
 * - prepared: the destination acknowledged that revision; the migration may be committed.
 * - committed: one atomic step moved the bindings to the destination; peers are being told
 *   MAC -> new VTEP and the source withdraws the ports.
 * - completed: every peer and the source acknowledged the commit.
 * - aborted / expired: the destination's prepared state is withdrawn; peers never changed.
 */
export const MIGRATION_STATES = ['preparing', 'prepared', 'committed', 'completed', 'aborted', 'expired'] as const;
export type MigrationState = (typeof MIGRATION_STATES)[number];

/** States in which the migration holds its ports (a second one is refused). */
export const OPEN_STATES: readonly MigrationState[] = ['preparing', 'prepared'];

/**
 * Timeline events, in the order they normally happen. `vm-arrived`: the destination agent saw the
 * VM's first frame (and asked for the commit), present only when an agent reported it.
 * `connections-exported`: the source's agent sent the first full dump of every port's tracked
 * connections; `connections-installed`: the destination's agent inserted them (see
 * connection-handover.ts); both carry counts.
 */
export const MIGRATION_EVENTS = ['prepared', 'destination-acked', 'connections-exported', 'connections-installed', 'vm-arrived', 'committed', 'peers-acked', 'source-cleaned', 'aborted', 'expired'] as const;
export type MigrationEvent = (typeof MIGRATION_EVENTS)[number];

export interface TimelineEntry {
  event: MigrationEvent;
  at: string;
  /** The revision the event wrote (prepared, committed, aborted, expired). */
  revision?: number;
  /** Connections exported (connections-exported) or installed (connections-installed). */
  connections?: number;
  /** Connections the destination could not insert (connections-installed). */
  failed?: number;
  /** Who took the step (prepared, committed, aborted, expired): a token, or the controller itself (an expiry, a commit its agent asked for). */
  by?: { tokenId: string; name: string; role: string } | { system: string };
}

/** What does not change over a migration's life, stored as one JSON field. */
export interface MigrationRecord {
  id: string;
  vmId: string | null;
  portIds: string[];
  sourceHostId: string;
  destinationHostId: string;
  createdAt: string;
  /** When a migration not committed by then expires (ISO time). */
  expiresAt: string;
}

export interface Migration extends MigrationRecord {
  state: MigrationState;
  /** Events so far, in time order. */
  timeline: TimelineEntry[];
}
