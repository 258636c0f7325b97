import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';

/** The largest batch the configuration allows must go through in one step (and leave the controller healthy). */
describe('large batches', () => {
  const prefix = uniquePrefix('large-batch');
  let ctl: Harness;

  beforeAll(async () => {
    ctl = await startController({ prefix });
  });

  afterAll(async () => {
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  it('creates a batch of OVERLAY_MAX_BATCH_SIZE (10,000) ports in one step', async () => {
    const client = api(ctl.url);
    const tenantId = (await client.post('/v1/tenants', { name: 'big' })).body.id;
    const segmentId = (await client.post('/v1/segments', { tenantId, name: 'big', cidr: '10.0.0.0/16' })).body.id;
    const hostId = (await client.post('/v1/hosts', { name: 'hv', vtepIp: '192.0.2.1' })).body.id;
    const ports = Array.from({ length: ctl.config.maxBatchSize }, (_, i) => ({ segmentId, hostId, ips: [`10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`] }));
    const res = await client.post('/v1/ports/batch', { ports });
    expect(res.status).toBe(201);
    expect(res.body.items).toHaveLength(10_000);
    expect((await client.get('/readyz')).status).toBe(200);
    expect((await client.get(`/v1/segments/${segmentId}/mappings`)).body.items).toHaveLength(10_000);
    // Every port's MAC and IP is in the segment's indexes (the script writes them in chunks): reusing the last one's is refused.
    const last = res.body.items[9_999];
    expect((await client.post('/v1/ports', { segmentId, ips: last.ips })).body).toMatchObject({ code: 'DUPLICATE_IP', field: 'ips[0]' });
    expect((await client.post('/v1/ports', { segmentId, mac: last.mac })).body).toMatchObject({ code: 'DUPLICATE_MAC', field: 'mac' });
  });
});
