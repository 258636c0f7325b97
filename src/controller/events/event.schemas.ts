import { ErrorCode, OverlayError } from '../errors';
import { enumParam, idParam, integerParam, stringParam, timeParam, type QueryParam, type QuerySpec } from '../http/query';
import { NAME_PATTERN } from '../model/value-parsers';
import { DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT } from '../store/page';

const MAX_ID_PART = 2n ** 64n - 1n;

/** An event id: a stream entry id (`<ms>-<seq>`, each part below 2^64, above 0-0), `-d` after it for a refusal. */
const eventCursor: QueryParam<string> = {
  code: ErrorCode.InvalidCursor,
  schema: { type: 'string', pattern: '^\\d{1,20}-\\d{1,20}(-d)?$' },
  description: 'nextCursor of the previous page',
  parse(raw, name) {
    const m = /^(\d{1,20})-(\d{1,20})(-d)?$/.exec(raw);
    const [ms, seq] = m ? [BigInt(m[1]), BigInt(m[2])] : [0n, 0n];
    if (!m || ms > MAX_ID_PART || seq > MAX_ID_PART || ms + seq === 0n) {
      throw new OverlayError(ErrorCode.InvalidCursor, 'cursor must be the nextCursor of a previous page', { field: name });
    }
    // Without leading zeros: the list compares its time part with `until`.
    return `${ms}-${seq}${m[3] ?? ''}`;
  },
};

/** The resource kinds an event may name. */
export const EVENT_RESOURCE_KINDS = ['tenant', 'segment', 'host', 'port', 'securityGroup', 'mirrorSession', 'migration', 'token'] as const;

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
