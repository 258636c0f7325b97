import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { AccessGuard } from './auth/access.guard';
import { Authenticator } from './auth/authenticator';
import { HostScope } from './auth/host-scope';
import { TenantScope } from './auth/tenant-scope';
import { routeTable, type Route } from './auth/route-table';
import { AuditController } from './audit/audit.controller';
import { auditApi } from './audit/audit.openapi';
import { AuditService } from './audit/audit.service';
import { AuditEvaluator } from './audit/audit.evaluator';
import { FindingHistory } from './audit/finding-history';
import { StrictTrunks } from './audit/strict-trunks';
import { EventController } from './events/event.controller';
import { eventApi } from './events/event.openapi';
import { EventRepository } from './events/event.repository';
import { TokenController } from './tokens/token.controller';
import { tokenApi } from './tokens/token.openapi';
import { TokenRepository } from './tokens/token.repository';
import { TokenService } from './tokens/token.service';
import { ControllerConfig } from './config';
import { DistributionModule } from './distribution/distribution.module';
import { HealthController } from './health/health.controller';
import { healthApi } from './health/health.openapi';
import { HostController } from './hosts/host.controller';
import { hostApi } from './hosts/host.openapi';
import { HostRepository } from './hosts/host.repository';
import { HostService } from './hosts/host.service';
import { ErrorFilter } from './http/error.filter';
import { openApiDocument, type ApiDescription } from './http/openapi';
import { ConnectionHandover } from './migrations/connection-handover';
import { QueryGuard } from './http/query';
import { ControllerMetrics } from './metrics/controller-metrics';
import { MetricsController } from './metrics/metrics.controller';
import { metricsApi } from './metrics/metrics.openapi';
import { MigrationController } from './migrations/migration.controller';
import { migrationApi } from './migrations/migration.openapi';
import { MigrationMonitor } from './migrations/migration.monitor';
import { MigrationRepository } from './migrations/migration.repository';
import { MigrationService } from './migrations/migration.service';
import { MirrorSessionController } from './mirror-sessions/mirror-session.controller';
import { mirrorSessionApi } from './mirror-sessions/mirror-session.openapi';
import { MirrorSessionRepository } from './mirror-sessions/mirror-session.repository';
import { MirrorSessionService } from './mirror-sessions/mirror-session.service';
import { PortController } from './ports/port.controller';
import { portApi } from './ports/port.openapi';
import { PortRepository } from './ports/port.repository';
import { PortService } from './ports/port.service';
import { SecurityGroupController } from './security-groups/security-group.controller';
import { securityGroupApi } from './security-groups/security-group.openapi';
import { SecurityGroupRepository } from './security-groups/security-group.repository';
import { SecurityGroupService } from './security-groups/security-group.service';
import { SegmentController } from './segments/segment.controller';
import { segmentApi } from './segments/segment.openapi';
import { SegmentRepository } from './segments/segment.repository';
import { SegmentService } from './segments/segment.service';
import { RecoveryController } from './recovery/recovery.controller';
import { RecoveryGuard } from './recovery/recovery.guard';
import { recoveryApi } from './recovery/recovery.openapi';
import { StatusPageController } from './status-page/status-page.controller';
import { StoreModule } from './store/store.module';
import { TenantController } from './tenants/tenant.controller';
import { tenantApi } from './tenants/tenant.openapi';
import { TenantRepository } from './tenants/tenant.repository';
import { TenantService } from './tenants/tenant.service';

/** Every controller of the API: their routes are the route table (apiRoutes). */
export const API_CONTROLLERS = [HealthController, TenantController, SegmentController, HostController, PortController, SecurityGroupController, MirrorSessionController, MigrationController, TokenController, EventController, AuditController, MetricsController, RecoveryController];

/** Every route of the API with who may call it: what the OpenAPI document states and the access tests check. */
export function apiRoutes(): Route[] {
  return routeTable(API_CONTROLLERS);
}

/** What overlayd serves besides its API: the status page (public, it holds no data; not in the OpenAPI document). */
export const PAGE_CONTROLLERS = [StatusPageController];

/** The routes of those pages, declared like the API's (each @Public), checked in route-table.spec.ts. */
export function pageRoutes(): Route[] {
  return routeTable(PAGE_CONTROLLERS);
}

/** overlayd's root module; the configuration is passed in (read once at boot, or built by a test). */
@Module({})
export class AppModule {
  static forConfig(config: ControllerConfig): DynamicModule {
    return {
      module: AppModule,
      global: true,
      imports: [StoreModule, DistributionModule],
      controllers: [...API_CONTROLLERS, ...PAGE_CONTROLLERS],
      providers: [
        { provide: ControllerConfig, useValue: config },
        { provide: APP_FILTER, useClass: ErrorFilter },
        // Who may call: the route's declared roles (auth/access.ts), before anything else of the request is looked at.
        { provide: APP_GUARD, useClass: AccessGuard },
        // Every route's query is checked against what the route declares (none by default).
        { provide: APP_GUARD, useClass: QueryGuard },
        // Writes wait while the store is in recovery (recovery/).
        { provide: APP_GUARD, useClass: RecoveryGuard },
        Authenticator,
        TenantScope,
        HostScope,
        TokenRepository,
        TokenService,
        EventRepository,
        TenantRepository,
        TenantService,
        SegmentRepository,
        SegmentService,
        HostRepository,
        HostService,
        PortRepository,
        PortService,
        SecurityGroupRepository,
        SecurityGroupService,
        MirrorSessionRepository,
        MirrorSessionService,
        MigrationRepository,
        MigrationService,
        MigrationMonitor,
        ConnectionHandover,
        AuditService,
        FindingHistory,
        StrictTrunks,
        AuditEvaluator,
        ControllerMetrics,
      ],
      exports: [ControllerConfig],
    };
  }
}

/** Each controller's route descriptions, from beside it (`*.openapi.ts`). */
export function apiDescriptions(maxBatchSize: number): ApiDescription[] {
  return [tenantApi, segmentApi, hostApi, portApi(maxBatchSize), securityGroupApi, mirrorSessionApi, migrationApi, tokenApi(), eventApi, auditApi, healthApi, metricsApi, recoveryApi];
}

/** The OpenAPI document served at /docs: the route descriptions, with who may call each route. */
export function buildOpenApiDocument(maxBatchSize: number): Record<string, unknown> {
  return openApiDocument(apiDescriptions(maxBatchSize), apiRoutes());
}
