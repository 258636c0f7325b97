import { compactPort } from '../../src/controller/store/view-state';
import { MaterializedView } from '../../src/controller/store/materialized-view';
import { RedisStore } from '../../src/controller/store/redis-store';
import type { RecordEcho } from '../../src/controller/store/change-log';
import type { Port } from '../../src/controller/model/port';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';

/**
 * A batch's change record is taken by the view's tail from the writer's echo (RecordEchoes) rather
 * than parsed: the echo must be exactly what the record parses to, and say its JSON's length.
 */
/** A deep copy made in this realm (structuredClone's objects are another realm's: toStrictEqual tells them apart), undefined fields kept. */
const copy = (value: unknown): unknown =>
  Array.isArray(value) ? value.map(copy) : value !== null && typeof value === 'object' ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, copy(v)])) : value;

describe('the echo of a batch of ports', () => {
  const prefix = uniquePrefix('record-echo');
  let h: Harness;

  beforeAll(async () => {
    h = await startController({ prefix });
  });

  afterAll(async () => {
    await h?.close();
    await dropPrefix(h.config.redisUrl, prefix);
  });

  it('is the record as parsed, with its length, and the view takes it and holds what a parse would give', async () => {
    const client = api(h.url);
    const store = h.app.get(RedisStore);
    const view = h.app.get(MaterializedView);
    const tenantId = (await client.post('/v1/tenants', { name: 'echo' })).body.id;
    const segmentId = (await client.post('/v1/segments', { tenantId, name: 'echo', cidr: '10.9.0.0/16' })).body.id;
    const hostId = (await client.post('/v1/hosts', { name: 'hv-echo', vtepIp: '192.0.2.9' })).body.id;
    const groupId = (await client.post('/v1/security-groups', { tenantId, name: 'web' })).body.id;

    // Copies of each echo as registered (the view later swaps its ports for its compact ones), and what the tail took.
    const added: { nonce: string; echo: RecordEcho }[] = [];
    const taken: (unknown[] | undefined)[] = [];
    const add = store.echoes.add.bind(store.echoes);
    const take = store.echoes.take.bind(store.echoes);
    jest.spyOn(store.echoes, 'add').mockImplementation((nonce, echo, now) => {
      added.push({ nonce, echo: copy(echo) as RecordEcho });
      add(nonce, echo, now);
    });
    jest.spyOn(store.echoes, 'take').mockImplementation((nonce, text) => {
      const ops = take(nonce, text);
      taken.push(ops);
      return ops;
    });

    // Every optional field of a port, text JSON escapes, generated MACs, several IPs and address pairs.
    const ports = [
      { segmentId, hostId, ips: ['10.9.0.1', '10.9.0.2'] },
      { segmentId, vmId: 'vm-"q"\\x', mac: '52:54:00:AB:CD:EF', securityGroupIds: [groupId], allowedAddressPairs: [{ ip: '10.9.1.0/24' }, { ip: '10.9.0.9', mac: '02:00:00:00:00:99' }] },
      { segmentId, hostId, portSecurity: false, tapName: 'tap-echo' },
      { segmentId, role: 'analyzer' },
    ];
    const res = await client.post('/v1/ports/batch', { ports });
    expect(res.body).toMatchObject({ items: expect.any(Array) });
    expect(res.status).toBe(201);
    expect(added).toHaveLength(1);
    const { nonce, echo } = added[0];

    const log = (await h.redis.xrange(store.keys.changeLog(), '-', '+')) as [string, string[]][];
    const [entryId, fields] = log.find(([id]) => id.endsWith(`-${nonce}`))!;
    const text = fields[fields.indexOf('ops') + 1];
    expect(echo.opsLength).toBe(text.length);
    expect(echo.ops).toStrictEqual(JSON.parse(text));

    await view.waitForRevision(Number(entryId.split('-')[0]), 5_000);
    expect(taken.some((ops) => ops !== undefined)).toBe(true);
    expect(store.echoes.size).toBe(0);
    for (const op of JSON.parse(text) as { id: string; v: Port }[]) {
      expect(view.current.ports.get(op.id)).toStrictEqual(compactPort(op.v));
    }
  });

  it('is not taken for a record whose ops have another length (it is parsed), nor kept after a refused write', async () => {
    const store = h.app.get(RedisStore);
    store.echoes.add('12345', { ops: [], opsLength: 3 });
    expect(store.echoes.take('12345', '[]')).toBeUndefined();
    expect(store.echoes.size).toBe(0);

    const client = api(h.url);
    const tenantId = (await client.post('/v1/tenants', { name: 'echo-refused' })).body.id;
    const segmentId = (await client.post('/v1/segments', { tenantId, name: 'echo-refused' })).body.id;
    const res = await client.post('/v1/ports/batch', { ports: [{ segmentId, mac: '02:00:00:00:00:01' }, { segmentId, mac: '02:00:00:00:00:01' }] });
    expect(res.body).toMatchObject({ code: 'DUPLICATE_MAC', field: 'ports[1].mac' });
    expect(store.echoes.size).toBe(0);
  });
});
