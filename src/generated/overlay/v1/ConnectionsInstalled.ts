// Original file: proto/overlay/v1/sync.proto


/**
 * ConnectionsInstalled reports that the destination installed the port's connections handed to
 * it up to the batch marked complete.
 */
export interface ConnectionsInstalled {
  /**
   * migration_id is the migration.
   */
  'migrationId'?: (string);
  /**
   * port_id is the port.
   */
  'portId'?: (string);
  /**
   * installed is the number of connections now tracked on the destination.
   */
  'installed'?: (number);
  /**
   * failed is the number that could not be inserted.
   */
  'failed'?: (number);
  /**
   * error says why some failed, empty when none did.
   */
  'error'?: (string);
}

/**
 * ConnectionsInstalled reports that the destination installed the port's connections handed to
 * it up to the batch marked complete.
 */
export interface ConnectionsInstalled__Output {
  /**
   * migration_id is the migration.
   */
  'migrationId': (string);
  /**
   * port_id is the port.
   */
  'portId': (string);
  /**
   * installed is the number of connections now tracked on the destination.
   */
  'installed': (number);
  /**
   * failed is the number that could not be inserted.
   */
  'failed': (number);
  /**
   * error says why some failed, empty when none did.
   */
  'error': (string);
}
