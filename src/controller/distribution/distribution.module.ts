import { Module } from '@nestjs/common';
import { AgentStatusRepository } from './agent-status.repository';
import { RealizationService } from './realization.service';
import { SpanFeed } from './span-feed';
import { SyncServer } from './sync.server';

@Module({
  providers: [AgentStatusRepository, SpanFeed, SyncServer, RealizationService],
  exports: [SpanFeed, SyncServer, RealizationService, AgentStatusRepository],
})
export class DistributionModule {}
