import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
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
});
