import { RecordEchoes, RecordNonces, opJsonLength, opsJsonLength, parseStreamEntry, type ChangeOp } from './change-log';

describe('change log records', () => {
  it('reads the revision and the entry id from the id, the clock and ops from the fields', () => {
    const record = parseStreamEntry(['42-5000000001', ['at', '1700', 'actor', '{}', 'ops', '[{"k":"tenant","id":"a","v":null,"o":null}]']]);
    expect(record).toEqual({ revision: 42, entryId: '42-5000000001', at: 1700, ops: [{ k: 'tenant', id: 'a', v: null, o: null }] });
  });

  it('makes nonces that never repeat in a process and never collide with an old record (seq 0), within a stream id', () => {
    const nonces = new RecordNonces();
    const made = Array.from({ length: 10_000 }, () => nonces.next());
    expect(new Set(made).size).toBe(made.length);
    for (const nonce of made) {
      expect(nonce).toMatch(/^[1-9][0-9]*$/);
      expect(BigInt(nonce)).toBeGreaterThanOrEqual(2n ** 32n);
      expect(BigInt(nonce)).toBeLessThan(2n ** 63n);
    }
  });

  it('draws another prefix once its counter runs out', () => {
    const nonces = new RecordNonces();
    const first = BigInt(nonces.next());
    (nonces as unknown as { counter: number }).counter = 2 ** 32;
    const next = BigInt(nonces.next());
    // Both start their counter at 0; the prefixes differ (but by a 2^-31 chance).
    expect(first % 2n ** 32n).toBe(0n);
    expect(next % 2n ** 32n).toBe(0n);
    expect(next).not.toBe(first);
    expect(BigInt(nonces.next())).toBe(next + 1n);
  });

  describe('echoes of this process\'s records', () => {
    const text = '[{"k":"tenant","id":"a","v":{"id":"a"},"o":null},{"k":"tenant","id":"b","v":null,"o":null}]';
    const ops: ChangeOp[] = [
      { k: 'tenant', id: 'a', v: { id: 'a' }, o: null },
      { k: 'tenant', id: 'b', v: null, o: null },
    ];
    const echo = { ops, opsLength: opsJsonLength(opJsonLength('tenant', 'a', '{"id":"a"}') + opJsonLength('tenant', 'b', null), 2) };

    it('say the length of the ops as the scripts write them', () => {
      expect(echo.opsLength).toBe(text.length);
      expect(opsJsonLength(0, 0)).toBe('[]'.length);
    });

    it('give a record of their nonce its ops once, as they are; other records are parsed', () => {
      const echoes = new RecordEchoes();
      echoes.add('7', echo);
      expect(parseStreamEntry(['9-8', ['ops', text]], echoes).ops).not.toBe(ops);
      const record = parseStreamEntry(['9-7', ['ops', text]], echoes);
      expect(record.ops).toBe(ops);
      expect(parseStreamEntry(['9-7', ['ops', text]], echoes).ops).not.toBe(ops);
      expect(parseStreamEntry(['9-7', ['ops', text]], echoes).ops).toEqual(ops);
    });

    it('are not used for ops of another length, and are dropped then too', () => {
      const echoes = new RecordEchoes();
      echoes.add('7', { ...echo, opsLength: echo.opsLength + 1 });
      expect(parseStreamEntry(['9-7', ['ops', text]], echoes).ops).not.toBe(ops);
      expect(echoes.size).toBe(0);
    });

    it('are kept 10 s at most, and 256 at most (the oldest dropped first)', () => {
      const echoes = new RecordEchoes();
      echoes.add('1', echo, 0);
      echoes.add('2', echo, 9_999);
      expect(echoes.size).toBe(2);
      echoes.add('3', echo, 10_000);
      expect(echoes.take('1', text)).toBeUndefined();
      expect(echoes.take('2', text)).toBe(ops);
      for (let i = 0; i < 300; i++) {
        echoes.add(String(100 + i), echo, 10_000);
      }
      expect(echoes.size).toBe(256);
      expect(echoes.take('3', text)).toBeUndefined();
      expect(echoes.take('399', text)).toBe(ops);
    });
  });
});
