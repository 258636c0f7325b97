import { JsonTextSplitter } from '../bench/ovsdb-client';

/** The OVN peer benchmark reads OVSDB's JSON-RPC stream (texts back to back, no delimiter) with this splitter. */
describe('JsonTextSplitter', () => {
  const reply = { id: 7, result: [{ uuid: ['uuid', 'a'] }, { error: 'constraint violation', details: 'name "p-1}" and \\"{[ are "quoted"' }], error: null };
  const echo = { method: 'echo', params: [], id: 'echo' };

  it('splits texts sent back to back in one chunk', () => {
    const splitter = new JsonTextSplitter();
    const texts = splitter.push(JSON.stringify(reply) + JSON.stringify(echo) + '\n' + JSON.stringify(reply));
    expect(texts.map((t) => JSON.parse(t))).toEqual([reply, echo, reply]);
  });

  it('reassembles texts cut at every position, brackets, quotes and escapes inside strings included', () => {
    const stream = JSON.stringify(echo) + ' ' + JSON.stringify(reply);
    for (let cut = 1; cut < stream.length; cut++) {
      const splitter = new JsonTextSplitter();
      const texts = [...splitter.push(stream.slice(0, cut)), ...splitter.push(stream.slice(cut))];
      expect(texts.map((t) => JSON.parse(t))).toEqual([echo, reply]);
    }
  });

  it('keeps an incomplete text until its end arrives', () => {
    const splitter = new JsonTextSplitter();
    const text = JSON.stringify(reply);
    expect(splitter.push(text.slice(0, -1))).toEqual([]);
    expect(splitter.push(text.slice(-1))).toEqual([text]);
  });

  it('refuses bytes outside an object', () => {
    expect(() => new JsonTextSplitter().push('{"id":1}]')).toThrow(/not a JSON-RPC stream/);
    expect(() => new JsonTextSplitter().push('HTTP/1.1 400')).toThrow(/not a JSON-RPC stream/);
  });
});
