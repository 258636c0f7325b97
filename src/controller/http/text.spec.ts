import { forbiddenCharacter } from './text';

describe('forbiddenCharacter', () => {
  it('finds nothing in printable ASCII, accented letters, CJK and emoji (surrogate pairs)', () => {
    for (const text of ['', 'acme', 'web-01.prod_a', 'Zürich café', '東京', 'rocket 🚀 launch', '👩‍👩‍👧', '\u00a0non-breaking', '\ufeffbom']) {
      expect(forbiddenCharacter(text)).toBeUndefined();
    }
  });

  it('finds a lone high or low surrogate wherever it is, with its position', () => {
    expect(forbiddenCharacter('x\ud800y')).toEqual({ index: 1, what: 'a lone UTF-16 surrogate (U+D800)' });
    expect(forbiddenCharacter('\udfff')).toEqual({ index: 0, what: 'a lone UTF-16 surrogate (U+DFFF)' });
    expect(forbiddenCharacter('ab\udbff')).toEqual({ index: 2, what: 'a lone UTF-16 surrogate (U+DBFF)' });
    // Pairs in the wrong order are two lone surrogates.
    expect(forbiddenCharacter('\ude00\ud83d')?.index).toBe(0);
    // A pair followed by a lone one.
    expect(forbiddenCharacter('🚀\ud83d')?.index).toBe(2);
  });

  it('finds C0 controls (NUL, tab, newline, escape), DEL and C1 controls', () => {
    for (const [text, code] of [
      ['a\u0000b', 'U+0000'],
      ['a\tb', 'U+0009'],
      ['line\nforged', 'U+000A'],
      ['a\rb', 'U+000D'],
      ['\u001b[31mred', 'U+001B'],
      ['a\u007f', 'U+007F'],
      ['a\u0085b', 'U+0085'],
      ['a\u009bb', 'U+009B'],
    ] as const) {
      expect(forbiddenCharacter(text)?.what).toBe(`the control character ${code}`);
    }
  });

  it('finds the Unicode line separators and bidirectional controls', () => {
    expect(forbiddenCharacter('a\u2028b')?.what).toBe('the line separator U+2028');
    expect(forbiddenCharacter('a\u2029b')?.what).toBe('the line separator U+2029');
    for (const c of ['\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069']) {
      expect(forbiddenCharacter(`admin${c}txt.exe`)?.what).toMatch(/^the bidirectional control U\+20/);
    }
  });

  it('leaves the neighbours of the forbidden ranges alone', () => {
    for (const text of ['\u0020', '\u007e', '\u00a0', '\ud7ff', '\ue000', '\u2027', '\u202f', '\u2065', '\u206a', '\ufffd']) {
      expect(forbiddenCharacter(text)).toBeUndefined();
    }
  });
});
