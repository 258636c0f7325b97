import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as protobuf from 'protobufjs';
import type { ConnectionBatch } from '../generated/overlay/v1/ConnectionBatch';
import type { Resource } from '../generated/overlay/v1/Resource';
import type { ProtoGrpcType } from '../generated/sync';

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

/** The SyncService definition, with responses that may be pre-encoded Buffers. */
export function syncServiceDefinition(): grpc.ServiceDefinition {
  const original = packageDefinition['overlay.v1.SyncService'] as grpc.ServiceDefinition;
  const sync = original.Sync;
  return {
    Sync: {
      ...sync,
      responseSerialize: (value: unknown) => (Buffer.isBuffer(value) ? value : sync.responseSerialize(value)),
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

export const RESOURCE_KIND_NUMBER = { segment: 1, port: 2, policy: 3, member: 4 } as const;

/** Encodes one span resource (`Resource` message bytes) with protobufjs' reflection: the reference. */
export function encodeResourceReflect(resource: Resource): Uint8Array {
  return ResourceType.encode(ResourceType.fromObject(resource)).finish();
}

// ---------------------------------------------------------------------------------------------
// Direct encoders for the hot messages (Resource, SnapshotChunk, Delta). protobufjs's Writer keeps
// a linked list of operations per message and allocates on every field; these compute the size
// first and write once into one Buffer. Wire-compatible with sync.proto (field numbers below);
// proto.spec.ts decodes their output and compares it with the reflective encoding.

const WIRE_LEN = 2;
const tag = (field: number, wire: number): number => (field << 3) | wire;

function varintLength(value: number): number {
  let n = 1;
  while (value > 127) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

function writeVarint(buf: Buffer, pos: number, value: number): number {
  while (value > 127) {
    buf[pos++] = (value % 128) | 128;
    value = Math.floor(value / 128);
  }
  buf[pos++] = value;
  return pos;
}

/** UTF-8 length; a quick loop for the ASCII strings spans are made of (ids, MACs, IPs). */
function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) {
      return Buffer.byteLength(s, 'utf8');
    }
  }
  return s.length;
}

function writeString(buf: Buffer, pos: number, s: string, length: number): number {
  if (length === s.length) {
    for (let i = 0; i < length; i++) {
      buf[pos + i] = s.charCodeAt(i);
    }
  } else {
    buf.write(s, pos, length, 'utf8');
  }
  return pos + length;
}

/** Sizes of a message's string fields, in field order; empty strings are omitted (proto3). */
class FieldPlan {
  readonly lengths: number[] = [];
  size = 0;

  string(s: string): void {
    const length = utf8Length(s);
    this.lengths.push(length);
    if (length > 0) {
      this.size += 1 + varintLength(length) + length;
    }
  }
}

function putString(buf: Buffer, pos: number, field: number, s: string, length: number): number {
  if (length === 0) {
    return pos;
  }
  buf[pos++] = tag(field, WIRE_LEN);
  pos = writeVarint(buf, pos, length);
  return writeString(buf, pos, s, length);
}

/**
 * Resource{policy}: nested messages and negative int32s, written with protobufjs' Writer (its
 * fork/ldelim does the nesting) but without reflection, which dominated snapshot storms.
 */
function encodePolicy(p: NonNullable<Resource['policy']>): Uint8Array {
  const w = protobuf.Writer.create();
  const str = (field: number, value: string | undefined) => {
    if (value) {
      w.uint32(tag(field, WIRE_LEN)).string(value);
    }
  };
  w.uint32(tag(3, WIRE_LEN)).fork(); // Resource.policy
  str(1, p.portId);
  if (p.portSecurity) {
    w.uint32(tag(2, 0)).bool(true);
  }
  str(3, p.mac);
  for (const ip of p.ips ?? []) {
    w.uint32(tag(4, WIRE_LEN)).string(ip);
  }
  for (const pair of p.allowedAddressPairs ?? []) {
    w.uint32(tag(5, WIRE_LEN)).fork();
    str(1, pair.ip);
    str(2, pair.mac);
    w.ldelim();
  }
  for (const [field, rules] of [
    [6, p.ingress ?? []],
    [7, p.egress ?? []],
  ] as const) {
    for (const r of rules) {
      w.uint32(tag(field, WIRE_LEN)).fork();
      str(1, r.ethertype);
      str(2, r.protocol);
      if (r.portMin) {
        w.uint32(tag(3, 0)).uint32(Number(r.portMin));
      }
      if (r.portMax) {
        w.uint32(tag(4, 0)).uint32(Number(r.portMax));
      }
      if (r.icmpType) {
        w.uint32(tag(5, 0)).int32(Number(r.icmpType));
      }
      if (r.icmpCode) {
        w.uint32(tag(6, 0)).int32(Number(r.icmpCode));
      }
      str(7, r.remoteCidr);
      str(8, r.remoteGroupId);
      w.ldelim();
    }
  }
  w.ldelim();
  return w.finish();
}

/** Encodes one span resource (`Resource` message bytes). */
export function encodeResource(resource: Resource): Uint8Array {
  const plan = new FieldPlan();
  if (resource.member) {
    // The constant-size delta of a membership change: three strings.
    const m = resource.member;
    plan.string(m.groupId ?? '');
    plan.string(m.family ?? '');
    plan.string(m.cidr ?? '');
    const inner = plan.size;
    const buf = Buffer.allocUnsafe(1 + varintLength(inner) + inner);
    let pos = 0;
    buf[pos++] = tag(4, WIRE_LEN); // Resource.member
    pos = writeVarint(buf, pos, inner);
    const l = plan.lengths;
    pos = putString(buf, pos, 1, m.groupId ?? '', l[0]);
    pos = putString(buf, pos, 2, m.family ?? '', l[1]);
    putString(buf, pos, 3, m.cidr ?? '', l[2]);
    return buf;
  }
  if (resource.policy) {
    return encodePolicy(resource.policy);
  }
  if (resource.port) {
    const p = resource.port;
    const ips = p.ips ?? [];
    plan.string(p.id ?? '');
    plan.string(p.segmentId ?? '');
    plan.string(p.mac ?? '');
    for (const ip of ips) {
      plan.string(ip);
      if (plan.lengths[plan.lengths.length - 1] === 0) {
        plan.size += 2; // a repeated empty string is still an element
      }
    }
    plan.string(p.hostId ?? '');
    plan.string(p.vtepIp ?? '');
    plan.string(p.vmId ?? '');
    plan.string(p.preparedHostId ?? '');
    plan.string(p.migrationId ?? '');
    plan.string(p.preparedVtepIp ?? '');
    const inner = plan.size;
    const buf = Buffer.allocUnsafe(1 + varintLength(inner) + inner);
    let pos = 0;
    buf[pos++] = tag(2, WIRE_LEN); // Resource.port
    pos = writeVarint(buf, pos, inner);
    const l = plan.lengths;
    let k = 0;
    pos = putString(buf, pos, 1, p.id ?? '', l[k++]);
    pos = putString(buf, pos, 2, p.segmentId ?? '', l[k++]);
    pos = putString(buf, pos, 3, p.mac ?? '', l[k++]);
    for (const ip of ips) {
      const length = l[k++];
      if (length === 0) {
        buf[pos++] = tag(4, WIRE_LEN);
        buf[pos++] = 0;
      } else {
        pos = putString(buf, pos, 4, ip, length);
      }
    }
    pos = putString(buf, pos, 5, p.hostId ?? '', l[k++]);
    pos = putString(buf, pos, 6, p.vtepIp ?? '', l[k++]);
    pos = putString(buf, pos, 7, p.vmId ?? '', l[k++]);
    pos = putString(buf, pos, 8, p.preparedHostId ?? '', l[k++]);
    pos = putString(buf, pos, 9, p.migrationId ?? '', l[k++]);
    putString(buf, pos, 10, p.preparedVtepIp ?? '', l[k++]);
    return buf;
  }
  if (resource.segment) {
    const s = resource.segment;
    const vteps = s.vteps ?? [];
    const vni = Number(s.vni ?? 0);
    plan.string(s.id ?? '');
    plan.string(s.tenantId ?? '');
    for (const v of vteps) {
      plan.string(v);
      if (plan.lengths[plan.lengths.length - 1] === 0) {
        plan.size += 2;
      }
    }
    const inner = plan.size + (vni ? 1 + varintLength(vni) : 0);
    const buf = Buffer.allocUnsafe(1 + varintLength(inner) + inner);
    let pos = 0;
    buf[pos++] = tag(1, WIRE_LEN); // Resource.segment
    pos = writeVarint(buf, pos, inner);
    const l = plan.lengths;
    let k = 0;
    pos = putString(buf, pos, 1, s.id ?? '', l[k++]);
    pos = putString(buf, pos, 2, s.tenantId ?? '', l[k++]);
    if (vni) {
      buf[pos++] = tag(3, 0);
      pos = writeVarint(buf, pos, vni);
    }
    for (const v of vteps) {
      const length = l[k++];
      if (length === 0) {
        buf[pos++] = tag(4, WIRE_LEN);
        buf[pos++] = 0;
      } else {
        pos = putString(buf, pos, 4, v, length);
      }
    }
    return buf;
  }
  return Buffer.alloc(0);
}

export function encodeResourceKey(kind: keyof typeof RESOURCE_KIND_NUMBER, id: string): Uint8Array {
  const length = utf8Length(id);
  const buf = Buffer.allocUnsafe(2 + 1 + varintLength(length) + length);
  buf[0] = tag(1, 0);
  buf[1] = RESOURCE_KIND_NUMBER[kind];
  buf[2] = tag(2, WIRE_LEN);
  writeString(buf, writeVarint(buf, 3, length), id, length);
  return buf;
}

/** Size of `repeated bytes/message` entries with field tag < 16. */
function embeddedSize(parts: Uint8Array[]): number {
  let size = 0;
  for (const p of parts) {
    size += 1 + varintLength(p.length) + p.length;
  }
  return size;
}

function putEmbedded(buf: Buffer, pos: number, field: number, parts: Uint8Array[]): number {
  for (const p of parts) {
    buf[pos++] = tag(field, WIRE_LEN);
    pos = writeVarint(buf, pos, p.length);
    buf.set(p, pos);
    pos += p.length;
  }
  return pos;
}

/** A SyncResponse{delta} from pre-encoded resources and keys. */
export function encodeDelta(revision: number, upserts: Uint8Array[], removals: Uint8Array[]): Buffer {
  const inner = 1 + varintLength(revision) + embeddedSize(upserts) + embeddedSize(removals);
  const buf = Buffer.allocUnsafe(1 + varintLength(inner) + inner);
  let pos = 0;
  buf[pos++] = tag(3, WIRE_LEN); // SyncResponse.delta
  pos = writeVarint(buf, pos, inner);
  buf[pos++] = tag(1, 0);
  pos = writeVarint(buf, pos, revision);
  pos = putEmbedded(buf, pos, 2, upserts);
  putEmbedded(buf, pos, 3, removals);
  return buf;
}

/** A SyncResponse{snapshot_chunk} from pre-encoded resources. */
export function encodeSnapshotChunk(revision: number, epoch: string, resources: Uint8Array[]): Buffer {
  const epochLength = utf8Length(epoch);
  const inner = 1 + varintLength(revision) + (epochLength ? 1 + varintLength(epochLength) + epochLength : 0) + embeddedSize(resources);
  const buf = Buffer.allocUnsafe(1 + varintLength(inner) + inner);
  let pos = 0;
  buf[pos++] = tag(1, WIRE_LEN); // SyncResponse.snapshot_chunk
  pos = writeVarint(buf, pos, inner);
  buf[pos++] = tag(1, 0);
  pos = writeVarint(buf, pos, revision);
  pos = putString(buf, pos, 2, epoch, epochLength);
  putEmbedded(buf, pos, 3, resources);
  return buf;
}

export function encodeSnapshotEnd(end: { revision: number; epoch: string; resourceCount: number; hostId: string; vtepIp: string }): Buffer {
  return Buffer.from(SyncResponseType.encode(SyncResponseType.fromObject({ snapshotEnd: end })).finish());
}
