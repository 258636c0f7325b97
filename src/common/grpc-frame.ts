import { BaseServerInterceptingCall } from '@grpc/grpc-js/build/src/server-interceptors';

/** gRPC's length prefix before each message: a compressed flag (1 byte) and the length (4, big endian). */
export const GRPC_FRAME_HEADER_BYTES = 5;

/**
 * A server message written with its gRPC frame already in front of it (flag 0: not compressed,
 * as grpc-js sends every response). grpc-js frames a response by copying it into a buffer of
 * its own; a snapshot chunk is about 180 kB, and while a storm of snapshots was under way those
 * copies, and ours, outlived the young generation (a chunk waits on its socket) and were found
 * only by a full collection: 20-25 MB of the peak at 1,000 agents (docs/benchmarks.md, Memory).
 * With the frame made here, one buffer is all there is, and its maker may reuse it once the
 * write's callback says the stream is done with it.
 */
export class FramedMessage {
  constructor(readonly frame: Buffer) {}

  /** The message, without its frame (what a serializer returns). */
  get message(): Buffer {
    return this.frame.subarray(GRPC_FRAME_HEADER_BYTES);
  }
}

/** Writes the frame header for a message of `length` bytes at the start of `buf`. */
export function writeFrameHeader(buf: Buffer, length: number): void {
  buf[0] = 0;
  buf.writeUInt32BE(length, 1);
}

interface SerializingCall {
  handler: { serialize(value: unknown): Buffer };
  serializeMessage(value: unknown): Buffer;
}

const PATCHED = Symbol.for('overlay.grpcSendsFramedMessagesAsIs');

/** Whether grpc-js frames a response the way this expects: flag 0, length, the serializer's bytes. */
function framingAsExpected(serializeMessage: (value: unknown) => Buffer): boolean {
  try {
    const framed = serializeMessage.call({ handler: { serialize: (v: Buffer) => v } }, Buffer.from([1, 2, 3]));
    return framed.equals(Buffer.from([0, 0, 0, 0, 3, 1, 2, 3]));
  } catch {
    return false;
  }
}

/**
 * Makes grpc-js's server calls of this process send a FramedMessage's frame as it is instead of
 * serializing and framing it again; idempotent. Answers whether they do (false: grpc-js is not
 * shaped as expected and was left alone; a service's serializer must then return the message of a
 * FramedMessage, which grpc-js copies and frames as before).
 */
export function sendFramedMessagesAsIs(): boolean {
  const proto = BaseServerInterceptingCall.prototype as unknown as SerializingCall & { [PATCHED]?: true };
  if (proto[PATCHED]) {
    return true;
  }
  const serializeMessage = proto.serializeMessage;
  if (typeof serializeMessage !== 'function' || !framingAsExpected(serializeMessage)) {
    return false;
  }
  proto.serializeMessage = function (this: SerializingCall, value: unknown): Buffer {
    return value instanceof FramedMessage ? value.frame : serializeMessage.call(this, value);
  };
  proto[PATCHED] = true;
  return true;
}
