import { json, nullableInt, nullableStr, record, ref, str, type ApiDescription } from '../http/openapi';
import { openApiParameters } from '../http/query';
import { EVENT_LIST_QUERY } from './event.schemas';

/** Who an event names: a token's caller, the controller itself, or a caller without a valid token. */
const actor = {
  oneOf: [
    record({ kind: { type: 'string', enum: ['token'] }, tokenId: str, name: str, role: str, source: str, method: str, route: str }),
    record({ kind: { type: 'string', enum: ['system'] }, name: str }),
    record({ kind: { type: 'string', enum: ['anonymous'] }, source: str, method: str, route: str }),
  ],
};

/** The route of EventController. */
export const eventApi: ApiDescription = {
  paths: {
    '/v1/events': {
      get: {
        operationId: 'listEvents',
        tags: ['events'],
        summary: 'The audit trail: accepted writes and refused calls, newest first',
        parameters: openApiParameters(EVENT_LIST_QUERY),
        responses: { '200': { description: 'a page', ...json(record({ items: { type: 'array', items: ref('event') }, nextCursor: nullableStr })) } },
        errors: [],
      },
    },
  },
  schemas: {
    event: record(
      {
        id: { type: 'string', description: 'the stream entry id (`-d` after it for a refusal)' },
        at: str,
        type: { type: 'string', enum: ['write', 'denied'] },
        actor,
        revision: { ...nullableInt, description: 'the revision the write made; null for writes outside the desired state (tokens) and refusals' },
        resources: { type: 'array', items: record({ kind: str, id: str }) },
        code: { type: 'string', description: 'denied only: UNAUTHENTICATED or FORBIDDEN' },
        reason: { type: 'string', description: 'denied only: why' },
      },
      { optional: ['code', 'reason'] },
    ),
  },
};
