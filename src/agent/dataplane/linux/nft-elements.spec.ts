import { addressRange, elementDelta, kernelElementsKey, textElementsKey } from './nft-elements';
import { printSetUpdate } from './nft-ruleset';
import type { NftSet } from './nft-ruleset';

const group = (elements: string[], type = 'ipv4_addr'): NftSet => ({ kind: 'set', name: 'g', type, interval: true, autoMerge: true, elements });
const set = (type: string, elements: string[], interval = false): NftSet => ({ kind: 'set', name: 's', type, ...(interval ? { interval } : {}), elements });
const map = (elements: string[]): NftSet => ({ kind: 'map', name: 'm', type: 'ifname : verdict', elements });

/**
 * Sets loaded with nft v1.0.6 (`elements = { ... }` as text) and what `nft -j list` printed of
 * them, verbatim: auto-merge merged 10.0.0.3 and 10.0.0.4 and the two /25, IPv6 compressed, MACs
 * lower case, concatenations and verdicts as objects.
 */
const LISTED: [NftSet, Record<string, unknown>][] = [
  [
    group(['10.0.0.1', '10.0.0.3', '10.0.0.4', '10.1.0.0/24', '10.2.0.0/25', '10.2.0.128/25']),
    { type: 'ipv4_addr', flags: ['interval'], elem: ['10.0.0.1', { range: ['10.0.0.3', '10.0.0.4'] }, { prefix: { addr: '10.1.0.0', len: 24 } }, { prefix: { addr: '10.2.0.0', len: 24 } }] },
  ],
  [group(['2001:db8::1', '2001:db8:1::/64'], 'ipv6_addr'), { type: 'ipv6_addr', flags: ['interval'], elem: ['2001:db8::1', { prefix: { addr: '2001:db8:1::', len: 64 } }] }],
  [
    set('ifname . ether_addr', ['"tap1" . 02:00:00:00:00:01', '"tap2" . 02:00:00:00:00:0A']),
    { type: ['ifname', 'ether_addr'], elem: [{ concat: ['tap1', '02:00:00:00:00:01'] }, { concat: ['tap2', '02:00:00:00:00:0a'] }] },
  ],
  [
    set('ifname . ipv6_addr', ['"tap1" . fe80::0:ff:fe00:1', '"tap1" . 2001:db8::/64'], true),
    { type: ['ifname', 'ipv6_addr'], flags: ['interval'], elem: [{ concat: ['tap1', 'fe80::ff:fe00:1'] }, { concat: ['tap1', { prefix: { addr: '2001:db8::', len: 64 } }] }] },
  ],
  [map(['"tap1" : jump c1']), { type: 'ifname', map: 'verdict', elem: [['tap1', { jump: { target: 'c1' } }]] }],
  [set('ifname', ['"tapx"']), { type: 'ifname', elem: ['tapx'] }],
  [set('ifname', []), { type: 'ifname' }],
];

