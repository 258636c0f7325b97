import { Module } from '@nestjs/common';
import { HostObservationIntake } from './host-observation.intake';
import { HostObservationRepository } from './host-observation.repository';
import { MirrorCountersIntake } from './mirror-counters.intake';
import { MirrorCountersRepository } from './mirror-counters.repository';
import { AckRecorder } from './ack-recorder';
import { AgentStatusRepository } from './agent-status.repository';
import { HelloHandler } from './hello';
import { DistributionPipeline } from './pipeline';
import { RealizationService } from './realization.service';
import { SessionRegistry } from './session-registry';
import { SpanFeed } from './span-feed';
import { SyncServer } from './sync.server';

/** The distribution pipeline's stages (see pipeline.ts for their order), and realization over them. */
@Module({
  providers: [AgentStatusRepository, MirrorCountersRepository, MirrorCountersIntake, HostObservationRepository, HostObservationIntake, SpanFeed, AckRecorder, SessionRegistry, HelloHandler, SyncServer, DistributionPipeline, RealizationService],
  exports: [MirrorCountersRepository, HostObservationRepository, SpanFeed, AckRecorder, SessionRegistry, SyncServer, DistributionPipeline, RealizationService, AgentStatusRepository],
})
export class DistributionModule {}
