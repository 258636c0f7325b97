import { errors, json, nullableInt, str, type ApiDescription } from '../http/openapi';
import { openApiParameters } from '../http/query';
import { EVENT_LIST_QUERY } from './event.schemas';

/** The route of EventController. */
export const eventApi: ApiDescription = {
  paths: {
    '/v1/events': {
      get: {
        tags: ['events'],
        summary: 'The audit trail: accepted writes and refused calls, newest first',
        parameters: openApiParameters(EVENT_LIST_QUERY),
        responses: { '200': { description: 'a page', ...json({ type: 'object', properties: { items: { type: 'array', items: { $ref: '#/components/schemas/event' } }, nextCursor: { type: 'string', nullable: true } } }) }, ...errors },
      },
    },
  },
  schemas: {
    event: {
      type: 'object',
      properties: {
        id: str,
        at: str,
        type: { type: 'string', enum: ['write', 'denied'] },
        actor: { type: 'object', description: "kind token (tokenId, name, role, source, method, route), system (name) or anonymous (source, method, route)" },
        revision: nullableInt,
        resources: { type: 'array', items: { type: 'object', properties: { kind: str, id: str } } },
        code: { type: 'string', description: 'denied: UNAUTHENTICATED or FORBIDDEN' },
        reason: str,
      },
    },
  },
};
