import type { Pipeline, default as Redis } from 'ioredis';
import { CONTROLLER, type Actor } from '../../src/controller/auth/principal';
import { loadConfig } from '../../src/controller/config';
import { EncodedCommand, type EncodedArgs } from '../../src/controller/store/encoded-command';
import { MaterializedView } from '../../src/controller/store/materialized-view';
import { RedisStore } from '../../src/controller/store/redis-store';
import { StoreRecovery } from '../../src/controller/store/store-recovery';
import { waitUntil } from '../support/agents';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { RawAgent } from '../support/raw-agent';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A write as the repositories make them: the tenant ARGV[3] with the record ARGV[4], and its change record. */
const CREATE = `
redis.call('HSET', K.tenants(), ARGV[3], ARGV[4])
return commit({ op('tenant', ARGV[3], ARGV[4]) })`;

type ScriptRunner = (script: { lua: string; sha: string }, args: EncodedArgs) => Promise<unknown>;

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
  async function setUp(minReplicas: number, env: Record<string, string> = {}) {
    const prefix = uniquePrefix('lost-record');
    prefixes.push(prefix);
    const config = (replicas: number) => loadConfig({ REDIS_URL, OVERLAY_KEY_PREFIX: prefix, OVERLAY_GRPC_INSECURE: 'true', OVERLAY_REDIS_MIN_REPLICAS: String(replicas), ...env });
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
    const store = writer as unknown as { runScript: ScriptRunner; scriptArgs(args: string[], actor: Actor, now: number): EncodedArgs };
    const run = store.runScript.bind(writer);
    store.runScript = async (script, args) => {
      store.runScript = run;
      const k = writer.keys;
      const revision = Number(await redis.get(k.revision()));
      const [[lostId]] = (await redis.xrevrange(k.changeLog(), '+', '-', 'COUNT', 1)) as [string, string[]][];
      const [[previousId]] = (await redis.xrevrange(k.changeLog(), `(${lostId}`, '-', 'COUNT', 1)) as [string, string[]][];
      // A MULTI is a Pipeline, which takes a command made beforehand (the store's are encoded when made).
      const multi = redis.multi().xdel(k.changeLog(), lostId).hdel(k.tenants(), 'lost').call('XSETID', k.changeLog(), previousId).set(k.revision(), revision - 1) as unknown as Pipeline;
      multi.sendCommand(new EncodedCommand('evalsha', script.sha, args));
      for (const id of further) {
        multi.sendCommand(new EncodedCommand('evalsha', script.sha, store.scriptArgs([id, JSON.stringify({ id })], CONTROLLER, Date.now())));
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

  it('with nonces off (replicas of an earlier version still read the log), records are <revision>-0 and the view tails them without a reload', async () => {
    const { view, create, redis, writer } = await setUp(1, { OVERLAY_CHANGELOG_NONCES: '0' });
    let resets = 0;
    view.onReset(() => resets++);
    let last = 0;
    for (const id of ['a', 'b', 'c']) {
      last = Number(await create(id));
    }
    await view.waitForRevision(last, 5_000);
    const ids = ((await redis.xrange(writer.keys.changeLog(), '-', '+')) as [string, string[]][]).map(([id]) => id);
    expect(ids).toEqual(Array.from({ length: last }, (_, i) => `${i + 1}-0`));
    // Two idle rounds of the tail (each read found nothing, its own record no other record).
    const idle = view as unknown as { checkRevisionWentBack: () => Promise<void> };
    const check = idle.checkRevisionWentBack.bind(view);
    let idleRounds = 0;
    idle.checkRevisionWentBack = () => (idleRounds++, check());
    await waitUntil(() => idleRounds >= 2, 5_000, () => 'the tail is not idle');
    expect(view.record).toBe(`${last}-0`);
    expect(resets).toBe(0);
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

/**
 * An agent that applied a record names it when it reconnects (Hello.applied_record): it is
 * resumed only when the store's record of that revision is the one it names. A record the store
 * lost and made again from another write (here: a name the store never had) gets a snapshot.
 */
describe('a resume names the record the agent applied', () => {
  const prefix = uniquePrefix('lost-record-resume');
  let ctl: Harness;
  const raws: RawAgent[] = [];
  let instances = 0;

  beforeAll(async () => {
    ctl = await startController({ prefix });
  });

  afterAll(async () => {
    raws.forEach((r) => r.close());
    await ctl?.close();
    await dropPrefix(REDIS_URL, prefix);
  });

  /** A bare agent of host hv-lost, a new instance each time, once it received its first message. */
  async function connect(hello: Record<string, unknown> = {}): Promise<RawAgent> {
    const raw = new RawAgent(ctl.grpcTarget, 'hv-lost', `raw-${++instances}`, hello);
    raws.push(raw);
    await waitUntil(() => raw.messages > 0 || raw.ended !== undefined, 10_000, () => 'no answer to the Hello');
    return raw;
  }

  it('tells the record with every snapshot and delta, and resumes only from the store\u2019s record', async () => {
    const client = api(ctl.url);
    const tenantId = (await client.post('/v1/tenants', { name: 't' })).body.id;
    const segmentId = (await client.post('/v1/segments', { tenantId, name: 's' })).body.id;
    const hostId = (await client.post('/v1/hosts', { name: 'hv-lost', vtepIp: '192.0.2.81' })).body.id;
    expect((await client.post('/v1/ports', { segmentId, hostId, ips: [] })).status).toBe(201);

    const first = await connect();
    await waitUntil(() => first.received.some((m) => m.snapshotEnd), 10_000, () => 'no snapshot');
    const end = first.received.find((m) => m.snapshotEnd)!.snapshotEnd!;
    expect(end.record).toMatch(new RegExp(`^${end.revision}-[1-9][0-9]*$`));
    // A write in its span: the delta names its record.
    expect((await client.post('/v1/ports', { segmentId, hostId, ips: [] })).status).toBe(201);
    await waitUntil(() => first.received.some((m) => m.delta), 10_000, () => 'no delta');
    const delta = first.received.find((m) => m.delta)!.delta!;
    expect(delta.record).toMatch(new RegExp(`^${delta.revision}-[1-9][0-9]*$`));
    const [[stored]] = (await ctl.redis.xrange(ctl.app.get(RedisStore).keys.changeLog(), `${delta.revision}`, `${delta.revision}`)) as [string, string[]][];
    expect(delta.record).toBe(stored);
    first.close();

    const resumeFrom = { appliedRevision: delta.revision, epoch: end.epoch };
    const started = (raw: RawAgent) => (raw.received[0].delta ? 'resume' : raw.received[0].snapshotChunk ? 'snapshot' : 'other');
    // The store's record: resumed (the delta up to the view's revision names its record).
    const same = await connect({ ...resumeFrom, appliedRecord: delta.record });
    expect(started(same)).toBe('resume');
    expect(same.received[0].delta!.record).toBe(delta.record);
    // Another record of that revision (one the store lost): a snapshot.
    const [revision, nonce] = delta.record.split('-');
    const lost = await connect({ ...resumeFrom, appliedRecord: `${revision}-${BigInt(nonce) + 1n}` });
    expect(started(lost)).toBe('snapshot');
    // None named (an older agent): resumed by the revision, as before.
    expect(started(await connect(resumeFrom))).toBe('resume');
    // Hostile or malformed: a snapshot.
    for (const appliedRecord of ['garbage', `${revision}-18446744073709551615`, `${Number(revision) - 1}-${nonce}`, `${revision}-${nonce}-1`]) {
      expect([appliedRecord, started(await connect({ ...resumeFrom, appliedRecord }))]).toEqual([appliedRecord, 'snapshot']);
    }
  });
});
