import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import { join } from 'node:path';
import { overlayProto } from '../../src/common/proto';
import type { SyncRequest } from '../../src/generated/overlay/v1/SyncRequest';
import type { SyncResponse__Output } from '../../src/generated/overlay/v1/SyncResponse';

/**
 * A bare protocol client: sends Hello and nothing unless told, records what it receives and how
 * the stream ended. For what in-process agents cannot show: the claim rules, hostile messages.
 */
export class RawAgent {
  private readonly client: InstanceType<typeof overlayProto.SyncService>;
  private readonly stream: grpc.ClientDuplexStream<SyncRequest, SyncResponse__Output>;
  /** The revision of the last snapshot end or delta received; 0 before. */
  revision = 0;
  messages = 0;
  /** Every message received, in order. */
  readonly received: SyncResponse__Output[] = [];
  /** How the stream ended (undefined while open). */
  ended?: { code: grpc.status; details: string };

  /** `hello`: more Hello fields (appliedRevision, epoch...), as the wire carries them. */
  constructor(target: string, hostName: string, instanceId?: string, hello: Record<string, unknown> = {}) {
    this.client = new overlayProto.SyncService(target, grpc.credentials.createInsecure());
    this.stream = this.client.Sync();
    this.stream.on('data', (m: SyncResponse__Output) => {
      this.messages++;
      this.received.push(m);
      this.revision = m.snapshotEnd?.revision ?? m.delta?.revision ?? this.revision;
    });
    this.stream.on('error', (err: grpc.ServiceError) => (this.ended ??= { code: err.code, details: err.details }));
    this.stream.on('end', () => (this.ended ??= { code: grpc.status.OK, details: 'ended' }));
    // Typed loosely on purpose: the Hello fields are what the wire carries.
    const fields: Record<string, unknown> = { hostName, agentVersion: 'raw-test', ...hello };
    if (instanceId !== undefined) {
      fields.instanceId = instanceId;
    }
    this.stream.write({ hello: fields });
  }

  get delivered(): boolean {
    return this.revision > 0;
  }

  /** Acknowledges the last revision received (what an agent does once it applied it). */
  ack(): void {
    this.send({ ack: { revision: this.revision } });
  }

  send(request: SyncRequest): void {
    this.stream.write(request);
  }

  close(): void {
    this.stream.cancel();
    this.client.close();
  }
}

const syncProto = protobuf.loadSync(join(__dirname, '..', '..', 'proto', 'overlay', 'v1', 'sync.proto'));
const SyncRequestType = syncProto.lookupType('overlay.v1.SyncRequest');
const SyncResponseType = syncProto.lookupType('overlay.v1.SyncResponse');

/** A SyncRequest's wire bytes (protobufjs, from the .proto: not the controller's own code). */
export const encodeRequest = (request: SyncRequest): Buffer => Buffer.from(SyncRequestType.encode(SyncRequestType.fromObject(request)).finish());

/**
 * A Sync stream that writes whatever bytes it is given (a client that does not speak protobuf
 * properly). `revision`: that of the last snapshot end or delta received (0 before).
 */
export function bytesStream(target: string): { write(bytes: Buffer): void; ended: () => grpc.StatusObject | undefined; revision: () => number; close(): void } {
  const Client = grpc.makeGenericClientConstructor(
    {
      Sync: {
        path: '/overlay.v1.SyncService/Sync',
        requestStream: true,
        responseStream: true,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    'SyncService',
  );
  const client = new Client(target, grpc.credentials.createInsecure());
  const call = (client as unknown as { Sync(): grpc.ClientDuplexStream<Buffer, Buffer> }).Sync();
  let status: grpc.StatusObject | undefined;
  let revision = 0;
  call.on('data', (bytes: Buffer) => {
    const m = SyncResponseType.toObject(SyncResponseType.decode(bytes), { longs: Number }) as SyncResponse__Output;
    revision = Number(m.snapshotEnd?.revision ?? m.delta?.revision ?? revision);
  });
  call.on('error', (err: grpc.ServiceError) => (status ??= { code: err.code, details: err.details, metadata: err.metadata }));
  call.on('status', (s: grpc.StatusObject) => (status ??= s));
  return { write: (b) => call.write(b), ended: () => status, revision: () => revision, close: () => (call.cancel(), client.close()) };
}
