import { ErrorCode, OverlayError } from '../errors';
import { enumParam, idParam, integerParam, stringParam, type QueryParam, type QuerySpec } from '../http/query';
import { NAME_PATTERN } from '../model/value-parsers';
import { DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT } from '../store/page';

/** An ISO 8601 time with its zone. */
function timeParam(description: string): QueryParam<number> {
  return {
    code: ErrorCode.InvalidValue,
    schema: { type: 'string', format: 'date-time' },
    description,
    parse(raw, name) {
      const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(raw) ? Date.parse(raw) : NaN;
      if (Number.isNaN(ms)) {
        throw new OverlayError(ErrorCode.InvalidValue, `${name} must be an ISO 8601 time with its zone, e.g. 2027-01-31T00:00:00Z`, { field: name });
      }
      return ms;
    },
  };
}

const eventCursor: QueryParam<string> = {
  code: ErrorCode.InvalidCursor,
  schema: { type: 'string', pattern: '^\\d{1,20}-\\d{1,20}$' },
  description: 'nextCursor of the previous page',
  parse(raw, name) {
    if (!/^\d{1,20}-\d{1,20}$/.test(raw)) {
      throw new OverlayError(ErrorCode.InvalidCursor, 'cursor must be the nextCursor of a previous page', { field: name });
    }
    return raw;
  },
};

/** The resource kinds an event may name. */
export const EVENT_RESOURCE_KINDS = ['tenant', 'segment', 'host', 'port', 'securityGroup', 'migration', 'token'] as const;

export const EVENT_LIST_QUERY = {
  limit: integerParam({ min: 1, max: MAX_PAGE_LIMIT, default: DEFAULT_PAGE_LIMIT, description: 'events per page' }),
  cursor: eventCursor,
  since: timeParam('only events at or after this time'),
  until: timeParam('only events at or before this time'),
  actor: stringParam({ min: 1, max: 63, pattern: NAME_PATTERN, description: "only events of this actor: a token's id or name, or a system actor's name" }),
  resourceId: idParam('only events that touched this resource'),
  kind: enumParam(EVENT_RESOURCE_KINDS, 'only events that touched a resource of this kind'),
  type: enumParam(['write', 'denied'] as const, 'write: accepted changes; denied: refused calls (401, 403)'),
} satisfies QuerySpec;
