import { StreamDecoder } from '@grpc/grpc-js/build/src/stream-decoder';
import { prng } from '../../test/support/prng';
import { releaseDecodedChunks } from './grpc-decoder';

/** A gRPC length-prefixed frame of `body`. */
const frame = (body: Buffer): Buffer => Buffer.concat([Buffer.from([0]), Buffer.from([0, 0, 0, 0].map((_, i) => (body.length >>> (8 * (3 - i))) & 0xff)), body]);

/** `bytes` cut into chunks of 1-`max` bytes (so flags, sizes and bodies are split every way). */
function chunks(bytes: Buffer, random: () => number, max: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = 1 + Math.floor(random() * max);
    out.push(Buffer.from(bytes.subarray(at, at + n))); // a copy: its own ArrayBuffer, as a socket read gives
    at += n;
  }
  return out;
}

interface Fields {
  write(data: Buffer): Buffer[];
  readCompressFlag: Buffer;
  readPartialMessage: Buffer[];
}

describe('releaseDecodedChunks', () => {
  // What an unpatched decoder gives, recorded before the patch (it applies to every decoder).
  const random = prng(0x5eed);
  const cases = Array.from({ length: 200 }, () => {
    const bodies = Array.from({ length: 1 + Math.floor(random() * 6) }, () => Buffer.from(Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256))));
    const stream = Buffer.concat(bodies.map(frame));
    return { bodies, pieces: chunks(stream, random, 1 + Math.floor(random() * 30)) };
  });
  const unpatched = cases.map(({ pieces }) => {
    const decoder = new StreamDecoder(-1);
    return pieces.flatMap((piece) => decoder.write(piece));
  });

  beforeAll(() => {
    expect(releaseDecodedChunks()).toBe(true);
    expect(releaseDecodedChunks()).toBe(true); // idempotent
  });

  it('decodes every stream, however it is cut, to the same messages as grpc-js alone', () => {
    cases.forEach(({ bodies, pieces }, i) => {
      const decoder = new StreamDecoder(-1);
      const messages = pieces.flatMap((piece) => decoder.write(piece));
      expect(messages).toEqual(unpatched[i]);
      expect(messages).toEqual(bodies.map(frame));
    });
  });

  it('holds nothing of a chunk once its messages are complete, and what a message in progress needs until then', () => {
    const decoder = new StreamDecoder(-1) as unknown as Fields;
    const whole = frame(Buffer.from('ack'));
    const chunk = Buffer.from(whole);
    expect(decoder.write(chunk)).toEqual([whole]);
    expect(decoder.readCompressFlag.buffer).not.toBe(chunk.buffer);
    expect(decoder.readPartialMessage).toHaveLength(0);

    // A message cut in two: the first part's slices are kept until the second completes it.
    const first = Buffer.from(whole.subarray(0, 6));
    expect(decoder.write(first)).toEqual([]);
    expect(decoder.readPartialMessage.map((b) => b.buffer)).toEqual([first.buffer]);
    const second = Buffer.from(whole.subarray(6));
    expect(decoder.write(second)).toEqual([whole]);
    expect(decoder.readPartialMessage).toHaveLength(0);
    expect(decoder.readCompressFlag.buffer).not.toBe(first.buffer);
  });

  it('still refuses a message over the limit', () => {
    const decoder = new StreamDecoder(4);
    expect(() => decoder.write(frame(Buffer.alloc(5)))).toThrow(/larger than max/);
  });
});
