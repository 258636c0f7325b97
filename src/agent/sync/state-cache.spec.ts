import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateCache, emptyDesiredState } from './state-cache';

/** Polls `probe` until it holds, failing past `ms`. */
async function waitFor(probe: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await probe())) {
    if (performance.now() > deadline) {
      throw new Error(`not within ${ms} ms`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('agent state cache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'overlay-cache-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads nothing before the first save', async () => {
    expect(await new StateCache(join(dir, 'none')).load()).toBeUndefined();
  });

  it('restores exactly the last state saved, coalescing rapid saves', async () => {
    const cache = new StateCache(dir);
    for (let revision = 1; revision <= 20; revision++) {
      const state = { ...emptyDesiredState(), epoch: 'e1', revision, hostId: 'h', vtepIp: '192.0.2.1' };
      state.segments.set('s', { id: 's', tenantId: 't', vni: revision, vteps: [] });
      cache.save(state);
    }
    await cache.flush();
    const loaded = (await new StateCache(dir).load())!;
    expect(loaded.revision).toBe(20);
    expect(loaded.segments.get('s')!.vni).toBe(20);
    // Atomic replace: no temp file is left behind.
    expect(readdirSync(dir)).toEqual(['desired-state.json']);
  });

  const stateAt = (revision: number) => ({ ...emptyDesiredState(), epoch: 'e1', revision, hostId: 'h', vtepIp: '192.0.2.1' });
  const revisionIn = async (here: string) => (await new StateCache(here).load())?.revision;

  it('writes at most once per interval: saves within it wait, then the latest is written', async () => {
    const here = join(dir, 'interval');
    const cache = new StateCache(here, undefined, 1_500);
    cache.save(stateAt(1));
    await waitFor(async () => (await revisionIn(here)) === 1, 5_000);
    cache.save(stateAt(2));
    cache.save(stateAt(3));
    await new Promise((r) => setTimeout(r, 100));
    expect(await revisionIn(here)).toBe(1);
    await waitFor(async () => (await revisionIn(here)) === 3, 5_000);
  });

  it('writes at once when flushed, whatever the interval (a stopping agent)', async () => {
    const here = join(dir, 'flushed');
    const cache = new StateCache(here, undefined, 3_600_000);
    cache.save(stateAt(1));
    cache.save(stateAt(2));
    await cache.flush();
    cache.save(stateAt(3));
    await cache.flush();
    expect(await revisionIn(here)).toBe(3);
  });

  // The file as this version writes it: read, and written back the same way.
  const versionThree = {
    version: 3,
    epoch: 'e1',
    revision: 7,
    hostId: 'h',
    vtepIp: '192.0.2.1',
    segments: [{ id: 's', tenantId: 't', vni: 5, vteps: ['192.0.2.1'] }],
    ports: [{ id: 'p', segmentId: 's', mac: '02:00:00:00:00:01', ips: ['10.0.0.1'], hostId: 'h', vtepIp: '192.0.2.1', vmId: '', preparedHostId: '', migrationId: '', preparedVtepIp: '', analyzer: false }],
    policies: [{ portId: 'p', portSecurity: true, mac: '02:00:00:00:00:01', ips: ['10.0.0.1'], allowedAddressPairs: [], ingress: [], egress: [] }],
    members: [{ groupId: 'g', family: 'IPv6', cidr: 'fd00::/64' }],
    mirrors: [{ sessionId: 'm', portId: 'p', ingress: true, egress: false, filterEthertype: '', filterProtocol: 0, filterRemoteCidr: '', snapLength: 0, sinkPortId: '', sinkInterface: '', vni: 9000, remoteIp: '192.0.2.9', udpPort: 4789, erspanId: 0, erspanVersion: 0 }],
    mirrorSinks: [{ sessionId: 'm2', vni: 9001, portId: 'p', interface: '' }],
  };

  it('reads a version 3 file, every kind under its id, and writes it back unchanged', async () => {
    const here = join(dir, 'v2');
    mkdirSync(here);
    writeFileSync(join(here, 'desired-state.json'), JSON.stringify(versionThree));
    const loaded = (await new StateCache(here).load())!;
    expect([...loaded.segments.keys(), ...loaded.ports.keys(), ...loaded.policies.keys(), ...loaded.members.keys(), ...loaded.mirrors.keys(), ...loaded.mirrorSinks.keys()]).toEqual(['s', 'p', 'p', 'g/IPv6/fd00::/64', 'm/p', 'm2']);
    expect(loaded.members.get('g/IPv6/fd00::/64')).toEqual(versionThree.members[0]);
    // A file an older agent wrote names no record: none is claimed (the controller resumes by revision).
    expect(loaded.record).toBe('');
    const cache = new StateCache(here);
    cache.save({ ...loaded, record: `${versionThree.revision}-4294967296` });
    await cache.flush();
    expect(JSON.parse(readFileSync(join(here, 'desired-state.json'), 'utf8'))).toEqual({ ...versionThree, record: `${versionThree.revision}-4294967296` });
    expect((await new StateCache(here).load())!.record).toBe(`${versionThree.revision}-4294967296`);
  });

  it('writes a state of many chunks exactly as JSON.stringify of the whole would', async () => {
    const here = join(dir, 'chunks');
    const state = { ...emptyDesiredState(), epoch: 'e1', revision: 9, hostId: 'h', vtepIp: '192.0.2.1' };
    for (let i = 0; i < 3_000; i++) {
      const mac = `02:00:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
      state.ports.set(`p${i}`, { ...versionThree.ports[0], tapName: '', id: `p${i}`, mac });
      state.members.set(`g/IPv4/10.0.${i >> 8}.${i & 0xff}/32`, { groupId: 'g', family: 'IPv4', cidr: `10.0.${i >> 8}.${i & 0xff}/32` });
    }
    state.segments.set('s', versionThree.segments[0]);
    const expected = JSON.stringify({ version: 3, ...state, ...Object.fromEntries(['segments', 'ports', 'policies', 'members', 'mirrors', 'mirrorSinks'].map((c) => [c, [...(state[c as 'ports'] as Map<string, unknown>).values()]])) });
    expect(expected.length).toBeGreaterThan(4 * 64 * 1024);
    const cache = new StateCache(here);
    cache.save(state);
    await cache.flush();
    // Compared by length and first difference: a failure of toBe would print megabytes.
    const written = readFileSync(join(here, 'desired-state.json'), 'utf8');
    let same = 0;
    while (same < written.length && written[same] === expected[same]) {
      same++;
    }
    expect({ length: written.length, same }).toEqual({ length: expected.length, same: expected.length });
  });

  it('ignores a file of another version (a snapshot refills everything)', async () => {
    const here = join(dir, 'v1');
    mkdirSync(here);
    writeFileSync(join(here, 'desired-state.json'), JSON.stringify({ ...versionThree, version: 1 }));
    expect(await new StateCache(here).load()).toBeUndefined();
    // Version 2 had no mirrors: resuming from it would never bring those created before its revision.
    writeFileSync(join(here, 'desired-state.json'), JSON.stringify({ ...versionThree, version: 2 }));
    expect(await new StateCache(here).load()).toBeUndefined();
  });

  it('reports a write that fails and does not throw; the next save writes again', async () => {
    const here = join(dir, 'blocked');
    writeFileSync(here, 'a file where the directory should be');
    const failures: string[] = [];
    const cache = new StateCache(here, (err) => failures.push(err.message));
    cache.save({ ...emptyDesiredState(), epoch: 'e', revision: 1 });
    await cache.flush();
    expect(failures).toEqual([expect.stringMatching(/EEXIST|ENOTDIR/)]);
    rmSync(here);
    cache.save({ ...emptyDesiredState(), epoch: 'e', revision: 2 });
    await cache.flush();
    expect(failures).toHaveLength(1);
    expect((await cache.load())?.revision).toBe(2);
  });
});
