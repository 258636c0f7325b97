import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CommandError } from './command-runner';
import { fdbKey } from '../dataplane';
import type { CommandRunner } from './command-runner';
import { ArrayCutter, FLOOD_MAC, KernelReader, linksByName, mapJsonArray, RemoteFdb, slimLink, type IpLink } from './kernel-view';

// Recorded from iproute2 6.1 (`ip -j -d link show`) on Linux 6.18, in a namespace holding an
// overlay bridge and VXLAN device, a tap attached to it, and a tap whose alias is the text that
// cuts the listing (`x},{"ifindex":9,"ifname":"evil"}`), as printed: escaped.
const LINKS = readFileSync(join(__dirname, '__recorded__', 'ip-j-d-link-show.json'), 'utf8');
// The same namespace's `bridge -j fdb show` and `tc -j qdisc show`.
const FDB =
  '[{"mac":"33:33:00:00:00:01","ifname":"br100","flags":["self"],"state":"permanent"},{"mac":"8a:25:f0:ae:55:6f","ifname":"vx100","flags":[],"master":"br100","state":"permanent"},{"mac":"02:00:00:00:00:01","ifname":"vx100","dst":"10.0.0.3","flags":["self"],"state":"permanent"},{"mac":"00:00:00:00:00:00","ifname":"vx100","dst":"10.0.0.2","flags":["self"],"state":"permanent"},{"mac":"4e:76:af:b6:3c:9a","ifname":"tap1","flags":[],"master":"br100","state":"permanent"}]\n';
const QDISCS =
  '[{"kind":"noqueue","handle":"0:","dev":"br100","root":true,"refcnt":2,"options":{}},{"kind":"clsact","handle":"ffff:","dev":"vx100","parent":"ffff:fff1","egress_block":2,"options":{}},{"kind":"pfifo_fast","handle":"0:","dev":"tap1","root":true,"refcnt":2,"options":{"bands":3,"priomap":[1,2,2,2,1,2,0,0,1,1,1,1,1,1,1,1],"multiqueue":false}},{"kind":"clsact","handle":"ffff:","dev":"tap1","parent":"ffff:fff1","egress_block":1,"options":{}}]\n';

/** mapJsonArray, counting the elements `map` was given. */
function counted<T>(text: string, first: string | string[]): { out: T[]; seen: number } {
  let seen = 0;
  const out = mapJsonArray<T, T>(text, 'test', first, (e) => {
    seen++;
    return e;
  });
  return { out, seen };
}

