import { duplicateKey } from './duplicate-key';

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
});
