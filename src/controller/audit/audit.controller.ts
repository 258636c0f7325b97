import { Controller, Get } from '@nestjs/common';
import { Allow } from '../auth/access';
import { AuditService } from './audit.service';

/** The NIST SP 800-125B audit of the live configuration: deployment-wide, so not for tenant tokens. */
@Controller('v1/audit')
export class AuditController {
  constructor(private readonly audits: AuditService) {}

  @Get()
  @Allow('operator', 'auditor')
  audit() {
    return this.audits.audit();
  }
}
