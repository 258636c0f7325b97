import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { ErrorCode, OverlayError } from '../errors';
import { StoreRecovery } from '../store/store-recovery';
import { writesDuringRecovery } from './recovery-routes';

/**
 * While this replica knows the store is in recovery, writes are refused before they run (503
 * STORE_RECOVERY), but for the recovery's own routes and tokens. The scripts refuse them too
 * (lua-prelude.ts): this answers the same before a handler reads the emptied store (a 404 for an
 * object that is only lost), and for the second a replica may take to learn of the recovery.
 */
@Injectable()
export class RecoveryGuard implements CanActivate {
  constructor(private readonly recovery: StoreRecovery) {}

  canActivate(context: ExecutionContext): boolean {
    if (!this.recovery.active) {
      return true;
    }
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    if (writesDuringRecovery(request.method, request.routeOptions.url ?? request.url)) {
      return true;
    }
    const record = this.recovery.current!;
    throw new OverlayError(
      ErrorCode.StoreRecovery,
      `the store is in recovery (${record.reason}, since ${record.detectedAt}): writes are refused until an admin accepts its state (POST /v1/admin/recovery/accept) or restores it; see GET /v1/admin/recovery`,
    );
  }
}
