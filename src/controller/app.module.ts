import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { ControllerConfig } from './config';
import { DistributionModule } from './distribution/distribution.module';
import { HealthController } from './health/health.controller';
import { HostController } from './hosts/host.controller';
import { HostRepository } from './hosts/host.repository';
import { HostService } from './hosts/host.service';
import { ErrorFilter } from './http/error.filter';
import { ConnectionHandover } from './migrations/connection-handover';
import { QueryGuard } from './http/query';
import { MigrationController } from './migrations/migration.controller';
import { MigrationMonitor } from './migrations/migration.monitor';
import { MigrationRepository } from './migrations/migration.repository';
import { MigrationService } from './migrations/migration.service';
import { PortController } from './ports/port.controller';
import { PortRepository } from './ports/port.repository';
import { PortService } from './ports/port.service';
import { SecurityGroupController } from './security-groups/security-group.controller';
import { SecurityGroupRepository } from './security-groups/security-group.repository';
import { SecurityGroupService } from './security-groups/security-group.service';
import { SegmentController } from './segments/segment.controller';
import { SegmentRepository } from './segments/segment.repository';
import { SegmentService } from './segments/segment.service';
import { StoreModule } from './store/store.module';
import { TenantController } from './tenants/tenant.controller';
import { TenantRepository } from './tenants/tenant.repository';
import { TenantService } from './tenants/tenant.service';

/** overlayd's root module; the configuration is passed in (read once at boot, or built by a test). */
@Module({})
export class AppModule {
  static forConfig(config: ControllerConfig): DynamicModule {
    return {
      module: AppModule,
      global: true,
      imports: [StoreModule, DistributionModule],
      controllers: [HealthController, TenantController, SegmentController, HostController, PortController, SecurityGroupController, MigrationController],
      providers: [
        { provide: ControllerConfig, useValue: config },
        { provide: APP_FILTER, useClass: ErrorFilter },
        // Every route's query is checked against what the route declares (none by default).
        { provide: APP_GUARD, useClass: QueryGuard },
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
        MigrationRepository,
        MigrationService,
        MigrationMonitor,
        ConnectionHandover,
      ],
      exports: [ControllerConfig],
    };
  }
}
