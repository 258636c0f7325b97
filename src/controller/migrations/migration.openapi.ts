import { MIGRATION_EVENTS, MIGRATION_STATES } from '../model/migration';
import { errors, idParam, json, nullableStr, page, ref, str, type ApiDescription } from '../http/openapi';
import { openApiParameters } from '../http/query';
import { WAIT_QUERY } from '../ports/port.schemas';
import { MIGRATION_LIST_QUERY, PREPARE_QUERY, prepareMigrationSchema } from './migration.schemas';

const migration = (description: string) => ({ description, ...json(ref('migration')) });

/** The routes of MigrationController. */
export const migrationApi: ApiDescription = {
  paths: {
    '/v1/migrations': {
      post: {
        tags: ['migrations'],
        summary: 'Prepare a live migration: the destination gets the ports, their rules and segments before the VM moves',
        description:
          'Idempotent: a retry with the same ports, source and destination returns the open migration (200). A second migration of a VM or port while one is open is refused (409 MIGRATION_IN_PROGRESS).',
        parameters: openApiParameters(PREPARE_QUERY),
        requestBody: { required: true, ...json(prepareMigrationSchema.json) },
        responses: { '201': migration('prepared: the destination acknowledged'), '200': migration('a retry: the open migration'), '202': migration('preparing: the destination has not acknowledged within the timeout'), ...errors },
      },
      get: {
        tags: ['migrations'],
        summary: 'List migrations, newest first',
        description:
          'Open and finished ones (a finished migration is kept OVERLAY_MIGRATION_RETENTION_SECONDS). A host-scoped migration-hook token sees only migrations from or to its hosts. ' +
          'One request reads at most 10,000 migrations: a selective filter over a long history may answer fewer items than the limit with a nextCursor to go on.',
        parameters: openApiParameters(MIGRATION_LIST_QUERY),
        responses: { '200': { description: 'a page', ...json(page('migration')) }, ...errors },
      },
    },
    '/v1/migrations/{id}': { get: { tags: ['migrations'], summary: 'A migration, its state and timeline', parameters: [idParam], responses: { '200': migration('migration'), ...errors } } },
    '/v1/migrations/{id}/commit': {
      post: {
        tags: ['migrations'],
        summary: 'Commit: move the bindings to the destination in one step; peers switch, the source withdraws',
        description: 'Needs the destination acknowledged (409 MIGRATION_NOT_READY before). Idempotent. With wait=realized, answers once every host whose span the commit changed (the segments\' peers, the destination, the source) acknowledged it (202 if not within the timeout, with `pendingHostIds`: the hosts whose ack is missing).',
        parameters: [idParam, ...openApiParameters(WAIT_QUERY)],
        responses: { '200': migration('committed (completed once every ack is in)'), '202': migration('committed, acks still missing after the timeout'), ...errors },
      },
    },
    '/v1/migrations/{id}/abort': {
      post: { tags: ['migrations'], summary: "Abort: the destination's prepared state is withdrawn; peers never changed. Idempotent", parameters: [idParam], responses: { '200': migration('aborted'), ...errors } },
    },
  },
  schemas: {
    migration: {
      type: 'object',
      properties: {
        id: str,
        vmId: nullableStr,
        portIds: { type: 'array', items: str },
        sourceHostId: str,
        destinationHostId: str,
        state: { type: 'string', enum: MIGRATION_STATES },
        createdAt: str,
        expiresAt: str,
        pendingHostIds: { type: 'array', items: str, description: 'a commit with wait=realized answered 202: the hosts whose acknowledgement of the commit was missing' },
        timeline: {
          type: 'array',
          items: { type: 'object', properties: { event: { type: 'string', enum: MIGRATION_EVENTS }, at: str, revision: { type: 'integer', description: 'the revision the event wrote, if any' } } },
        },
      },
    },
  },
};
