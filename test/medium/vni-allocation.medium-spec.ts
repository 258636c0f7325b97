import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';

/** Two controller replicas on one Redis: VNI uniqueness must hold in Redis, not in either process. */
describe('VNI allocation across replicas', () => {
  const prefix = uniquePrefix('vni');
  let a: Harness;
  let b: Harness;
  let tenantId: string;

  beforeAll(async () => {
    const env = { OVERLAY_VNI_RANGES: '5000-5999,7000-7499', OVERLAY_VNI_QUARANTINE_SECONDS: '3600' };
    a = await startController({ prefix, env });
    b = await startController({ prefix, env });
    tenantId = (await api(a.url).post('/v1/tenants', { name: 'racers' })).body.id;
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await dropPrefix(a.config.redisUrl, prefix);
  });

  it('gives 1,000 concurrent allocations through two replicas 1,000 distinct VNIs, lowest first', async () => {
    const clients = [api(a.url), api(b.url)];
    const responses = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => clients[i % 2].post('/v1/segments', { tenantId, name: `s${i}` })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(1000).fill(201));
    const vnis = responses.map((r) => r.body.vni as number).sort((x, y) => x - y);
    expect(new Set(vnis).size).toBe(1000);
    // Lowest free first: exactly the first range, in full.
    expect(vnis[0]).toBe(5000);
    expect(vnis[999]).toBe(5999);
  });

  it('moves on to the next range, then answers 409 VNI_RANGE_EXHAUSTED and changes nothing', async () => {
    const client = api(b.url);
    const next = await client.post('/v1/segments', { tenantId, name: 'next' });
    expect(next.body.vni).toBe(7000);
    const rest = await Promise.all(Array.from({ length: 499 }, (_, i) => client.post('/v1/segments', { tenantId, name: `r${i}` })));
    expect(rest.every((r) => r.status === 201)).toBe(true);

    const before = await a.dump();
    const refused = await client.post('/v1/segments', { tenantId, name: 'one-too-many' });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'VNI_RANGE_EXHAUSTED', field: 'vni' });
    expect(await a.dump()).toEqual(before);
  });

  it('refuses a specific VNI that is taken with 409 VNI_TAKEN and changes nothing', async () => {
    const before = await a.dump();
    const refused = await api(a.url).post('/v1/segments', { tenantId, name: 'dup', vni: 5123 });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'VNI_TAKEN', field: 'vni' });
    expect(await a.dump()).toEqual(before);
  });

  it('grants a specific free VNI outside the allocation ranges', async () => {
    const res = await api(a.url).post('/v1/segments', { tenantId, name: 'pinned', vni: 16_777_215 });
    expect(res.status).toBe(201);
    expect(res.body.vni).toBe(16_777_215);
  });

  it('does not reissue a deleted segment’s VNI during its quarantine', async () => {
    const client = api(a.url);
    const list = await client.get(`/v1/segments?tenantId=${tenantId}&limit=1`);
    const victim = list.body.items[0];
    expect((await client.delete(`/v1/segments/${victim.id}`)).status).toBe(204);

    // The range is full but for the quarantined VNI: allocation must still refuse.
    const refused = await client.post('/v1/segments', { tenantId, name: 'after-delete' });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('VNI_RANGE_EXHAUSTED');
    const asked = await client.post('/v1/segments', { tenantId, name: 'ask', vni: victim.vni });
    expect(asked.status).toBe(409);
    expect(asked.body).toMatchObject({ code: 'VNI_QUARANTINED', field: 'vni' });
  });
});

describe('VNI quarantine end', () => {
  const prefix = uniquePrefix('vni-q');
  let c: Harness;

  beforeAll(async () => {
    c = await startController({ prefix, env: { OVERLAY_VNI_RANGES: '100-101', OVERLAY_VNI_QUARANTINE_SECONDS: '1' } });
  });

  afterAll(async () => {
    await c?.close();
    await dropPrefix(c.config.redisUrl, prefix);
  });

  it('reuses a VNI only after its quarantine ends', async () => {
    const client = api(c.url);
    const tenantId = (await client.post('/v1/tenants', { name: 't' })).body.id;
    const first = (await client.post('/v1/segments', { tenantId, name: 'a' })).body;
    await client.post('/v1/segments', { tenantId, name: 'b' });
    const deletedAt = Date.now();
    expect((await client.delete(`/v1/segments/${first.id}`)).status).toBe(204);

    // Poll until the VNI comes back; it must not come back before the quarantine is over.
    const deadline = Date.now() + 10_000;
    let reissued;
    while (Date.now() < deadline) {
      const res = await client.post('/v1/segments', { tenantId, name: 'c' });
      if (res.status === 201) {
        reissued = res.body;
        break;
      }
      expect(res.body.code).toBe('VNI_RANGE_EXHAUSTED');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(reissued?.vni).toBe(first.vni);
    expect(Date.now() - deletedAt).toBeGreaterThanOrEqual(1000);
  });
});
