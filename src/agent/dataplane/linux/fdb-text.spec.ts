import { isIP } from 'node:net';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { FdbRecord } from './kernel-view';
import { FdbTextReader, parseFdbLine } from './fdb-text';

/** Every entry of a whole listing that `keep` keeps, read by an FdbTextReader in one piece. */
function parseFdbText<U>(text: string, keep: (record: FdbRecord) => U | undefined): U[] {
  const out: U[] = [];
  const reader = new FdbTextReader((record) => {
    const kept = keep(record);
    if (kept !== undefined) {
      out.push(kept);
    }
  });
  reader.push(text);
  reader.end();
  return out;
}

// Recorded from iproute2 6.1 (`bridge fdb show`) on Linux 6.18: an overlay bridge br100 with its
// VXLAN device vx100 (the flood entry, remote entries, one with its own port and VNI, one
// extern_learn) and a tap tap1 (its own entry, a sticky static one), and a tap outside it.
const LISTED = `33:33:00:00:00:01 dev br100 self permanent
01:00:5e:00:00:6a dev br100 self permanent
8a:25:f0:ae:55:6f dev vx100 master br100 permanent
02:00:00:00:00:0d dev vx100 dst 10.0.0.9 self extern_learn permanent
02:00:00:00:00:05 dev vx100 dst 10.0.0.5 port 5000 vni 7 self permanent
02:00:00:00:00:01 dev vx100 dst 10.0.0.3 self permanent
00:00:00:00:00:00 dev vx100 dst 10.0.0.2 self permanent
02:00:00:00:00:0c dev tap1 sticky master br100 static
4e:76:af:b6:3c:9a dev tap1 master br100 permanent
33:33:00:00:00:01 dev tap1 self permanent
33:33:00:00:00:01 dev tap2 self permanent
`;

describe('bridge fdb show, as text', () => {
  it('reads each entry: its MAC, device, destination and master', () => {
    const all = parseFdbText(LISTED, (r) => r);
    expect(all).toHaveLength(11);
    expect(all.filter((r) => r.dst)).toEqual([
      { mac: '02:00:00:00:00:0d', ifname: 'vx100', dst: '10.0.0.9' },
      { mac: '02:00:00:00:00:05', ifname: 'vx100', dst: '10.0.0.5' },
      { mac: '02:00:00:00:00:01', ifname: 'vx100', dst: '10.0.0.3' },
      { mac: '00:00:00:00:00:00', ifname: 'vx100', dst: '10.0.0.2' },
    ]);
    expect(all.filter((r) => r.master).map((r) => `${r.mac} ${r.ifname} ${r.master}`)).toEqual(['8a:25:f0:ae:55:6f vx100 br100', '02:00:00:00:00:0c tap1 br100', '4e:76:af:b6:3c:9a tap1 br100']);
  });

  it('reads a learned entry (no state, a trailing space), IPv6 destinations, other states, and the MAC in lower case', () => {
    expect(parseFdbLine('52:54:00:AB:cd:01 dev tap9 master br100 ')).toEqual({ mac: '52:54:00:ab:cd:01', ifname: 'tap9', master: 'br100' });
    expect(parseFdbLine('02:00:00:00:00:01 dev vx7 dst fd00::2 via eth0 self stale')).toEqual({ mac: '02:00:00:00:00:01', ifname: 'vx7', dst: 'fd00::2' });
    expect(parseFdbLine('02:00:00:00:00:01 dev tap1 vlan 5 master br1 state=0x20')).toEqual({ mac: '02:00:00:00:00:01', ifname: 'tap1', master: 'br1' });
  });

  it('keeps what `keep` keeps, skips empty lines', () => {
    expect(parseFdbText(`\n${LISTED}\n\n`, (r) => (r.ifname === 'tap2' ? r.mac : undefined))).toEqual(['33:33:00:00:00:01']);
    expect(parseFdbText('', (r) => r)).toEqual([]);
  });

  it('rejects a line not of the form, and a listing holding one', () => {
    for (const bad of [
      'Deleted 02:00:00:00:00:01 dev vx1 dst 10.0.0.1 self permanent',
      '02:00:00:00:00:0 dev vx1 self permanent',
      '02:00:00:00:00:01 dev vx1 dst not-an-ip self permanent',
      '02:00:00:00:00:01 dev vx1 dst',
      '02:00:00:00:00:01 dev vx1 dev vx2 self permanent',
      '02:00:00:00:00:01 dev vx1 dst 10.0.0.1 dst 10.0.0.2 self',
      '02:00:00:00:00:01 dev tap1 master br1 master br2 permanent',
      '02:00:00:00:00:01 dev vx1 10.0.0.1 self permanent',
      '02:00:00:00:00:01 dev vx1 dst 10.0.0.1 self {"evil":1}',
      '\u0000',
    ]) {
      expect(parseFdbLine(bad)).toBeUndefined();
      expect(() => parseFdbText(`${LISTED}${bad}\n`, (r) => r)).toThrow(/bridge fdb show: line 12 /);
    }
  });

  it('reads the listing given in pieces as given whole: a line split between two pieces, line numbers counted across them', () => {
    const read = (text: string, size: number) => {
      const out: unknown[] = [];
      const reader = new FdbTextReader((r) => out.push(r));
      for (let i = 0; i < text.length; i += size) {
        reader.push(text.slice(i, i + size));
      }
      reader.end();
      return out;
    };
    const whole = parseFdbText(LISTED, (r) => r);
    for (const size of [1, 2, 13, 50, LISTED.length]) {
      expect(read(LISTED, size)).toEqual(whole);
      expect(read(LISTED.trimEnd(), size)).toEqual(whole); // no newline after the last line
      expect(() => read(`${LISTED}02:00:00:00:00:01 dev vx1 dst nowhere self\n`, size)).toThrow(/bridge fdb show: line 12 /);
    }
  });

  it("keeps none of the listing's memory: what it returns outlives the text without holding it", () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // Off again at once: jest makes a context per test file, and code that finds `gc` in its own
    // (the agent's collections, the controller's quiet collector) would collect in every later one.
    setFlagsFromString('--no-expose-gc');
    expect(runInNewContext('typeof gc')).toBe('undefined');
    // 20,000 entries of 17-character MACs to long IPv6 destinations, each line padded with flags:
    // a MAC or a destination cut from the text (V8 keeps a substring of 13 characters or more as
    // a slice of it) would keep all of it, several times what the records take.
    const flags = ' sticky extern_learn offload'.repeat(8);
    const hex = (n: number) => n.toString(16).padStart(12, '0').replace(/(..)(?!$)/g, '$1:');
    let text: string | undefined = Array.from({ length: 20_000 }, (_, i) => `${hex(0x020000000000 + i)} dev vx100 dst fd00:0:0:0:0:0:0:${i % 7}${flags} self permanent\n`).join('');
    const size = text.length;
    gc();
    const withText = getHeapStatistics().used_heap_size;
    const records = parseFdbText(text, (r) => r);
    text = undefined;
    // V8 keeps the subject of the last regular expression each context ran (RegExp.input), a
    // word of the text: here, and in node's own context, where net.isIP runs.
    /x/.test('x');
    isIP('::1');
    gc();
    const withRecords = getHeapStatistics().used_heap_size;
    expect(records).toHaveLength(20_000);
    expect(records[19_999]).toEqual({ mac: '02:00:00:00:4e:1f', ifname: 'vx100', dst: 'fd00:0:0:0:0:0:0:0' });
    // The text is gone: the heap holds the records (about 2 MB) instead of it (size: 6.6 MB).
    expect(withRecords - withText).toBeLessThan(-size / 2);
  });
});
