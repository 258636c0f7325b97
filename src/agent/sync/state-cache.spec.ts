import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateCache, emptyDesiredState } from './state-cache';

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

  // The file as agents before the span kinds were defined in one place wrote it: still read, and written the same way.
  const versionTwo = {
    version: 2,
    epoch: 'e1',
    revision: 7,
    hostId: 'h',
    vtepIp: '192.0.2.1',
    segments: [{ id: 's', tenantId: 't', vni: 5, vteps: ['192.0.2.1'] }],
    ports: [{ id: 'p', segmentId: 's', mac: '02:00:00:00:00:01', ips: ['10.0.0.1'], hostId: 'h', vtepIp: '192.0.2.1', vmId: '', preparedHostId: '', migrationId: '', preparedVtepIp: '' }],
    policies: [{ portId: 'p', portSecurity: true, mac: '02:00:00:00:00:01', ips: ['10.0.0.1'], allowedAddressPairs: [], ingress: [], egress: [] }],
    members: [{ groupId: 'g', family: 'IPv6', cidr: 'fd00::/64' }],
  };

  it('reads a version 2 file, every kind under its id, and writes it back unchanged', async () => {
    const here = join(dir, 'v2');
    mkdirSync(here);
    writeFileSync(join(here, 'desired-state.json'), JSON.stringify(versionTwo));
    const loaded = (await new StateCache(here).load())!;
    expect([...loaded.segments.keys(), ...loaded.ports.keys(), ...loaded.policies.keys(), ...loaded.members.keys()]).toEqual(['s', 'p', 'p', 'g/IPv6/fd00::/64']);
    expect(loaded.members.get('g/IPv6/fd00::/64')).toEqual(versionTwo.members[0]);
    const cache = new StateCache(here);
    cache.save(loaded);
    await cache.flush();
    expect(JSON.parse(readFileSync(join(here, 'desired-state.json'), 'utf8'))).toEqual(versionTwo);
  });

  it('ignores a file of another version (a snapshot refills everything)', async () => {
    const here = join(dir, 'v1');
    mkdirSync(here);
    writeFileSync(join(here, 'desired-state.json'), JSON.stringify({ ...versionTwo, version: 1 }));
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
