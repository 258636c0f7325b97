import type Redis from 'ioredis';
import { CONTROLLER } from '../../src/controller/auth/principal';
import { loadConfig } from '../../src/controller/config';
import { MaterializedView } from '../../src/controller/store/materialized-view';
import { RedisStore } from '../../src/controller/store/redis-store';
import { StoreRecovery } from '../../src/controller/store/store-recovery';
import { waitUntil } from '../support/agents';
import { dropPrefix, uniquePrefix } from '../support/controller-harness';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A write as the repositories make them: the tenant ARGV[3] with the record ARGV[4], and its change record. */
const CREATE = `
redis.call('HSET', K.tenants(), ARGV[3], ARGV[4])
return commit({ op('tenant', ARGV[3], ARGV[4]) })`;

type ScriptRunner = (script: { lua: string; sha: string }, argv: (string | number)[]) => Promise<unknown>;

/**
 * A Sentinel failover that loses a write the view applied, without Sentinel: the view applies
 * revision R (tenant `lost`); then, in one MULTI (so the view cannot see the store in between, as
 * it cannot see a failover), the store loses it as the new master would never have had it (its
 * entry and its tenant gone, the stream's last id and the revision back at R-1) and another
 * write makes revision R again (tenant `remade`), and, for `further`, more writes follow.
 *
 * The record's nonce (the sequence of its entry id) is chosen: the remade record's sorts before
 * the lost one's or after it, the two ways the tail can meet it.
 */
describe('a lost record whose revision the store makes again', () => {
  const prefixes: string[] = [];
  const closers: (() => Promise<void>)[] = [];

  afterAll(async () => {
    for (const close of closers.reverse()) {
      await close();
    }
    for (const prefix of prefixes) {
      await dropPrefix(REDIS_URL, prefix);
    }
  });

  /** A writer store and a view with its gate, at revision 1; `minReplicas` is the gate's setting (its store never writes). */
  async function setUp(minReplicas: number) {
    const prefix = uniquePrefix('lost-record');
    prefixes.push(prefix);
    const config = (replicas: number) => loadConfig({ REDIS_URL, OVERLAY_KEY_PREFIX: prefix, OVERLAY_GRPC_INSECURE: 'true', OVERLAY_REDIS_MIN_REPLICAS: String(replicas) });
    const writer = new RedisStore(config(0));
    const viewStore = new RedisStore(config(minReplicas));
    const view = new MaterializedView(viewStore);
    const recovery = new StoreRecovery(viewStore, view);
    closers.push(async () => {
      await view.stop();
      await writer.onModuleDestroy();
      await viewStore.onModuleDestroy();
    });
    writer.defineScript('testCreate', CREATE);
    // The nonces the writer's records get, in order (the store's own are random per process).
    const nonces: string[] = [];
    (writer as unknown as { nonces: { next(): string } }).nonces = { next: () => nonces.shift() ?? '4294967296' };
    const create = (id: string) => writer.mutate('testCreate', [id, JSON.stringify({ id })], CONTROLLER);
    await view.start(); // its first load makes the epoch, which writes need
    await view.waitForRevision(Number(await create('base')), 5_000);
    return { writer, view, recovery, create, nonces, redis: writer.redis };
  }

  /** Runs the next write of `writer` in one MULTI after the loss of revision R, with `further` more writes after it. */
  function loseThenRemake(writer: RedisStore, redis: Redis, further: string[]): void {
    const store = writer as unknown as { runScript: ScriptRunner };
    const run = store.runScript.bind(writer);
    store.runScript = async (script, argv) => {
      store.runScript = run;
      const k = writer.keys;
      const revision = Number(await redis.get(k.revision()));
      const [[lostId]] = (await redis.xrevrange(k.changeLog(), '+', '-', 'COUNT', 1)) as [string, string[]][];
      const [[previousId]] = (await redis.xrevrange(k.changeLog(), `(${lostId}`, '-', 'COUNT', 1)) as [string, string[]][];
      const multi = redis.multi().xdel(k.changeLog(), lostId).hdel(k.tenants(), 'lost').call('XSETID', k.changeLog(), previousId).set(k.revision(), revision - 1);
      multi.evalsha(script.sha, 1, ...argv);
      for (const id of further) {
        multi.evalsha(script.sha, 1, ...argv.slice(0, -2), id, JSON.stringify({ id }));
      }
      const replies = (await multi.exec())!;
      for (const [err] of replies) {
        expect(err).toBeNull();
      }
      return replies[4][1];
    };
  }

  it.each([
    ['idle at R, the remade record sorting before the lost one', [], '9000000000', '5000000000'],
    ['idle at R, the remade record sorting after the lost one', [], '5000000000', '9000000000'],
    ['moved on to R+3, the remade record sorting before the lost one', ['c', 'd', 'e'], '9000000000', '5000000000'],
    ['moved on to R+3, the remade record sorting after the lost one', ['c', 'd', 'e'], '5000000000', '9000000000'],
  ])('%s: the view reloads the store state and sends it to its listeners', async (_name, further, lostNonce, remadeNonce) => {
    const { writer, view, create, nonces, redis } = await setUp(1);
    nonces.push(lostNonce, remadeNonce);
    const lostRevision = Number(await create('lost'));
    await view.waitForRevision(lostRevision, 5_000);
    expect(view.current.tenants.has('lost')).toBe(true);
    let resets = 0;
    view.onReset(() => resets++);

    loseThenRemake(writer, redis, further);
    expect(Number(await create('remade'))).toBe(lostRevision);
    const expected = ['base', 'remade', ...further].sort();
    await waitUntil(
      () => !view.current.tenants.has('lost') && view.revision === lostRevision + further.length,
      5_000,
      () => `the view holds ${[...view.current.tenants.keys()].sort().join(',')} at revision ${view.revision}`,
    );
    expect([...view.current.tenants.keys()].sort()).toEqual(expected);
    expect(resets).toBeGreaterThan(0); // its listeners (the agents' streams) were told to resync
    expect(view.held).toBe(false);

    // And it tails on from there.
    const next = Number(await create('after'));
    await view.waitForRevision(next, 5_000);
    expect(view.current.tenants.has('after')).toBe(true);
  });

  it('without replicated acknowledgements, the lost write is a store recovery: the view holds what it had', async () => {
    const { writer, view, recovery, create, nonces, redis } = await setUp(0);
    nonces.push('9000000000', '5000000000');
    const lostRevision = Number(await create('lost'));
    await view.waitForRevision(lostRevision, 5_000);

    loseThenRemake(writer, redis, []);
    expect(Number(await create('remade'))).toBe(lostRevision);
    await waitUntil(() => recovery.active, 5_000, () => 'no recovery');
    expect(recovery.current).toMatchObject({ reason: 'revision-went-back', previous: { revision: lostRevision }, found: { revision: lostRevision } });
    expect(view.held).toBe(true);
    expect([...view.current.tenants.keys()].sort()).toEqual(['base', 'lost']);
  });
});
