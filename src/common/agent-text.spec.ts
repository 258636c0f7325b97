import { prng } from '../../test/support/prng';
import { cleanAgentText, MAX_AGENT_TEXT } from './agent-text';

const LONE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** Text a strict UTF-8 decoder and JSON accept, and that reads back unchanged. */
function readsBack(text: string): boolean {
  const bytes = Buffer.from(JSON.stringify({ error: text }), 'utf8');
  const decoded = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  return (JSON.parse(decoded) as { error: string }).error === text;
}

describe('agent text (NACK reasons) made safe to store and serve', () => {
  it('keeps ordinary text as it is', () => {
    expect(cleanAgentText('nft: Error: No such file or directory; did you mean table ‘overlay’ in family bridge? 😀')).toBe(
      'nft: Error: No such file or directory; did you mean table ‘overlay’ in family bridge? 😀',
    );
  });

  it('turns line breaks and tabs into one space and removes other control characters', () => {
    expect(cleanAgentText('line one\r\n\tline two\u2028three')).toBe('line one line two three');
    expect(cleanAgentText('\u001b[31mred\u001b[0m\u0000\u0007\u007f\u009b done')).toBe('[31mred[0m done');
    expect(cleanAgentText('abc\u202edcba\u2066x\u2069')).toBe('abcdcbax');
  });

  it('removes lone surrogates and keeps whole pairs', () => {
    expect(cleanAgentText('a\ud800b')).toBe('ab');
    expect(cleanAgentText('a\udc00b')).toBe('ab');
    expect(cleanAgentText('\udc00\ud800')).toBe('');
    expect(cleanAgentText('x\ud83d')).toBe('x');
    expect(cleanAgentText('\ud83d\ud83d\ude00\ude00')).toBe('😀');
  });

  it('cuts long text to its bound, never inside a surrogate pair, and says how long it was', () => {
    const long = 'x'.repeat(5000);
    const cut = cleanAgentText(long);
    expect(cut).toBe(`${'x'.repeat(MAX_AGENT_TEXT)}… (cut: 5000 characters in all)`);
    const pairs = cleanAgentText(`a${'😀'.repeat(600)}`);
    expect(pairs.startsWith(`a${'😀'.repeat(511)}…`)).toBe(true);
    expect(LONE.test(pairs)).toBe(false);
    // Text that only becomes short once cleaned was still cut before cleaning: it says so.
    expect(cleanAgentText(`${'\u0000'.repeat(10_000)}tail`)).toBe('… (cut: 10004 characters in all)');
  });

  it('bounds the result of a 1 MiB message', () => {
    const cut = cleanAgentText('é\u0000\ud800'.repeat(350_000));
    expect(cut.length).toBeLessThanOrEqual(MAX_AGENT_TEXT + 40);
    expect(cut.endsWith('(cut: 1050000 characters in all)')).toBe(true);
  });

  it('always gives text without controls or lone surrogates that reads back through UTF-8 JSON (random code units, seed 9)', () => {
    const random = prng(9);
    const pool = [0x0, 0x9, 0xa, 0x1b, 0x41, 0x7f, 0x85, 0xe9, 0x2028, 0x202e, 0xd800, 0xd83d, 0xdbff, 0xdc00, 0xde00, 0xdfff, 0xfffd, 0x4e2d];
    for (let i = 0; i < 2000; i++) {
      const length = Math.floor(random() * (i % 10 === 0 ? 6000 : 40));
      const units = Array.from({ length }, () => pool[Math.floor(random() * pool.length)]);
      const out = cleanAgentText(String.fromCharCode(...units));
      expect(LONE.test(out)).toBe(false);
      expect(CONTROL.test(out)).toBe(false);
      expect(readsBack(out)).toBe(true);
      expect(out.length).toBeLessThanOrEqual(MAX_AGENT_TEXT + 40);
    }
  });
});
