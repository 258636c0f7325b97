import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { created, factories } from '../support/factories';
import { RawConnection } from '../support/raw-http';

/**
 * Every write runs as its caller (auth/request-context.ts): the actor a mutation script records,
 * in the audit trail and in the change record, is the token of the request that made it, also
 * when two callers' writes interleave, when the body arrives in pieces, and across the awaits of
 * a migration. What carries it is an AsyncLocalStorage entered just before the route runs: a
 * request that lost it would be recorded as `overlayd`, and one that leaked would name another.
 */
describe('every write is recorded under the token that asked for it', () => {
  const prefix = uniquePrefix('actor-context');
  let h: Harness;
  let admin: ReturnType<typeof api>;
  const callers = new Map<string, { id: string; client: ReturnType<typeof api> }>();
  let segmentId: string;
  let hostIds: string[];

  /** Every write event of the audit trail, newest first, as the admin reads it. */
  async function writes(): Promise<{ actor: { kind: string; tokenId?: string; name: string; route?: string }; revision: number | null; resources: { kind: string; id: string }[] }[]> {
    const res = await admin.get('/v1/events?type=write&limit=1000');
    expect(res.status).toBe(200);
    expect(res.body.nextCursor).toBeNull();
    return res.body.items;
  }

  /** The actor of the change record that made `revision`, from the change log itself. */
  async function changeActor(revision: number): Promise<{ kind: string; tokenId?: string; name: string }> {
    // An incomplete id is every entry of that revision (`<revision>-<nonce>`).
    const entries = await h.redis.xrange(`{${prefix}}:log`, `${revision}`, `${revision}`);
    expect(entries).toHaveLength(1);
    const fields = entries[0][1];
    return JSON.parse(fields[fields.indexOf('actor') + 1]);
  }

  beforeAll(async () => {
    h = await startController({ prefix });
    admin = api(h.url);
    for (const name of ['op-a', 'op-b']) {
      const token = await created(admin.post('/v1/tokens', { name, role: 'operator' }));
      callers.set(name, { id: token.id, client: api(h.url, token.token) });
    }
    const make = factories(admin);
    const tenant = await make.tenant();
    segmentId = (await make.segment(tenant.id, { cidr: '10.9.0.0/16' })).id;
    hostIds = [(await make.host()).id, (await make.host()).id];
  });

  afterAll(async () => {
    await h?.close();
    await dropPrefix(h.config.redisUrl, prefix);
  });

  it('names the caller of each of many interleaved writes by two tokens, in the audit trail and the change record', async () => {
    const made = new Map<string, string>(); // port id -> the token name that made it
    const a = callers.get('op-a')!.client;
    const b = callers.get('op-b')!.client;
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const [name, client] = i % 2 ? ['op-b', b] : ['op-a', a];
        if (i % 4 === 3) {
          const batch = await client.post('/v1/ports/batch', { ports: [{ segmentId }, { segmentId, hostId: hostIds[0] }] });
          expect(batch.status).toBe(201);
          batch.body.items.forEach((p: { id: string }) => made.set(p.id, name));
        } else {
          const port = await created(client.post('/v1/ports', { segmentId, vmId: `vm-${i}` }));
          made.set(port.id, name);
          // A second write on the same port by the other token.
          const other = name === 'op-a' ? 'op-b' : 'op-a';
          expect((await callers.get(other)!.client.patch(`/v1/ports/${port.id}`, { hostId: hostIds[1] })).status).toBe(200);
        }
      }),
    );
    const events = await writes();
    const portEvents = events.filter((e) => e.resources.some((r) => r.kind === 'port' && made.has(r.id)));
    // 30 single creates and 30 PATCHes, 10 batches.
    expect(portEvents).toHaveLength(70);
    const wrong: string[] = [];
    for (const event of portEvents) {
      const port = event.resources.find((r) => r.kind === 'port')!.id;
      const patched = event.actor.route === '/v1/ports/:id';
      const maker = made.get(port)!;
      const expected = patched ? (maker === 'op-a' ? 'op-b' : 'op-a') : maker;
      const fromLog = await changeActor(event.revision!);
      if (event.actor.name !== expected || event.actor.tokenId !== callers.get(expected)!.id || fromLog.tokenId !== callers.get(expected)!.id) {
        wrong.push(`${event.actor.route} port ${port}: event names ${event.actor.name}, change record ${fromLog.name}; ${expected} asked`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('names the caller of a write whose body arrived in pieces, after the request was authenticated', async () => {
    const token = await created(admin.post('/v1/tokens', { name: 'slow-writer', role: 'operator' }));
    const body = JSON.stringify({ name: 'pieces' });
    const conn = await RawConnection.open(h.url);
    try {
      conn.write(`POST /v1/tenants HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${token.token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`);
      // The headers were read (and the token checked) before any of the body came.
      await conn.waitFor('100 Continue');
      conn.write(body.slice(0, 5));
      // Meanwhile the admin writes: its request must not lend its actor to the pending one.
      await created(admin.post('/v1/tenants', { name: 'meanwhile' }));
      conn.write(body.slice(5));
      const res = await conn.response();
      expect(res.status).toBe(201);
      const [event] = (await writes()).filter((e) => e.resources.some((r) => r.id === res.body.id));
      expect(event.actor).toMatchObject({ kind: 'token', tokenId: token.id, name: 'slow-writer', route: '/v1/tenants' });
    } finally {
      conn.destroy();
    }
  });

  it('names who prepared and who aborted a migration in its timeline and the audit trail', async () => {
    const a = callers.get('op-a')!;
    const b = callers.get('op-b')!;
    await created(admin.post('/v1/ports', { segmentId, vmId: 'vm-migrating', hostId: hostIds[0] }));
    // No agent: the destination never acks, so the prepare answers 202 at once and the migration stays open.
    const prepared = await a.client.post('/v1/migrations?timeout=0', { vmId: 'vm-migrating', sourceHostId: hostIds[0], destinationHostId: hostIds[1] });
    expect(prepared.status).toBe(202);
    const aborted = await b.client.post(`/v1/migrations/${prepared.body.id}/abort`);
    expect(aborted.status).toBe(200);
    const by = Object.fromEntries(aborted.body.timeline.filter((e: { by?: unknown }) => e.by).map((e: { event: string; by: unknown }) => [e.event, e.by]));
    expect(by).toEqual({ prepared: { tokenId: a.id, name: 'op-a', role: 'operator' }, aborted: { tokenId: b.id, name: 'op-b', role: 'operator' } });
    const events = (await writes()).filter((e) => e.resources.some((r) => r.id === prepared.body.id));
    expect(events.map((e) => [e.actor.name, e.actor.route])).toEqual([
      ['op-b', '/v1/migrations/:id/abort'],
      ['op-a', '/v1/migrations'],
    ]);
  });
});
