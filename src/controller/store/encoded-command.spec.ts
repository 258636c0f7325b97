import { Command } from 'ioredis';
import { EncodedCommand, encodeArgs, type ScriptArg } from './encoded-command';

/** What ioredis itself writes for the command, as bytes. */
function ioredisWire(name: string, args: ScriptArg[]): Buffer {
  const wire = new Command(name, args).toWritable({});
  return Buffer.isBuffer(wire) ? wire : Buffer.from(wire, 'utf8');
}

describe('EncodedCommand', () => {
  // Lengths around each number of digits, empty values, multi-byte UTF-8 (its byte count, not its length), numbers.
  const strings = ['', 'a', 'x'.repeat(9), 'x'.repeat(10), 'y'.repeat(99), 'y'.repeat(100), 'z'.repeat(12_345), 'é', '日本語', '🙂 {"a":"ü"}', '\r\n$3\r\n'];

  it('writes what ioredis writes, for strings, numbers and argument counts around each number of digits', () => {
    for (const count of [0, 1, 7, 8, 9, 10, 11, 97, 98, 120]) {
      const args: ScriptArg[] = Array.from({ length: count }, (_, i) => (i % 5 === 4 ? i * 1_000_003 : strings[i % strings.length]));
      expect(new EncodedCommand('evalsha', 'sha', encodeArgs(args)).toWritable()).toEqual(ioredisWire('evalsha', ['sha', ...args]));
    }
  });

  it('writes Buffers as they are, beside strings, and numbers as their decimal text', () => {
    const args = [Buffer.from([0, 255, 13, 10]), 'abc', Buffer.alloc(0), '日本', 0, 1_796_595_054_517, 10];
    expect(new EncodedCommand('set', 'k', encodeArgs(args)).toWritable()).toEqual(ioredisWire('set', ['k', ...args]));
  });

  it('joins its lists in order', () => {
    const command = new EncodedCommand('evalsha', 'sha', encodeArgs([1, 'k'], [], ['a', 'b']));
    expect(command.toWritable().toString('utf8')).toBe('*6\r\n$7\r\nevalsha\r\n$3\r\nsha\r\n$1\r\n1\r\n$1\r\nk\r\n$1\r\na\r\n$1\r\nb\r\n');
  });

  it('shares the encoded arguments between commands (EVALSHA, then EVAL with the source)', () => {
    const args = encodeArgs([1, 'key', 'value']);
    expect(new EncodedCommand('evalsha', 'sha', args).toWritable()).toEqual(ioredisWire('evalsha', ['sha', 1, 'key', 'value']));
    expect(new EncodedCommand('eval', 'return 1', args).toWritable()).toEqual(ioredisWire('eval', ['return 1', 1, 'key', 'value']));
  });

  it('makes its bytes once, however often ioredis asks (a command queued while offline is written later), and keeps only its first argument', () => {
    const command = new EncodedCommand('evalsha', 'sha', encodeArgs(['a'.repeat(1_000)]));
    expect(command.toWritable()).toBe(command.toWritable());
    expect(command.toWritable().length).toBeGreaterThan(1_000);
    expect(command.args).toEqual(['sha']);
  });
});
