import { ErrorCode, OverlayError } from '../errors';
import { enumParam, idParam, integerParam, timeParam, type QueryParam, type QuerySpec } from '../http/query';
import { DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT } from '../store/page';
import { RECOMMENDATIONS } from './audit';
import { SEVERITIES } from './audit.types';
import { FINDING_CURSOR } from './finding-history';

const findingCursor: QueryParam<string> = {
  code: ErrorCode.InvalidCursor,
  schema: { type: 'string', pattern: FINDING_CURSOR.source },
  description: 'nextCursor of the previous page',
  parse(raw, name) {
    if (!FINDING_CURSOR.test(raw)) {
      throw new OverlayError(ErrorCode.InvalidCursor, 'cursor must be the nextCursor of a previous page', { field: name });
    }
    return raw;
  },
};

/** `GET /v1/audit/findings`. */
export const FINDING_LIST_QUERY = {
  limit: integerParam({ min: 1, max: MAX_PAGE_LIMIT, default: DEFAULT_PAGE_LIMIT, description: 'findings per page' }),
  cursor: findingCursor,
  since: timeParam('only findings open at some time at or after this time (still open, or closed at or after it)'),
  until: timeParam('only findings opened at or before this time'),
  state: enumParam(['open', 'closed'] as const, 'open: found by the last evaluation; closed: no longer found'),
  recommendation: enumParam(
    RECOMMENDATIONS.map((r) => r.id),
    'only findings of this recommendation',
  ),
  hostId: idParam('only findings about this host'),
  severity: enumParam(SEVERITIES, 'only findings of this severity'),
} satisfies QuerySpec;