describe('element keys', () => {
  it.each(LISTED)('mean the same for what was loaded and what nft lists of it: %j', (loaded, listed) => {
    const key = textElementsKey(loaded);
    expect(key).toBeDefined();
    expect(kernelElementsKey(loaded.kind, listed)).toBe(key);
  });

  it('differ when the kernel holds an element more or less, or another verdict', () => {
    const [g, listed] = LISTED[0];
    const elem = listed.elem as unknown[];
    expect(kernelElementsKey('set', { ...listed, elem: [...elem, '10.9.0.1'] })).not.toBe(textElementsKey(g));
    expect(kernelElementsKey('set', { ...listed, elem: elem.slice(1) })).not.toBe(textElementsKey(g));
    expect(kernelElementsKey('set', { ...listed, elem: ['10.0.0.1', { range: ['10.0.0.3', '10.0.0.5'] }, ...elem.slice(2)] })).not.toBe(textElementsKey(g));
    expect(kernelElementsKey('map', { type: 'ifname', map: 'verdict', elem: [['tap1', { jump: { target: 'c2' } }]] })).not.toBe(textElementsKey(map(['"tap1" : jump c1'])));
    expect(kernelElementsKey('map', { type: 'ifname', map: 'verdict', elem: [['tap1', { accept: null }]] })).not.toBe(textElementsKey(map(['"tap1" : jump c1'])));
    expect(textElementsKey(set('ifname', ['"a"', '"b"']))).not.toBe(textElementsKey(set('ifname', ['"a"'])));
  });

  it('compare an interval set of addresses by the addresses it covers, as auto-merge stores them', () => {
    expect(textElementsKey(group(['10.0.0.2', '10.0.0.3']))).toBe(textElementsKey(group(['10.0.0.2/31'])));
    expect(textElementsKey(group(['10.0.0.0/24', '10.0.0.7']))).toBe(textElementsKey(group(['10.0.0.0/24'])));
    expect(textElementsKey(group(['10.0.0.1', '10.0.0.3']))).not.toBe(textElementsKey(group(['10.0.0.0/30'])));
    // Not covering: a set without intervals, or concatenations, keeps its elements apart.
    expect(textElementsKey(set('ipv4_addr', ['10.0.0.2', '10.0.0.3']))).not.toBe(textElementsKey(set('ipv4_addr', ['10.0.0.2/31'])));
  });

  it('are undefined for a form not known here, so such a set is rewritten and read back', () => {
    expect(textElementsKey(set('inet_service', ['22']))).toBeUndefined();
    expect(textElementsKey(group(['10.0.0.5/24']))).toBeUndefined(); // host bits
    expect(textElementsKey(group(['10.0.0.256']))).toBeUndefined();
    expect(textElementsKey(group(['fd00::1']))).toBeUndefined(); // IPv6 in an IPv4 set
    expect(textElementsKey(set('ifname', ['tap1']))).toBeUndefined(); // unquoted
    expect(textElementsKey(map(['"tap1" : jump c1; drop']))).toBeUndefined();
    expect(kernelElementsKey('set', { type: 'ipv4_addr', elem: [{ elem: { val: '10.0.0.1', comment: 'x' } }] })).toBeUndefined();
    expect(kernelElementsKey('set', { type: 'inet_service', elem: [22] })).toBeUndefined();
    expect(kernelElementsKey('set', { type: ['ifname', 'ether_addr'], elem: ['tap1'] })).toBeUndefined();
    expect(kernelElementsKey('map', { type: 'ifname', map: 'verdict', elem: ['tap1'] })).toBeUndefined();
    expect(kernelElementsKey('map', { type: 'ifname', map: 'ipv4_addr', elem: [] })).toBeUndefined();
  });

  it('read addresses and prefixes strictly', () => {
    expect(addressRange('10.0.1.0/24')).toEqual({ v6: false, lo: 0x0a000100n, hi: 0x0a0001ffn });
    expect(addressRange('::ffff:10.0.0.1')).toEqual({ v6: true, lo: 0xffff0a000001n, hi: 0xffff0a000001n });
    expect(addressRange('::/0')).toEqual({ v6: true, lo: 0n, hi: (1n << 128n) - 1n });
    for (const bad of ['10.0.0', '10.0.0.01', '10.0.0.1/33', '10.0.0.1/', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', 'g::1', '10.0.0.1/-1', '']) {
      expect(addressRange(bad)).toBeUndefined();
    }
  });
});

describe('element delta', () => {
  it('deletes the elements that went and adds those that came, a map by key (a changed verdict: deleted, added again)', () => {
    expect(elementDelta(set('ifname . ether_addr', ['"a" . 02:00:00:00:00:01', '"b" . 02:00:00:00:00:02']), set('ifname . ether_addr', ['"b" . 02:00:00:00:00:02', '"c" . 02:00:00:00:00:03']))).toEqual({
      remove: ['"a" . 02:00:00:00:00:01'],
      add: ['"c" . 02:00:00:00:00:03'],
    });
    expect(elementDelta(map(['"a" : jump x', '"b" : jump x']), map(['"a" : jump y', '"c" : jump open_eg']))).toEqual({ remove: ['"a"', '"b"'], add: ['"a" : jump y', '"c" : jump open_eg'] });
    // Concatenations with intervals are stored as given (no auto-merge).
    expect(elementDelta(set('ifname . ipv4_addr', ['"a" . 10.0.0.5'], true), set('ifname . ipv4_addr', ['"a" . 10.0.0.0/24'], true))).toEqual({ remove: ['"a" . 10.0.0.5'], add: ['"a" . 10.0.0.0/24'] });
  });

  it('changes a set of address ranges by the merged ranges, only those standing alone', () => {
    expect(elementDelta(group(['10.0.0.1', '10.0.0.9']), group(['10.0.0.9', '10.0.0.20']))).toEqual({ remove: ['10.0.0.1'], add: ['10.0.0.20'] });
    // Merged ranges go and come as nft stores them.
    expect(elementDelta(group(['10.0.0.3', '10.0.0.4', '10.0.1.0/25', '10.0.1.128/25']), group([]))).toEqual({ remove: ['10.0.0.3-10.0.0.4', '10.0.1.0/24'], add: [] });
    expect(elementDelta(group(['fd00::9'], 'ipv6_addr'), group(['fd00::9', 'fd00::1:0/112'], 'ipv6_addr'))).toEqual({ remove: [], add: ['fd00:0:0:0:0:0:1:0/112'] });
    // Nothing the set matches changed.
    expect(elementDelta(group(['10.0.0.0/24']), group(['10.0.0.0/24', '10.0.0.7']))).toEqual({ remove: [], add: [] });
  });

  it('refuses what nft would merge or split: a rewrite', () => {
    expect(elementDelta(group(['10.0.0.1']), group(['10.0.0.1', '10.0.0.2']))).toBeUndefined(); // merges with 10.0.0.1
    expect(elementDelta(group(['10.0.0.1', '10.0.0.2']), group(['10.0.0.1']))).toBeUndefined(); // splits 10.0.0.1-10.0.0.2
    expect(elementDelta(group(['10.0.0.0/24']), group(['10.0.0.0/25']))).toBeUndefined(); // shrinks
    expect(elementDelta(group(['10.0.0.0/25']), group(['10.0.0.0/24']))).toBeUndefined(); // grows
    expect(elementDelta(group(['10.0.0.0/24', '10.0.0.7']), group(['10.0.0.7']))).toBeUndefined(); // what stays was inside what goes
    expect(elementDelta(group(['10.0.0.5/24']), group([]))).toBeUndefined(); // a form not known
    expect(elementDelta(set('inet_service', ['22']), set('inet_service', ['23']))).toBeUndefined();
    expect(elementDelta(set('ipv4_addr', ['10.0.0.1']), group(['10.0.0.1']))).toBeUndefined();
  });

  it('prints as delete then add per set, beside the sets flushed and refilled, in one text', () => {
    const table = { family: 'bridge', name: 'overlay' };
    expect(
      printSetUpdate([
        { table, set: map(['"a" : jump y']), delta: { remove: ['"a"'], add: ['"a" : jump y'] } },
        { table, set: group(['10.0.0.9']), delta: { remove: [], add: ['10.0.0.9'] } },
        { table, set: set('ifname', ['"x"', '"y"']) },
        { table, set: set('ifname', []), delta: { remove: [], add: [] } },
      ]),
    ).toBe('delete element bridge overlay m { "a" }\nadd element bridge overlay m { "a" : jump y }\nadd element bridge overlay g { 10.0.0.9 }\nflush set bridge overlay s\nadd element bridge overlay s { "x", "y" }\n');
    expect(printSetUpdate([{ table, set: group([]), delta: { remove: [], add: [] } }])).toBe('');
  });
});
