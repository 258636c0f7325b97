import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRuleset, printRuleset, printSetUpdate, setUpdate, type NftRuleset } from './nft-ruleset';

const ruleset = (elements: string[], rules = ['ip saddr @s accept']): NftRuleset => ({
  replaces: [{ family: 'bridge', name: 'overlay' }],
  tables: [
    {
      family: 'bridge',
      name: 'overlay',
      sets: [{ kind: 'set', name: 's', type: 'ipv4_addr', interval: true, elements }],
      chains: [
        { name: 'in', hook: { hook: 'prerouting', priority: -300 }, rules: ['jump c'] },
        { name: 'c', rules },
      ],
    },
  ],
});

describe('nft ruleset', () => {
  it('prints sets before chains, blocks separated by a blank line, after the add-delete idiom', () => {
    expect(printRuleset(ruleset(['10.0.0.1', '10.0.1.0/24']))).toBe(
      [
        'table bridge overlay',
        'delete table bridge overlay',
        'table bridge overlay {',
        '\tset s {',
        '\t\ttype ipv4_addr',
        '\t\tflags interval',
        '\t\telements = { 10.0.0.1, 10.0.1.0/24 }',
        '\t}',
        '',
        '\tchain in {',
        '\t\ttype filter hook prerouting priority -300; policy accept;',
        '\t\tjump c',
        '\t}',
        '',
        '\tchain c {',
        '\t\tip saddr @s accept',
        '\t}',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('reads back exactly what it printed, every golden text included, and nothing else', () => {
    const golden = join(__dirname, '__golden__');
    for (const text of [...readdirSync(golden).filter((f) => f.endsWith('.nft')).map((f) => readFileSync(join(golden, f), 'utf8')), printRuleset(ruleset([]))]) {
      const parsed = parseRuleset(text);
      expect(parsed && printRuleset(parsed)).toBe(text);
    }
    expect(parseRuleset(printRuleset(ruleset(['10.0.0.1'])))).toEqual(ruleset(['10.0.0.1']));
    for (const other of ['bad', 'table bridge overlay\n', 'table bridge overlay {\n\tset s {\n\t}\n}\n', 'table bridge overlay {\n\tchain c {\n\t\taccept\n}\n']) {
      expect(parseRuleset(other)).toBeUndefined();
    }
  });

  it('turns a change of elements alone into a rewrite of the sets that changed, and anything else into a whole load', () => {
    const rewrites = setUpdate(ruleset(['10.0.0.1']), ruleset(['10.0.0.1', '10.0.0.2']));
    expect(rewrites).toEqual([
      {
        table: { family: 'bridge', name: 'overlay' },
        set: expect.objectContaining({ kind: 'set', name: 's', elements: ['10.0.0.1', '10.0.0.2'] }),
        previous: expect.objectContaining({ kind: 'set', name: 's', elements: ['10.0.0.1'] }),
      },
    ]);
    expect(printSetUpdate(rewrites!)).toBe('flush set bridge overlay s\nadd element bridge overlay s { 10.0.0.1, 10.0.0.2 }\n');
    expect(printSetUpdate(setUpdate(ruleset(['10.0.0.1']), ruleset([]))!)).toBe('flush set bridge overlay s\n');
    expect(setUpdate(ruleset(['10.0.0.1']), ruleset(['10.0.0.1']))).toBeUndefined();
    expect(setUpdate(ruleset(['10.0.0.1']), ruleset(['10.0.0.2'], ['drop']))).toBeUndefined();
  });
});
