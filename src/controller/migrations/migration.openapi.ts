import { MIGRATION_EVENTS, MIGRATION_STATES } from '../model/migration';
import { ErrorCode } from '../errors';
import { idParam, json, nullableStr, page, record, ref, str, strings, type ApiDescription } from '../http/openapi';
import { openApiParameters } from '../http/query';
import { WAIT_QUERY } from '../ports/port.schemas';
import { MIGRATION_LIST_QUERY, PREPARE_QUERY, prepareMigrationSchema } from './migration.schemas';

const migration = (description: string) => ({ description, ...json(ref('migration')) });
const tags = ['migrations'];

/** The routes of MigrationController. */
export const migrationApi: ApiDescription = {
  paths: {
    '/v1/migrations': {
      post: {
        operationId: 'prepareMigration',
        tags,
        summary: 'Prepare a live migration: the destination gets the ports, their rules and segments before the VM moves',
        description:
          'Idempotent: a retry with the same ports, source and destination returns the open migration (200). A second migration of a VM or port while one is open is refused (409 MIGRATION_IN_PROGRESS).',
        parameters: openApiParameters(PREPARE_QUERY),
        body: prepareMigrationSchema,
        responses: { '201': migration('prepared: the destination acknowledged'), '200': migration('a retry: the open migration'), '202': migration('preparing: the destination has not acknowledged within the timeout') },
        errors: [ErrorCode.InvalidValue, ErrorCode.PortNotFound, ErrorCode.PortNotOnSource, ErrorCode.MigrationInProgress, ErrorCode.HostNotFound, ErrorCode.VlanNotTrunked],
      },
      get: {
        operationId: 'listMigrations',
        tags,
        summary: 'List migrations, newest first',
        description:
          'Open and finished ones (a finished migration is kept OVERLAY_MIGRATION_RETENTION_SECONDS). A host-scoped migration-hook token sees only migrations from or to its hosts. ' +
          'One request reads at most 10,000 migrations: a selective filter over a long history may answer fewer items than the limit with a nextCursor to go on.',
        parameters: openApiParameters(MIGRATION_LIST_QUERY),
        responses: { '200': { description: 'a page', ...json(page('migration')) } },
        errors: [],
      },
    },
    '/v1/migrations/{id}': {
      get: { operationId: 'getMigration', tags, summary: 'A migration, its state and timeline', parameters: [idParam], responses: { '200': migration('migration') }, errors: [ErrorCode.MigrationNotFound] },
    },
    '/v1/migrations/{id}/commit': {
      post: {
        operationId: 'commitMigration',
        tags,
        summary: 'Commit: move the bindings to the destination in one step; peers switch, the source withdraws',
        description: 'Needs the destination acknowledged (409 MIGRATION_NOT_READY before). Idempotent. With wait=realized, answers once every host whose span the commit changed (the segments\' peers, the destination, the source) acknowledged it (202 if not within the timeout, with `pendingHostIds`: the hosts whose ack is missing).',
        parameters: [idParam, ...openApiParameters(WAIT_QUERY)],
        responses: { '200': migration('committed (completed once every ack is in)'), '202': migration('committed, acks still missing after the timeout') },
        errors: [ErrorCode.MigrationNotFound, ErrorCode.MigrationClosed, ErrorCode.MigrationNotReady, ErrorCode.InvalidValue],
      },
    },
    '/v1/migrations/{id}/abort': {
      post: {
        operationId: 'abortMigration',
        tags,
        summary: "Abort: the destination's prepared state is withdrawn; peers never changed. Idempotent",
        parameters: [idParam],
        responses: { '200': migration('aborted') },
        errors: [ErrorCode.MigrationNotFound, ErrorCode.MigrationCommitted],
      },
    },
  },
  schemas: {
    migration: record(
      {
        id: str,
        vmId: nullableStr,
        portIds: strings,
        sourceHostId: str,
        destinationHostId: str,
        state: { type: 'string', enum: MIGRATION_STATES },
        createdAt: str,
        expiresAt: { type: 'string', description: 'when it expires unless committed before' },
        pendingHostIds: { ...strings, description: 'a commit with wait=realized answered 202: the hosts whose acknowledgement of the commit was missing' },
        timeline: {
          type: 'array',
          description: 'events so far, in time order',
          items: record(
            {
              event: { type: 'string', enum: MIGRATION_EVENTS },
              at: str,
              revision: { type: 'integer', description: 'the revision the event wrote (prepared, committed, aborted, expired)' },
              connections: { type: 'integer', description: 'connections exported (connections-exported) or installed (connections-installed)' },
              failed: { type: 'integer', description: 'connections the destination could not insert (connections-installed)' },
              by: {
                description: 'who took the step (prepared, committed, aborted, expired): a token, or the controller itself',
                oneOf: [record({ tokenId: str, name: str, role: str }), record({ system: str })],
              },
            },
            { optional: ['revision', 'connections', 'failed', 'by'] },
          ),
        },
      },
      {
        optional: ['pendingHostIds'],
        example: {
          id: '01a21ab0-9c00-7d1e-8f2a-3b4c5d6e7f80',
          vmId: 'vm-42',
          portIds: ['01a21ab0-58f1-7c3e-9d2a-5b8e2f0c1d4e'],
          sourceHostId: '01a21ab0-2b10-7d4e-8f00-1a2b3c4d5e6f',
          destinationHostId: '01a21ab0-2b11-7d4e-8f00-1a2b3c4d5e6f',
          state: 'prepared',
          createdAt: '2026-12-05T01:25:22.462Z',
          expiresAt: '2026-12-05T01:35:22.462Z',
          timeline: [
            { event: 'prepared', at: '2026-12-05T01:25:22.462Z', revision: 41, by: { tokenId: '01a21ab0-0f00-7000-8000-000000000001', name: 'nova', role: 'migration-hook' } },
            { event: 'destination-acked', at: '2026-12-05T01:25:22.530Z' },
          ],
        },
      },
    ),
  },
};
