import { Controller, Get, Query } from '@nestjs/common';
import { Allow } from '../auth/access';
import { parseQuery, QueryParams } from '../http/query';
import { DEFAULT_PAGE_LIMIT } from '../store/page';
import { FINDING_LIST_QUERY } from './audit.schemas';
import { AuditService } from './audit.service';

/** The NIST SP 800-125B audit of the live configuration and its findings' history: deployment-wide, so not for tenant tokens. */
@Controller('v1/audit')
export class AuditController {
  constructor(private readonly audits: AuditService) {}

  @Get()
  @Allow('operator', 'auditor')
  audit() {
    return this.audits.audit();
  }

  @Get('findings')
  @Allow('operator', 'auditor')
  @QueryParams(FINDING_LIST_QUERY)
  findings(@Query() query: unknown) {
    const q = parseQuery(FINDING_LIST_QUERY, query);
    return this.audits.findings(
      { sinceMs: q.since, untilMs: q.until, state: q.state, recommendation: q.recommendation, hostId: q.hostId, severity: q.severity },
      q.limit ?? DEFAULT_PAGE_LIMIT,
      q.cursor,
    );
  }
}
