import { Controller, Get, Query } from '@nestjs/common';
import { Allow } from '../auth/access';
import { parseQuery, QueryParams } from '../http/query';
import { DEFAULT_PAGE_LIMIT } from '../store/page';
import { EventRepository } from './event.repository';
import { EVENT_LIST_QUERY } from './event.schemas';

/** The audit trail: who changed what, and who was refused, newest first. */
@Controller('v1/events')
export class EventController {
  constructor(private readonly events: EventRepository) {}

  @Get()
  @Allow('auditor')
  @QueryParams(EVENT_LIST_QUERY)
  list(@Query() query: unknown) {
    const q = parseQuery(EVENT_LIST_QUERY, query);
    return this.events.list(q.limit ?? DEFAULT_PAGE_LIMIT, q.cursor, { sinceMs: q.since, untilMs: q.until, actor: q.actor, resourceId: q.resourceId, kind: q.kind, type: q.type });
  }
}