describe('mapJsonArray', () => {
  it("gives iproute2's listings element by element, each once, as parsing them whole does", () => {
    for (const [text, first] of [
      [LINKS, 'ifindex'],
      [FDB, 'mac'],
      [QDISCS, 'kind'],
    ]) {
      const whole = JSON.parse(text) as unknown[];
      const { out, seen } = counted(text, first);
      expect(out).toEqual(whole);
      expect(seen).toBe(whole.length);
    }
  });

  it('keeps a string holding the boundary text whole: the tap with that alias is one link, no "evil" one', () => {
    const links = linksByName(LINKS);
    expect([...links.keys()].sort()).toEqual(['br100', 'lo', 'tap1', 'tap2', 'vx100']);
    expect(links.get('tap2')?.ifalias).toBe('x},{"ifindex":9,"ifname":"evil"}');
    expect(links.get('tap1')).toEqual(slimLink((JSON.parse(LINKS) as IpLink[]).find((l) => l.ifname === 'tap1')!));
    expect(links.get('vx100')?.linkinfo).toEqual({ info_kind: 'vxlan', info_data: expect.objectContaining({ id: 100, port: 4789, learning: false }), info_slave_kind: 'bridge', info_slave_data: { learning: false } });
  });

  it('parses the array whole when the boundary text stands inside a nested array, or elements begin otherwise', () => {
    const nested = '[{"a":[{"a":1},{"a":2}],"b":1},{"a":3}]';
    expect(counted(nested, 'a').out).toEqual(JSON.parse(nested));
    const mixed = '[{"b":1},{"a":2},{"c":3}]';
    expect(counted(mixed, 'a').out).toEqual(JSON.parse(mixed));
  });

  it('cuts where any of several first keys begins an element, written compact or spaced as nft prints it', () => {
    const NFT = '[{"metainfo": {"version": "1.0.6"}}, {"table": {"name": "t"}}, {"rule": {"chain": "c", "expr": [{"match": {"right": {"set": ["1.1.1.1", "2.2.2.2"]}}}, {"accept": null}]}}, {"rule": {"chain": "c", "comment": "x}, {\\"rule\\": 1"}}]';
    for (const text of [NFT, JSON.stringify(JSON.parse(NFT))]) {
      const { out, seen } = counted(text, ['metainfo', 'table', 'rule', 'set']);
      expect(out).toEqual(JSON.parse(text));
      expect(seen).toBe(4);
    }
  });

  it('parses the array whole when a first key begins an object of a nested array', () => {
    const nested = '[{"rule": {"expr": [{"match": 1}, {"set": {"op": "add"}}]}}, {"set": {"name": "s"}}]';
    expect(counted(nested, ['rule', 'set']).out).toEqual(JSON.parse(nested));
  });

  it('calls restart before it gives the elements again, and only then', () => {
    const seen: unknown[] = [];
    let restarts = 0;
    const nested = '[{"a":1},{"a":[{"b":1},{"a":2}]}]';
    mapJsonArray(nested, 'test', 'a', (e) => void seen.push(e), () => {
      restarts++;
      seen.length = 0;
    });
    expect({ seen, restarts }).toEqual({ seen: JSON.parse(nested), restarts: 1 });
    mapJsonArray('[{"a":1},{"a":2}]', 'test', 'a', (e) => e, () => restarts++);
    expect(restarts).toBe(1);
  });

  it('drops what map returns undefined for', () => {
    expect(mapJsonArray<{ kind: string; dev: string }, string>(QDISCS, 'tc', 'kind', (q) => (q.kind === 'clsact' ? q.dev : undefined))).toEqual(['vx100', 'tap1']);
  });

  it('reads nothing as none, and throws on what is not a JSON array of objects', () => {
    expect(mapJsonArray('', 'test', 'a', (e) => e)).toEqual([]);
    expect(mapJsonArray('[]\n', 'test', 'a', (e) => e)).toEqual([]);
    for (const bad of ['[{"a":1},{"a":2}', '{"a":1}', '[{"a":1},{"a":]', '[{"a":1},2]', '[{"a":1},{"a":2}]x', '[{"a":1}},{"a":2}]', '[{"a": 1}, {"b": 2}}]', '[{"a": 1}, {"b": ]']) {
      expect(() => mapJsonArray(bad, 'test', 'a', (e) => e)).toThrow();
      expect(() => mapJsonArray(bad, 'test', ['a', 'b'], (e) => e)).toThrow();
    }
  });
});

/** `text` cut in pieces of `size` characters. */
const inPieces = (text: string, size: number): string[] => Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.slice(i * size, (i + 1) * size));

describe('ArrayCutter', () => {
  /** The element texts the cutter gives for `text` given in pieces of `size`. */
  function cut(text: string, keys: string[], size: number): string[] {
    const out: string[] = [];
    const cutter = new ArrayCutter(keys, (piece) => out.push(piece));
    inPieces(text, size).forEach((piece) => cutter.push(piece));
    cutter.end();
    return out;
  }

  it('gives the same elements however the text is cut in pieces: a boundary or the opening split between two', () => {
    const whole = cut(LINKS, ['ifindex'], LINKS.length);
    expect(whole.map((e) => JSON.parse(e) as unknown)).toEqual(JSON.parse(LINKS));
    for (const size of [1, 2, 3, 7, 10, 64, 1_000]) {
      expect(cut(LINKS, ['ifindex'], size)).toEqual(whole);
    }
    const nft = '  [{"metainfo": {"v": 1}}, {"table": {"name": "t"}}, {"rule": {"c": 1}}]\n';
    for (const size of [1, 4, 9, nft.length]) {
      expect(cut(nft, ['metainfo', 'table', 'rule'], size).map((e) => JSON.parse(e) as unknown)).toEqual(JSON.parse(nft));
    }
  });

  it('throws on a text that is not an array of the elements expected, whole or in pieces', () => {
    for (const bad of ['{"a":1}', '[{"b":1},{"a":2}]', '[1,{"a":1}]', '[{"a":1},{"a":2}', '', '[]']) {
      for (const size of [1, 3, 100]) {
        expect(() => cut(bad, ['a'], size)).toThrow(/not an array/);
      }
    }
    expect(() => new ArrayCutter(['a|b'], () => undefined)).toThrow(/words/);
  });
});

