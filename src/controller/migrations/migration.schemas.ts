import { ErrorCode } from '../errors';
import { array, custom, integer, object, optional, type Parsed } from '../http/schema';
import { parseId } from '../model/value-parsers';
import { enumParam, idParam, integerParam, stringParam, type QuerySpec } from '../http/query';
import { MAX_WAIT_TIMEOUT_MS, VM_ID, vmIdSchema } from '../ports/port.schemas';
import { MIGRATION_STATES } from '../model/migration';
import { PAGE_QUERY } from '../store/page';

const idSchema = (description: string) => custom(parseId, { type: 'string', format: 'uuid', description }, [ErrorCode.InvalidId]);

export const MAX_PORTS_PER_MIGRATION = 64;
export const MIN_MIGRATION_TTL_MS = 1_000;
export const MAX_MIGRATION_TTL_MS = 24 * 3600_000;

export const prepareMigrationSchema = object(
  {
    vmId: optional(vmIdSchema),
    portIds: optional(array(idSchema('a port bound to the source host'), { min: 1, max: MAX_PORTS_PER_MIGRATION })),
    sourceHostId: idSchema('the host the VM runs on now'),
    destinationHostId: idSchema('the host the VM moves to'),
    ttlMs: optional(
      integer({
        min: MIN_MIGRATION_TTL_MS,
        max: MAX_MIGRATION_TTL_MS,
        description: 'how long the prepared migration waits for a commit before it expires (ms); default OVERLAY_MIGRATION_TTL_MS',
      }),
    ),
  },
  'Prepares a live migration: vmId (every port of that VM bound to the source) or portIds, not both. The destination receives the ports, their rules and their segments before the VM moves.',
);
export type PrepareMigration = Parsed<typeof prepareMigrationSchema>;

/** How long `prepare` waits for the destination's ack unless the request says otherwise. */
export const DEFAULT_PREPARE_WAIT_MS = 10_000;

/** `POST /v1/migrations?timeout=<ms>`: how long to wait for the destination's ack (0 = do not wait). */
export const PREPARE_QUERY = {
  timeout: integerParam({ min: 0, max: MAX_WAIT_TIMEOUT_MS, default: DEFAULT_PREPARE_WAIT_MS, unit: 'milliseconds', description: "ms to wait for the destination's ack (0: answer at once)" }),
} satisfies QuerySpec;

/** `GET /v1/migrations`: filters combine (all must hold). */
export const MIGRATION_LIST_QUERY = {
  ...PAGE_QUERY,
  state: enumParam(MIGRATION_STATES, 'only migrations in this state'),
  vmId: stringParam({ ...VM_ID, description: 'only migrations of this VM' }),
  hostId: idParam('only migrations from or to this host'),
} satisfies QuerySpec;
