import { prng } from '../../../test/support/prng';
import { certainlyNoDuplicate, duplicateKey } from './duplicate-key';

describe('duplicateKey', () => {
  it.each([
    ['at the top', '{"name":"a","name":"b"}', 'name'],
    ['the same value twice', '{"name":"a","name":"a"}', 'name'],
    ['in a nested object', '{"sink":{"type":"vxlan","vni":1,"type":"port"}}', 'sink.type'],
    ['in an object of an array', '{"rules":[{"protocol":"tcp"},{"protocol":"udp","protocol":"any"}]}', 'rules[1].protocol'],
    ['in an array of arrays', '{"a":[[{"x":1}],[{"y":1,"y":2}]]}', 'a[1][0].y'],
    ['spelled with an escape', '{"name":"a","n\\u0061me":"b"}', 'name'],
    ['after strings holding quotes, braces and escaped backslashes', '{"d":"x\\"}{,\\\\","e":"\\\\","d":1}', 'd'],
    ['with whitespace around', '{ "a" : 1 ,\n "a" : 2 }', 'a'],
  ])('finds a name given twice %s', (_name, text, path) => {
    expect(duplicateKey(text)).toBe(path);
  });

  it.each([
    ['distinct names', '{"name":"a","description":"name"}'],
    ['one name in sibling objects', '{"rules":[{"protocol":"tcp"},{"protocol":"udp"}],"sink":{"protocol":1}}'],
    ['a name that is also a value', '{"a":"a","b":["a","a"]}'],
    ['names that differ in case', '{"name":"a","Name":"b"}'],
    ['scalars and empty documents', '1'],
    ['an empty object', '{}'],
    ['strings with escaped quotes', '{"a":"\\"a\\":1,\\"a\\":2"}'],
  ])('finds none in %s', (_name, text) => {
    expect(duplicateKey(text)).toBeUndefined();
  });

  describe('certainlyNoDuplicate (the fast path before the scan)', () => {
    const duplicates = [
      '{"name":"a","name":"b"}',
      '{"sink":{"type":"vxlan","vni":1,"type":"port"}}',
      '{"rules":[{"protocol":"tcp"},{"protocol":"udp","protocol":"any"}]}',
      '{"a":[[{"x":1}],[{"y":1,"y":2}]]}',
      '{"name":"a","n\\u0061me":"b"}',
      '{"d":"x\\"}{,\\\\","e":"\\\\","d":1}',
      '{ "a" : 1 ,\n "a" : 2 }',
      // a duplicate hidden by a string holding a colon after a quote: the count is over, so the scan decides
      '{"a":"\\":","a":1}',
    ];
    it.each(duplicates)('never says so of a document that names a member twice: %s', (text) => {
      expect(duplicateKey(text)).toBeDefined();
      expect(certainlyNoDuplicate(text, JSON.parse(text))).toBe(false);
    });

    it.each([
      ['a port body', '{"segmentId":"s","mac":"02:00:00:00:00:01","ips":["10.0.0.1"],"hostId":"h","labels":{"a":"b"}}'],
      ['whitespace around colons', '{ "a" :\t1, "b"\n:\r\n{ "c" : [ {"d" : null} ] } }'],
      ['scalars and empty documents', '1'],
      ['an empty object', '{}'],
      ['colons in values without a quote before them', '{"t":"12:00","u":"a:b"}'],
    ])('says so of %s', (_name, text) => {
      expect(certainlyNoDuplicate(text, JSON.parse(text))).toBe(true);
      expect(duplicateKey(text)).toBeUndefined();
    });

    it('leaves a string holding a quote and a colon to the scan, which finds no duplicate', () => {
      const text = '{"a":"\\":1"}';
      expect(certainlyNoDuplicate(text, JSON.parse(text))).toBe(false);
      expect(duplicateKey(text)).toBeUndefined();
    });

    it('agrees with the scan on generated documents, and never says so of one with a duplicate', () => {
      const next = prng(7);
      const rnd = (n: number): number => Math.floor(next() * n);
      const names = ['a', 'b', 'c', 'a\\"', 'x:y', '"', ':'];
      const value = (depth: number): string => {
        switch (rnd(depth > 3 ? 3 : 6)) {
          case 0:
            return String(rnd(100));
          case 1:
            return JSON.stringify(names[rnd(names.length)] + (rnd(2) ? '":' : ''));
          case 2:
            return 'null';
          case 3:
            return `[${Array.from({ length: rnd(3) }, () => value(depth + 1)).join(',')}]`;
        }
        const members = Array.from({ length: rnd(4) }, () => `${JSON.stringify(names[rnd(names.length)])}${rnd(2) ? ' ' : ''}:${value(depth + 1)}`);
        return `{${members.join(',')}}`;
      };
      let certain = 0;
      for (let i = 0; i < 3_000; i++) {
        const text = value(0);
        const fast = certainlyNoDuplicate(text, JSON.parse(text));
        if (fast) {
          certain++;
          expect(duplicateKey(text)).toBeUndefined();
        }
      }
      expect(certain).toBeGreaterThan(300);
    });

    it('counts the keys of a deeply nested document without recursion', () => {
      const text = `${'['.repeat(50_000)}{"a":1}${']'.repeat(50_000)}`;
      expect(certainlyNoDuplicate(text, JSON.parse(text))).toBe(true);
    });
  });
});