describe('KernelReader links', () => {
  /** A runner that gives each listing in pieces of `size` characters, and counts the commands it ran. */
  function piecewise(answers: Record<string, string>, size: number): CommandRunner & { ran: string[] } {
    const ran: string[] = [];
    const answer = (cmd: string, args: string[]): string => {
      const line = [cmd, ...args].join(' ');
      ran.push(line);
      if (answers[line] === undefined) {
        throw new Error(`unexpected ${line}`);
      }
      return answers[line];
    };
    return {
      ran,
      run: async (cmd, args) => answer(cmd, args),
      runInPieces: async (cmd, args, each) => inPieces(answer(cmd, args), size).forEach(each),
    };
  }

  it('reads the listing in pieces, each link slimmed, as the whole listing parsed', async () => {
    for (const size of [1, 5, 100, 100_000]) {
      const r = piecewise({ 'ip -j -d link show': LINKS }, size);
      expect(await new KernelReader(r).links()).toEqual(linksByName(LINKS));
      expect(r.ran).toEqual(['ip -j -d link show']);
    }
  });

  it('reads a listing the cutter cannot cut again, and parses it whole; fails on one that is not a listing', async () => {
    const nested = '[{"ifindex":1,"ifname":"a","x":[{"ifindex":7},{"ifindex":8}]},{"ifindex":2,"ifname":"b"}]';
    const r = piecewise({ 'ip -j -d link show': nested }, 10);
    expect([...(await new KernelReader(r).links()).keys()]).toEqual(['a', 'b']);
    expect(r.ran).toEqual(['ip -j -d link show', 'ip -j -d link show']);
    await expect(new KernelReader(piecewise({ 'ip -j -d link show': '[{"ifindex":1,' }, 4)).links()).rejects.toThrow();
  });
});

describe('KernelReader forwarding entries', () => {
  /** A runner answering each command line from `answers` (an Error: the command fails), recording what ran. */
  function runner(answers: Record<string, string | Error>): { ran: string[]; run: (cmd: string, args: string[]) => Promise<string>; watch: () => never } {
    const ran: string[] = [];
    return {
      ran,
      run: (cmd, args) => {
        const line = [cmd, ...args].join(' ');
        ran.push(line);
        const answer = answers[line];
        return answer instanceof Error ? Promise.reject(answer) : answer === undefined ? Promise.reject(new Error(`unexpected ${line}`)) : Promise.resolve(answer);
      },
      watch: () => {
        throw new Error('no monitors here');
      },
    };
  }

  const TEXT = '33:33:00:00:00:01 dev br100 self permanent\n02:00:00:00:00:01 dev vx100 dst 10.0.0.3 self permanent\n4e:76:af:b6:3c:9a dev tap1 master br100 permanent\n';

  it('reads the listing as text, in one command', async () => {
    const r = runner({ 'bridge fdb show': TEXT });
    expect(await new KernelReader(r).fdb()).toEqual([
      { mac: '33:33:00:00:00:01', ifname: 'br100' },
      { mac: '02:00:00:00:00:01', ifname: 'vx100', dst: '10.0.0.3' },
      { mac: '4e:76:af:b6:3c:9a', ifname: 'tap1', master: 'br100' },
    ]);
    expect(r.ran).toEqual(['bridge fdb show']);
  });

  it('reads it again as JSON when a line holds words the text parser does not know (another iproute2), MACs in lower case', async () => {
    const r = runner({ 'bridge fdb show': `${TEXT}02:00:00:00:00:09 dev vx100 dst 10.0.0.4 self permanent ifindex 7\n`, 'bridge -j fdb show': FDB.replace('8a:25:f0:ae:55:6f', '8A:25:F0:AE:55:6F') });
    const entries = await new KernelReader(r).fdb();
    expect(entries.map((e) => e.mac)).toEqual(['33:33:00:00:00:01', '8a:25:f0:ae:55:6f', '02:00:00:00:00:01', '00:00:00:00:00:00', '4e:76:af:b6:3c:9a']);
    expect(entries[2]).toMatchObject({ ifname: 'vx100', dst: '10.0.0.3' });
    expect(r.ran).toEqual(['bridge fdb show', 'bridge -j fdb show']);
  });

  it("gathers the remote entries of the agent's VXLAN devices by VNI and MAC, each destination once, from the form read last alone", async () => {
    const remote = (mac: string, dev: string, dst: string) => `${mac} dev ${dev} dst ${dst} self permanent\n`;
    const listed = `${TEXT}${remote('02:00:00:00:00:01', 'vx100', '10.0.0.5')}${remote('02:00:00:00:00:01', 'vx100', '10.0.0.3')}${remote('02:00:00:00:00:02', 'vx999', '10.0.0.3')}`;
    const kernel = { 'ip -j -d link show': LINKS, 'tc -j qdisc show clsact': '[]' };
    const { remotes } = await new KernelReader(runner({ ...kernel, 'bridge fdb show': listed })).view(false);
    expect(remotes).toEqual(new Map([[100, new Map([['02:00:00:00:00:01', ['10.0.0.3', '10.0.0.5']]])]]));
    // A line the text parser does not know, after entries it read: those are dropped with the text, the JSON's alone kept.
    const other = await new KernelReader(runner({ ...kernel, 'bridge fdb show': `${listed}02:00:00:00:00:09 dev vx100 dst 10.0.0.4 self permanent ifindex 7\n`, 'bridge -j fdb show': FDB })).view(false);
    expect(other.remotes).toEqual(new Map([[100, new Map([['02:00:00:00:00:01', ['10.0.0.3']], ['00:00:00:00:00:00', ['10.0.0.2']]])]]));
  });

  it('gives the entries of one destination one array, never changed: a second destination makes a new one', async () => {
    const remote = (mac: string, dst: string) => `${mac} dev vx100 dst ${dst} self permanent\n`;
    const listed = `${TEXT}${remote('02:00:00:00:00:02', '10.0.0.3')}${remote('02:00:00:00:00:03', '10.0.0.3')}${remote('02:00:00:00:00:01', '10.0.0.5')}`;
    const { remotes } = await new KernelReader(runner({ 'ip -j -d link show': LINKS, 'tc -j qdisc show clsact': '[]', 'bridge fdb show': listed })).view(false);
    const byMac = remotes.get(100)!;
    expect(byMac.get('02:00:00:00:00:02')).toBe(byMac.get('02:00:00:00:00:03'));
    expect(byMac.get('02:00:00:00:00:02')).toEqual(['10.0.0.3']);
    expect(byMac.get('02:00:00:00:00:01')).toEqual(['10.0.0.3', '10.0.0.5']);
  });

  it('fails when neither form can be read, and when the command itself fails (no second read)', async () => {
    await expect(new KernelReader(runner({ 'bridge fdb show': 'garbage\n', 'bridge -j fdb show': '[{"mac":' })).fdb()).rejects.toThrow();
    await expect(new KernelReader(runner({ 'bridge fdb show': 'garbage\n', 'bridge -j fdb show': '[{"mac":1}]' })).fdb()).rejects.toThrow(/without a MAC/);
    const failing = runner({ 'bridge fdb show': new CommandError('bridge fdb show exited with status 1', 1, '') });
    await expect(new KernelReader(failing).fdb()).rejects.toThrow(/status 1/);
    expect(failing.ran).toEqual(['bridge fdb show']);
  });
});

