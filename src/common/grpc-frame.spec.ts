import * as grpc from '@grpc/grpc-js';
import { BaseServerInterceptingCall } from '@grpc/grpc-js/build/src/server-interceptors';
import { FramedMessage, GRPC_FRAME_HEADER_BYTES } from './grpc-frame';
import { sendFramedMessagesAsIs } from './grpc-send-framed';
import { encodeDelta, encodeSnapshotChunk, encodeSnapshotChunkFrame, overlayProto, syncServiceDefinition } from './proto';
import { encodeResource } from './span/span-kinds';

const resources = [
  { segment: { id: 's1', tenantId: 't1', vni: 7, vteps: ['192.0.2.1', '192.0.2.2'] } },
  { port: { id: 'p1', segmentId: 's1', mac: '02:00:00:00:00:01', ips: ['10.0.0.1'], hostId: 'h1', vtepIp: '192.0.2.1', vmId: 'vm-1' } },
].map(encodeResource);

describe('snapshot chunks framed once', () => {
  it('frames a chunk as grpc-js would (flag 0, length) around the same message, in the buffer it is given', () => {
    const storage = Buffer.alloc(4096, 0xee);
    const framed = encodeSnapshotChunkFrame(9, 'epoch1', resources, (bytes) => {
      expect(bytes).toBeLessThanOrEqual(storage.length);
      return storage;
    });
    const message = encodeSnapshotChunk(9, 'epoch1', resources);
    expect(framed.frame.buffer).toBe(storage.buffer);
    expect(framed.frame.length).toBe(GRPC_FRAME_HEADER_BYTES + message.length);
    expect(framed.frame.subarray(0, GRPC_FRAME_HEADER_BYTES)).toEqual(Buffer.from([0, 0, 0, (message.length >> 8) & 0xff, message.length & 0xff]));
    expect(framed.message).toEqual(message);
  });

  it('the service serializer gives the message of a FramedMessage (grpc-js unpatched frames it again)', () => {
    const serialize = syncServiceDefinition().Sync.responseSerialize;
    const message = encodeSnapshotChunk(9, 'e', resources);
    expect(serialize(encodeSnapshotChunkFrame(9, 'e', resources, (n) => Buffer.alloc(n)))).toEqual(message);
    expect(serialize(message)).toBe(message);
  });

  describe('grpc-js patched (sendFramedMessagesAsIs)', () => {
    beforeAll(() => {
      expect(sendFramedMessagesAsIs()).toBe(true);
      expect(sendFramedMessagesAsIs()).toBe(true); // idempotent
    });

    it('sends a frame as it is, and frames anything else as before', () => {
      const call = { handler: { serialize: (v: Buffer) => v } };
      const serializeMessage = (BaseServerInterceptingCall.prototype as unknown as { serializeMessage(v: unknown): Buffer }).serializeMessage;
      const framed = new FramedMessage(Buffer.from([0, 0, 0, 0, 2, 8, 9]));
      expect(serializeMessage.call(call, framed)).toBe(framed.frame);
      expect(serializeMessage.call(call, Buffer.from([8, 9]))).toEqual(framed.frame);
    });

    it('a client reads framed chunks, and plain messages between them, as the messages they frame', async () => {
      const server = new grpc.Server();
      const sent = [
        encodeSnapshotChunkFrame(1, 'e', resources, (n) => Buffer.alloc(n + 100, 0xee)),
        encodeDelta(2, resources.slice(1), []),
        encodeSnapshotChunkFrame(3, 'e', [], (n) => Buffer.alloc(n)),
      ];
      server.addService(syncServiceDefinition(), {
        Sync: (call: grpc.ServerDuplexStream<unknown, Buffer | FramedMessage>) => {
          call.once('data', () => {
            sent.forEach((m) => call.write(m));
            call.end();
          });
        },
      });
      const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
      const client = new overlayProto.SyncService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      try {
        const received = await new Promise<unknown[]>((resolve, reject) => {
          const stream = client.Sync();
          const got: unknown[] = [];
          stream.on('data', (m: unknown) => got.push(m));
          stream.on('error', reject);
          stream.on('end', () => resolve(got));
          stream.write({ hello: { hostName: 'hv1' } });
        });
        const deserialize = (overlayProto.SyncResponse as unknown as { deserialize: (b: Buffer) => unknown }).deserialize;
        expect(received).toEqual(sent.map((m) => deserialize(m instanceof FramedMessage ? m.message : m)));
      } finally {
        client.close();
        server.forceShutdown();
      }
    });
  });
});
