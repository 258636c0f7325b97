import { StreamDecoder } from '@grpc/grpc-js/build/src/stream-decoder';

/**
 * grpc-js' message decoder (one per stream) keeps, after a message is complete, slices of the
 * HTTP/2 chunk it came in (the flag byte, the message's pieces) until the stream's next message
 * begins. For an agent's stream that next message is its next Ack, often a scavenge or two
 * later, so every Ack's chunk (its Buffer slices and the ArrayBuffer under them) survived the
 * young generation and was promoted, to be found only by a full collection. At 2,500 streams a
 * replica that was about half of what scavenges promoted, and the old generation then filled up
 * in 15-20 s (docs/benchmarks.md, Scale).
 *
 * This lets go of them as soon as a message is complete (state NO_DATA, where the next byte
 * starts a new message and `write` assigns both fields before using them). Nothing a message in
 * progress needs is dropped. The fields are grpc-js' own, private; when they are not what this
 * expects (a grpc-js that changed), nothing is patched and grpc-js works as it is.
 */
interface DecoderFields {
  write(data: Buffer): Buffer[];
  readState: number;
  readCompressFlag: Buffer;
  readPartialMessage: Buffer[];
}

/** grpc-js' ReadState.NO_DATA: between messages. */
const NO_DATA = 0;
/** What a decoder holds between messages instead (never written: `write` replaces both first). */
const NO_FLAG = Buffer.alloc(1);
const NO_PIECES: Buffer[] = Object.freeze([]) as unknown as Buffer[];

const PATCHED = Symbol.for('overlay.grpcDecoderReleasesChunks');

/** Whether a decoder has the fields this relies on, in the state this expects after a whole message. */
function shapeAsExpected(): boolean {
  const decoder = new StreamDecoder(-1) as unknown as DecoderFields;
  const chunk = Buffer.from([0, 0, 0, 0, 1, 7]);
  const out = decoder.write(chunk);
  return (
    out.length === 1 &&
    out[0].equals(chunk) &&
    decoder.readState === NO_DATA &&
    Buffer.isBuffer(decoder.readCompressFlag) &&
    Array.isArray(decoder.readPartialMessage) &&
    decoder.readPartialMessage.length === 1
  );
}

/**
 * Makes every grpc-js stream decoder of this process drop its references to a chunk once the
 * messages in it are complete; idempotent. Answers whether the decoders do so (false: grpc-js is
 * not shaped as expected and was left alone).
 */
export function releaseDecodedChunks(): boolean {
  const proto = StreamDecoder.prototype as unknown as DecoderFields & { [PATCHED]?: true };
  if (proto[PATCHED]) {
    return true;
  }
  if (!shapeAsExpected()) {
    return false;
  }
  const write = proto.write;
  proto.write = function (this: DecoderFields, data: Buffer): Buffer[] {
    const messages = write.call(this, data);
    if (this.readState === NO_DATA) {
      this.readCompressFlag = NO_FLAG;
      this.readPartialMessage = NO_PIECES;
    }
    return messages;
  };
  proto[PATCHED] = true;
  return true;
}
