/** gRPC's length prefix before each message: a compressed flag (1 byte) and the length (4, big endian). */
export const GRPC_FRAME_HEADER_BYTES = 5;

/**
 * A server message written with its gRPC frame already in front of it (flag 0: not compressed,
 * as grpc-js sends every response). grpc-js frames a response by copying it into a buffer of
 * its own; a snapshot chunk is about 180 kB, and while a storm of snapshots was under way those
 * copies, and ours, outlived the young generation (a chunk waits on its socket) and were found
 * only by a full collection: 20-25 MB of the peak at 1,000 agents (docs/benchmarks.md, Memory).
 * With the frame made here, one buffer is all there is, and its maker may reuse it once the
 * write's callback says the stream is done with it. The server sends it as it is once
 * sendFramedMessagesAsIs (grpc-send-framed.ts) patched grpc-js.
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
