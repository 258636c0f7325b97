import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { overlayProto } from '../../common/proto';
import type { HostObservation } from '../../generated/overlay/v1/HostObservation';
import type { MirrorTapCounters } from '../../generated/overlay/v1/MirrorTapCounters';
import type { PortFailure } from '../../generated/overlay/v1/PortFailure';
import type { SyncRequest } from '../../generated/overlay/v1/SyncRequest';
import type { SyncResponse__Output } from '../../generated/overlay/v1/SyncResponse';
import type { AgentConfig } from '../config';
import type { Logger } from '../../common/logger';
import { Backoff } from './backoff';

export const AGENT_VERSION = '0.1.0';
/** What this agent implements beyond the base protocol, announced in every Hello. */
const FEATURES = ['connection-handover'];

type SyncStream = grpc.ClientDuplexStream<SyncRequest, SyncResponse__Output>;

/** What the client asks of the rest of the agent. */
export interface StreamHandler {
  /** The Hello's resume point: the revision, its record and the epoch the agent holds. */
  resumeFrom(): { appliedRevision: number; appliedRecord: string; epoch: string };
  /** A stream opens: nothing another stream sent is continued on it. */
  opened(): void;
  /** Handles one message, in the agent's work queue (in the order received). */
  message(message: SyncResponse__Output): Promise<void>;
  /** The stream was lost (not when the client stops). */
  lost(): void;
}

/**
 * The agent's link to the controller: one Sync stream at a time, opened with a Hello (host,
 * VTEP, the revision and epoch held, this process's instance id, its features).
 *
 * A lost stream is opened again after a backoff delay (exponential, full jitter), on the next
 * replica when there are several; the backoff starts over only once a stream delivered a
 * snapshot end or a delta. Refused or replaced with ALREADY_EXISTS (another agent holds the
 * host), it says so once, until a stream delivers again, and keeps retrying with the same backoff.
 *
 * Acks and nacks name only a revision the current stream carried (`streamRevision`, the last
 * snapshot end or delta it delivered and the agent handled): the controller refuses any other.
 */
export class ControllerClient {
  /** Sent in every Hello: tells this process's streams from another agent's claiming the same host. */
  readonly instanceId = randomBytes(8).toString('hex');
  /** Streams opened, for tests and logs. */
  connects = 0;
  private client?: InstanceType<typeof overlayProto.SyncService>;
  /** Index into config.controllers of the replica in use; moves on when a stream is lost. */
  private target = 0;
  private stream?: SyncStream;
  /** The revision of the last snapshot end or delta the current stream carried: the only one an Ack or Nack may name. */
  private streamRevision?: number;
  /** Set when another agent holds the host (ALREADY_EXISTS, logged once), until a stream delivers again. */
  private heldElsewhere = false;
  private reconnectTimer?: NodeJS.Timeout;
  private stopped = true;
  private readonly backoff: Backoff;

  constructor(
    private readonly config: AgentConfig,
    private readonly handler: StreamHandler,
    /** Queues a task on the agent's work queue. */
    private readonly enqueue: (task: () => Promise<void>) => void,
    private readonly logger: Logger,
    random: () => number,
  ) {
    this.backoff = new Backoff(config.backoffBaseMs, config.backoffMaxMs, random);
  }

  get connected(): boolean {
    return this.stream !== undefined;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** Closes the stream and opens no other. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.stream?.cancel();
    this.stream = undefined;
    this.client?.close();
    this.client = undefined;
  }

  /** Writes to the stream; false when there is none (the request is dropped). */
  send(request: SyncRequest): boolean {
    if (!this.stream) {
      return false;
    }
    this.stream.write(request);
    return true;
  }

  /**
   * Acks `revision`, but for `failedPorts` (nacks it with `error`), if the current stream carried it: the controller
   * refuses an Ack or Nack of a revision its stream did not send (a revision from before a
   * reconnect, say, while the new stream has sent nothing yet). Returns whether it was sent.
   */
  report(revision: number, error?: string, failedPorts: PortFailure[] = []): boolean {
    if (revision !== this.streamRevision) {
      return false;
    }
    return this.send(error === undefined ? { ack: { revision, failedPorts } } : { nack: { revision, error } });
  }

  /** Reports what the mirror taps copied (and those not programmed); false when there is no stream (the next report carries the totals). */
  mirrorCounters(entries: MirrorTapCounters[]): boolean {
    return this.sendReport({ mirrorCounters: { entries } });
  }

  /** Reports what the agent observed of its host's kernel (taps, bridges, inventory); false when there is no stream (a later pass sends it). */
  hostObserved(observation: HostObservation): boolean {
    return this.sendReport({ observed: observation });
  }

