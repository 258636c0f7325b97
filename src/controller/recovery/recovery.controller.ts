import { Controller, Get, HttpCode, Post } from '@nestjs/common';
import { Allow } from '../auth/access';
import type { Actor } from '../auth/principal';
import { Acting } from '../auth/request-context';
import { StoreRecovery } from '../store/store-recovery';

/** The store recovery (store/store-recovery.ts): its status, and the admin's decision. */
@Controller('v1/admin/recovery')
export class RecoveryController {
  constructor(private readonly recovery: StoreRecovery) {}

  @Get()
  @Allow('operator', 'auditor')
  status() {
    return this.recovery.status();
  }

  /** Admin only: the store's state, as it is, becomes the truth agents are sent. */
  @Post('accept')
  @Allow()
  @HttpCode(200)
  accept(@Acting() actor: Actor) {
    return this.recovery.accept(actor);
  }
}
