import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { MaterializedView } from '../store/materialized-view';
import { AckRecorder } from './ack-recorder';
import { SessionRegistry } from './session-registry';
import { SyncServer, type TransportSecurity } from './sync.server';

/**
 * The distribution pipeline, from a change record in Redis to a write on an agent's stream:
 *
 * 1. MaterializedView (store/): the state at one revision, then every change record tailed from
 *    the change log, applied in revision order.
 * 2. SpanIndex (desired-state/), owned by the SpanFeed: which hosts' spans a record changed, and how.
 * 3. SpanFeed: encodes each changed resource once and hands every host's delta to its session;
 *    computes a resuming host's delta from the records it missed the same way.
 * 4. SessionRegistry and HostSession: one stream per host on this replica (flow control,
 *    snapshots, revision markers), opened by the HelloHandler, served by the SyncServer (gRPC).
 * 5. AckRecorder: what agents acknowledge, to Redis and to the listeners (realization, migrations).
 *
 * Starts upstream first, so nothing downstream runs without its source: the view loads (the feed
 * follows it from construction), then the sessions' epoch and timers, then the gRPC port opens.
 * Stops at application shutdown, after Nest's module-destroy phase has stopped the view's tail
 * (its own hook) and unsubscribed the feed: the streams end, the last acks are written, then the
 * gRPC server closes.
 */
@Injectable()
export class DistributionPipeline implements OnApplicationShutdown {
  constructor(
    private readonly view: MaterializedView,
    private readonly sessions: SessionRegistry,
    private readonly recorder: AckRecorder,
    private readonly server: SyncServer,
  ) {}

  /** Loads the view and opens the gRPC port; returns the port. Call once. */
  async start(security: TransportSecurity): Promise<number> {
    await this.view.start();
    await this.sessions.start();
    return this.server.start(security);
  }

  /** Idempotent. */
  async stop(): Promise<void> {
    this.sessions.stop();
    await this.recorder.stop();
    await this.server.stop();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.stop();
  }
}
