import { keysFor } from './keys';
import type { MaterializedView, StoreIdentity } from './materialized-view';
import type { RedisStore } from './redis-store';
import { StoreRecovery } from './store-recovery';

/**
 * The gate's decisions, one per row of the README's table: what a replica that held `seen` does
 * with a store found as `found`. The few commands it sends are answered by a map (its medium
 * test, store-recovery.medium-spec.ts, runs them on a real Redis).
 */
describe('StoreRecovery.admit', () => {
  const keys = keysFor('unit');
  let data: Map<string, string>;
  let retired: Set<string>;
  let recovery: StoreRecovery;
  /** The store's replicated acknowledgements (OVERLAY_REDIS_MIN_REPLICAS). */
  let replication: { config: { redisMinReplicas: number } };

  beforeEach(() => {
    data = new Map();
    retired = new Set();
    const redis = {
      set: async (key: string, value: string, nx: 'NX') => (nx === 'NX' && data.has(key) ? null : (data.set(key, value), 'OK')),
      get: async (key: string) => data.get(key) ?? null,
      sismember: async (_key: string, member: string) => (retired.has(member) ? 1 : 0),
    };
    replication = { config: { redisMinReplicas: 0 } };
    const store = Object.assign(replication, { keys, defineScript: () => undefined, read: async <T>(fn: (r: typeof redis) => Promise<T>) => fn(redis) }) as unknown as RedisStore;
    recovery = new StoreRecovery(store, {} as MaterializedView);
  });

  const found = (epoch: string | null, revision: number, record: string | null = null): StoreIdentity => ({ epoch, revision, recovery: record });

  it('makes the epoch of a brand-new deployment (nothing seen, empty store), and is no recovery', async () => {
    const epoch = await recovery.admit(found(null, 0), { epoch: '', revision: 0 });
    expect(epoch).toMatch(/^[0-9a-f]{16}$/);
    expect(data.get(keys.epoch())).toBe(epoch);
    expect(recovery.active).toBe(false);
  });

  it('takes the store as it is on a replica\u2019s first load (agents will tell if it lost data)', async () => {
    expect(await recovery.admit(found('e1', 7), { epoch: '', revision: 0 })).toBe('e1');
    expect(recovery.active).toBe(false);
  });

  it('makes the same epoch again when the store lost it before any revision (nothing lost)', async () => {
    expect(await recovery.admit(found(null, 0), { epoch: 'e1', revision: 0 })).toBe('e1');
    expect(recovery.active).toBe(false);
  });

  it.each([
    ['store-empty', found(null, 0), { epoch: 'e1', revision: 12 }],
    ['epoch-changed', found('e2', 40), { epoch: 'e1', revision: 12 }],
    ['revision-went-back', found('e1', 11), { epoch: 'e1', revision: 12 }],
    // The view's record 12 is not the store's: the store lost it and made 12 (and more) again.
    ['revision-went-back', found('e1', 12), { epoch: 'e1', revision: 12, recordLost: true }],
    ['revision-went-back', found('e1', 15), { epoch: 'e1', revision: 12, recordLost: true }],
  ] as const)('%s: holds the view and writes the record', async (reason, store, seen) => {
    expect(await recovery.admit(store, seen)).toBeUndefined();
    expect(recovery.active).toBe(true);
    expect(recovery.current).toMatchObject({ reason, previous: { epoch: seen.epoch, revision: seen.revision }, found: { epoch: store.epoch, revision: store.revision } });
    expect(JSON.parse(data.get(keys.recovery())!)).toEqual(recovery.current);
  });

  it('adopts another replica\u2019s record, and ends when the store is level again (restored)', async () => {
    const record = JSON.stringify({ reason: 'store-empty', detail: 'x', detectedAt: 't', detectedBy: { replica: 'r2', host: null }, previous: { epoch: 'e1', revision: 12 }, found: { epoch: null, revision: 0 } });
    expect(await recovery.admit(found(null, 0, record), { epoch: 'e1', revision: 12 })).toBeUndefined();
    expect(recovery.current?.detectedBy.replica).toBe('r2');
    expect(await recovery.admit(found('e1', 12), { epoch: 'e1', revision: 12 })).toBe('e1');
    expect(recovery.active).toBe(false);
  });

  it('with replicated acknowledgements, a store behind what the view applied is no recovery (a failover lost unacknowledged writes)', async () => {
    replication.config.redisMinReplicas = 1;
    expect(await recovery.admit(found('e1', 10), { epoch: 'e1', revision: 12 })).toBe('e1');
    // Nor is one that lost the view's record and made its revision again.
    expect(await recovery.admit(found('e1', 13), { epoch: 'e1', revision: 12, recordLost: true })).toBe('e1');
    expect(recovery.active).toBe(false);
    // An emptied store still is one.
    expect(await recovery.admit(found(null, 0), { epoch: 'e1', revision: 12 })).toBeUndefined();
    expect(recovery.current).toMatchObject({ reason: 'store-empty' });
  });

  it('takes a new epoch whose predecessor an accept retired (the accept was on another replica)', async () => {
    retired.add('e1');
    expect(await recovery.admit(found('e2', 0), { epoch: 'e1', revision: 12 })).toBe('e2');
    expect(recovery.active).toBe(false);
  });
});
