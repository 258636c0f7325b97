// Original file: proto/overlay/v1/sync.proto

import type { TrackedConnection as _overlay_v1_TrackedConnection, TrackedConnection__Output as _overlay_v1_TrackedConnection__Output } from '../../overlay/v1/TrackedConnection';

/**
 * ConnectionBatch is some of the tracked connections of one port in a live migration. The
 * source's agent sends its first full dump in batches, the last one marked complete, then
 * batches of connections opened since, while the port stays prepared elsewhere; the controller
 * checks each entry and hands the batches, in order, to the destination's agent.
 */
export interface ConnectionBatch {
  /**
   * migration_id is the migration (Port.migration_id).
   */
  'migrationId'?: (string);
  /**
   * port_id is the migrating port whose connections these are.
   */
  'portId'?: (string);
  /**
   * connections are at most 4096 entries.
   */
  'connections'?: (_overlay_v1_TrackedConnection)[];
  /**
   * complete marks the last batch of the source's first full dump.
   */
  'complete'?: (boolean);
}

/**
 * ConnectionBatch is some of the tracked connections of one port in a live migration. The
 * source's agent sends its first full dump in batches, the last one marked complete, then
 * batches of connections opened since, while the port stays prepared elsewhere; the controller
 * checks each entry and hands the batches, in order, to the destination's agent.
 */
export interface ConnectionBatch__Output {
  /**
   * migration_id is the migration (Port.migration_id).
   */
  'migrationId': (string);
  /**
   * port_id is the migrating port whose connections these are.
   */
  'portId': (string);
  /**
   * connections are at most 4096 entries.
   */
  'connections': (_overlay_v1_TrackedConnection__Output)[];
  /**
   * complete marks the last batch of the source's first full dump.
   */
  'complete': (boolean);
}