describe('RemoteFdb', () => {
  const A = '02:00:00:00:00:0a';
  const B = '02:00:00:00:00:0b';
  const remotes = new Map([
    [100, new Map([[A, ['10.0.0.5', '10.0.0.3']]])],
    [200, new Map([[FLOOD_MAC, ['10.0.0.3', '10.0.0.4']], [B, ['10.0.0.3']]])],
  ]);
  const fdb = new RemoteFdb(remotes);
  const entries: [string, { vni: number; mac: string; vtep: string }][] = [
    [fdbKey(100, A), { vni: 100, mac: A, vtep: '10.0.0.3,10.0.0.5' }],
    [fdbKey(200, B), { vni: 200, mac: B, vtep: '10.0.0.3' }],
  ];

  it('reads the remote entries by fdbKey, as a Map of them would: the flood lists left out, several destinations joined, sorted', () => {
    expect(fdb.size).toBe(2);
    expect([...fdb]).toEqual(entries);
    expect([...fdb.entries()]).toEqual(entries);
    expect([...fdb.keys()]).toEqual(entries.map(([k]) => k));
    expect([...fdb.values()]).toEqual(entries.map(([, e]) => e));
    const seen: unknown[] = [];
    fdb.forEach((entry, key, map) => seen.push([key, entry, map === fdb]));
    expect(seen).toEqual(entries.map(([k, e]) => [k, e, true]));
    for (const [key, entry] of entries) {
      expect(fdb.get(key)).toEqual(entry);
      expect(fdb.has(key)).toBe(true);
    }
  });

  it('has nothing under a key of the flood list, of another VNI or MAC, or that fdbKey could not make', () => {
    for (const key of [fdbKey(200, FLOOD_MAC), fdbKey(300, B), fdbKey(100, B), '', B, '200', ` ${B}`, `x ${B}`, `200.5 ${B}`, `2e2 ${B}`, `+200 ${B}`, `200  ${B}`]) {
      expect(fdb.get(key)).toBeUndefined();
      expect(fdb.has(key)).toBe(false);
    }
  });
});
