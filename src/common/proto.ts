import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as protobuf from 'protobufjs';
import type { ConnectionBatch } from '../generated/overlay/v1/ConnectionBatch';
import type { Resource } from '../generated/overlay/v1/Resource';
import type { ProtoGrpcType } from '../generated/sync';
import { FramedMessage, GRPC_FRAME_HEADER_BYTES, writeFrameHeader } from './grpc-frame';
import { embeddedSize, putEmbedded, putString, tag, utf8Length, varintLength, WIRE_LEN, WIRE_VARINT, writeVarint } from './proto-wire';

/**
 * Loads proto/overlay/v1 once, for both processes. The loader options must match the flags of
 * `npm run proto:gen` (the committed typings in src/generated describe exactly these shapes).
 *
 * The controller encodes each span resource once per revision and assembles Delta messages from
 * those bytes (protobuf concatenates repeated fields), so a change fanned out to many agents is
 * serialized once; the service definition therefore lets already-encoded Buffers through.
 */
export const LOADER_OPTIONS: protoLoader.Options = { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true };

function findProtoRoot(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'proto', 'overlay', 'v1', 'sync.proto'))) {
      return join(dir, 'proto');
    }
    if (dirname(dir) === dir) {
      throw new Error('proto/overlay/v1/sync.proto not found above ' + __dirname);
    }
  }
}

const protoRoot = findProtoRoot();
const protoFile = join(protoRoot, 'overlay', 'v1', 'sync.proto');
const packageDefinition = protoLoader.loadSync(protoFile, { ...LOADER_OPTIONS, includeDirs: [protoRoot] });
export const overlayProto = (grpc.loadPackageDefinition(packageDefinition) as unknown as ProtoGrpcType).overlay.v1;

const root = protobuf.loadSync(protoFile);
const ResourceType = root.lookupType('overlay.v1.Resource');
const SyncResponseType = root.lookupType('overlay.v1.SyncResponse');

/** A SyncResponse carrying a ConnectionBatch (rare, not a hot path: protobufjs' reflection). */
export function encodeConnections(batch: ConnectionBatch): Buffer {
  return Buffer.from(SyncResponseType.encode(SyncResponseType.fromObject({ connections: batch })).finish());
}

/**
 * The SyncService definition, with responses that may be pre-encoded Buffers or FramedMessages
 * (sent as they are where grpc-js lets them through, sendFramedMessagesAsIs; else their message).
 */
export function syncServiceDefinition(): grpc.ServiceDefinition {
  const original = packageDefinition['overlay.v1.SyncService'] as grpc.ServiceDefinition;
  const sync = original.Sync;
  return {
    Sync: {
      ...sync,
      responseSerialize: (value: unknown) => (Buffer.isBuffer(value) ? value : value instanceof FramedMessage ? value.message : sync.responseSerialize(value)),
      // Bytes that do not decode reach the session as a message of their own, which it refuses
      // with INVALID_ARGUMENT (grpc-js would end the stream with INTERNAL).
      requestDeserialize: (bytes: Buffer) => {
        try {
          return sync.requestDeserialize(bytes);
        } catch (err) {
          return { undecodable: `a message that does not decode: ${(err as Error).message}` };
        }
      },
    },
  };
}

/** Encodes one span resource (`Resource` message bytes) with protobufjs' reflection: the reference its hand-written encoders are checked against. */
export function encodeResourceReflect(resource: Resource): Uint8Array {
  return ResourceType.encode(ResourceType.fromObject(resource)).finish();
}

// Delta and SnapshotChunk are written by hand from already-encoded resources (see proto-wire.ts).

/** A SyncResponse{delta} from pre-encoded resources and keys; `record` names revision's change record ('': none). */
export function encodeDelta(revision: number, upserts: Uint8Array[], removals: Uint8Array[], record = ''): Buffer {
  const recordLength = utf8Length(record);
  const inner = 1 + varintLength(revision) + embeddedSize(upserts) + embeddedSize(removals) + (recordLength ? 1 + varintLength(recordLength) + recordLength : 0);
  const buf = Buffer.allocUnsafe(1 + varintLength(inner) + inner);
  let pos = 0;
  buf[pos++] = tag(3, WIRE_LEN); // SyncResponse.delta
  pos = writeVarint(buf, pos, inner);
  buf[pos++] = tag(1, WIRE_VARINT);
  pos = writeVarint(buf, pos, revision);
  pos = putEmbedded(buf, pos, 2, upserts);
  pos = putEmbedded(buf, pos, 3, removals);
  putString(buf, pos, 4, record, recordLength);
  return buf;
}

/** A SyncResponse{hold}: the store is in recovery, the agent keeps what it has (rare: reflection). */
export function encodeHold(reason: string): Buffer {
  return Buffer.from(SyncResponseType.encode(SyncResponseType.fromObject({ hold: { reason } })).finish());
}

/** A SyncResponse{snapshot_chunk} from pre-encoded resources. */
export function encodeSnapshotChunk(revision: number, epoch: string, resources: Uint8Array[]): Buffer {
  return encodeSnapshotChunkFrame(revision, epoch, resources, (bytes) => Buffer.allocUnsafe(bytes)).message;
}

/**
 * A SyncResponse{snapshot_chunk} from pre-encoded resources, framed for gRPC (grpc-frame.ts), in
 * a buffer of at least the frame's size that `take` gives (the frame is its start).
 */
export function encodeSnapshotChunkFrame(revision: number, epoch: string, resources: Uint8Array[], take: (bytes: number) => Buffer): FramedMessage {
  const epochLength = utf8Length(epoch);
  const inner = 1 + varintLength(revision) + (epochLength ? 1 + varintLength(epochLength) + epochLength : 0) + embeddedSize(resources);
  const length = 1 + varintLength(inner) + inner;
  const frame = take(GRPC_FRAME_HEADER_BYTES + length).subarray(0, GRPC_FRAME_HEADER_BYTES + length);
  writeFrameHeader(frame, length);
  let pos = GRPC_FRAME_HEADER_BYTES;
  frame[pos++] = tag(1, WIRE_LEN); // SyncResponse.snapshot_chunk
  pos = writeVarint(frame, pos, inner);
  frame[pos++] = tag(1, WIRE_VARINT);
  pos = writeVarint(frame, pos, revision);
  pos = putString(frame, pos, 2, epoch, epochLength);
  putEmbedded(frame, pos, 3, resources);
  return new FramedMessage(frame);
}

export function encodeSnapshotEnd(end: { revision: number; epoch: string; resourceCount: number; hostId: string; vtepIp: string; record: string }): Buffer {
  return Buffer.from(SyncResponseType.encode(SyncResponseType.fromObject({ snapshotEnd: end })).finish());
}
