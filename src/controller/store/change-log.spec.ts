import { RecordNonces, parseStreamEntry } from './change-log';

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
});