  /**
   * Sends a report only on a stream that carried a snapshot end or a delta: the controller refuses
   * any message between the Hello and its first answer (a report due then, from a periodic pass
   * or an inventory collection that finished just after a reconnect, waits for a later one).
   */
  private sendReport(request: SyncRequest): boolean {
    return this.streamRevision !== undefined && this.send(request);
  }

  /** Drops the stream, so that the next one starts with a fresh snapshot. */
  resync(): void {
    this.stream?.cancel();
  }

  private credentials(): grpc.ChannelCredentials {
    const tls = this.config.tls;
    if (!tls) {
      return grpc.credentials.createInsecure();
    }
    return grpc.credentials.createSsl(readFileSync(tls.ca), readFileSync(tls.key), readFileSync(tls.cert));
  }

  private connect(): void {
    if (this.stopped) {
      return;
    }
    // A 16 MiB HTTP/2 window: with grpc-js's default (64 KiB) a 17 MB snapshot needs ~270
    // WINDOW_UPDATE round trips between two busy event loops.
    const options: grpc.ChannelOptions = { 'grpc.keepalive_time_ms': 20_000, 'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc-node.flow_control_window': 16 * 1024 * 1024 };
    if (this.config.tls?.serverName) {
      options['grpc.ssl_target_name_override'] = this.config.tls.serverName;
    }
    this.client ??= new overlayProto.SyncService(this.config.controllers[this.target], this.credentials(), options);
    const stream = this.client.Sync();
    this.stream = stream;
    this.streamRevision = undefined;
    this.connects++;
    this.handler.opened();
    const resume = this.handler.resumeFrom();
    stream.write({
      hello: {
        hostName: this.config.hostName,
        vtepIp: this.config.vtepIp ?? '',
        agentVersion: AGENT_VERSION,
        ...resume,
        instanceId: this.instanceId,
        features: FEATURES,
      },
    });
    const controller = this.config.controllers[this.target];
    const resumeFrom = resume.appliedRevision;
    let announced = false;
    stream.on('data', (message: SyncResponse__Output) => {
      if (this.stream === stream && !announced && (message.snapshotChunk || message.snapshotEnd || message.delta)) {
        // One line a connection, once the controller has answered with what it sends: the deltas since our revision, or a snapshot.
        announced = true;
        const start = message.delta ? 'resume' : 'snapshot';
        this.logger.info(`connected to ${controller}: ${start === 'resume' ? `resuming from revision ${resumeFrom}` : 'receiving a snapshot'}`, { event: 'connect', controller, start, ...(start === 'resume' && { resumedFrom: resumeFrom }) });
      }
      if (this.stream === stream && message.snapshotEnd) {
        this.logger.info(`snapshot at revision ${message.snapshotEnd.revision} received (${message.snapshotEnd.resourceCount} resources)`, { event: 'snapshot', revision: message.snapshotEnd.revision, resources: message.snapshotEnd.resourceCount });
      }
      // The stream works once it delivers a snapshot or a delta (or says to hold: the controller
      // answered): only then does the backoff start over.
      if (this.stream === stream && (message.snapshotEnd || message.delta || message.hold)) {
        this.backoff.reset();
        if (this.heldElsewhere) {
          this.heldElsewhere = false;
          this.logger.info(`host ${this.config.hostName}: holding the stream again (${this.config.controllers[this.target]})`);
        }
      }
      this.enqueue(() => {
        const carried = message.snapshotEnd?.revision ?? message.delta?.revision;
        if (carried !== undefined && stream === this.stream) {
          this.streamRevision = carried;
        }
        return this.handler.message(message);
      });
    });
    const lost = (reason: string, code?: grpc.status) => {
      if (this.stream !== stream) {
        return;
      }
      this.stream = undefined;
      this.handler.lost();
      if (this.stopped) {
        return;
      }
      const delay = this.backoff.next();
      const from = this.config.controllers[this.target];
      if (this.config.controllers.length > 1) {
        // Try the next replica: the one we lost may be gone for good.
        this.client?.close();
        this.client = undefined;
        this.target = (this.target + 1) % this.config.controllers.length;
      }
      if (code !== grpc.status.ALREADY_EXISTS) {
        this.logger.warn(`stream to ${from} lost (${reason}); keeping the last known state, reconnecting to ${this.config.controllers[this.target]} in ${delay} ms`, { event: 'disconnect', controller: from, reason, retryInMs: delay });
      } else if (!this.heldElsewhere) {
        // Another agent claims this host (a duplicate, or this host's next agent): the controller
        // refuses us while it holds the stream. Not a failure to report on every attempt.
        this.heldElsewhere = true;
        this.logger.warn(`host ${this.config.hostName} is held by another agent (${reason}); keeping the last known state, retrying with backoff up to ${this.config.backoffMaxMs} ms (not logged again until it connects)`);
      }
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    };
    stream.on('error', (err: grpc.ServiceError) => lost(`${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`, err.code));
    stream.on('end', () => lost('ended by the controller'));
  }
}
