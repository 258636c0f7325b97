import { isDeepStrictEqual } from 'node:util';
import type { Host } from '../../src/controller/model/host';
import type { Port } from '../../src/controller/model/port';
import type { Segment } from '../../src/controller/model/segment';
import { MaterializedView } from '../../src/controller/store/materialized-view';
import { RedisStore } from '../../src/controller/store/redis-store';
import type { Tenant } from '../../src/controller/model/tenant';
import { Authenticator } from '../../src/controller/auth/authenticator';
import { ErrorCode } from '../../src/controller/errors';
import { finishesWithin } from '../support/agents';
import { startController, TEST_ADMIN_TOKEN, uniquePrefix, type Harness } from '../support/controller-harness';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis';

/**
 * overlayd on a Redis of its own (AOF, appendfsync always), SIGKILLed while writes are in
 * flight and then restarted on the same data directory. Contract under test: a write the API
 * acknowledged (2xx) survives the crash with the content it was acknowledged with; while Redis
 * is away the API fails fast with 503 STORE_UNAVAILABLE instead of hanging; the controller heals
 * by itself once Redis is back; and its materialized view catches up with what Redis holds.
 * Authentication fails closed: a token that cannot be checked (Redis away, the replica's 500 ms
 * token cache expired or never filled) is answered 503 too, never served, and never 401 (the
 * token may well be valid).
 *
 * The `it`s run in order and share one deployment: each is a phase of the same crash.
 */

interface Reply<T = any> {
  status: number;
  body: T;
}

/** Every bound here is a deadline for a condition, never a sleep that hopes something happened. */
const REQUEST_DEADLINE_MS = 8_000;
const RECOVERY_DEADLINE_MS = 15_000;
const STORM_WRITERS = 8;
/** The crash comes right after this many writes of the storm were acknowledged. */
const STORM_ACKS_BEFORE_CRASH = 120;

async function waitFor<T>(what: string, deadlineMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) {
        return value;
      }
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${deadlineMs} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** 2xx: the API acknowledged the write (201; 202 when a realization wait timed out). */
const isAck = (status: number) => status >= 200 && status < 300;

/**
 * The content a write was acknowledged with, as read back: every field of the acknowledgement
 * with the same value. Reads may add derived, live fields (a port's `realized`, a host's agent
 * status) that are not stored content.
 */
function sameContent(read: unknown, acknowledged: object): boolean {
  if (typeof read !== 'object' || read === null) {
    return false;
  }
  return Object.entries(acknowledged).every(([key, value]) => isDeepStrictEqual((read as Record<string, unknown>)[key], value));
}

/** Runs `fn` over `items`, at most `width` at a time. */
async function inParallel<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        await fn(items[next++]);
      }
    }),
  );
}

describe('overlayd across a Redis crash (SIGKILL) and restart', () => {
  const prefix = uniquePrefix('redis-restart');
  let redis: PrivateRedis | undefined;
  let h: Harness | undefined;
  let view: MaterializedView;
  let store: RedisStore;

  /** What the API acknowledged (2xx), by id, exactly as it was answered. */
  const acked = {
    tenants: new Map<string, Tenant>(),
    segments: new Map<string, Segment>(),
    hosts: new Map<string, Host>(),
    ports: new Map<string, Port>(),
  };
  let tenantId: string;
  let hostId: string;
  let segA: Segment; // with a CIDR: its ports carry IPs
  let segB: Segment;
  let segC: Segment;
  /** An operator token made before the crash and never used: no cache holds it. */
  let unusedToken: string;
  let ipCounter = 0;
  const nextIp = () => {
    const n = ipCounter++;
    return `10.20.${Math.floor(n / 250)}.${(n % 250) + 2}`;
  };

  /** A JSON call bounded by a deadline: an answer that does not come is a failure, not a hang. `token` null: none. */
  async function call<T = any>(method: string, path: string, body?: unknown, deadlineMs = REQUEST_DEADLINE_MS, token: string | null = TEST_ADMIN_TOKEN): Promise<Reply<T>> {
    let res: Response;
    try {
      res = await fetch(h!.url + path, {
        method,
        headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(deadlineMs),
      });
    } catch (err) {
      throw new Error(`${method} ${path}: no answer within ${deadlineMs} ms (${(err as Error).message})`);
    }
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  /** Creates through the API and records the object if (and only if) the API acknowledged it. */
  async function create<T extends { id: string }>(table: Map<string, T>, path: string, body: unknown): Promise<Reply<T>> {
    const res = await call<T>('POST', path, body);
    if (isAck(res.status)) {
      table.set(res.body.id, res.body);
    }
    return res;
  }

  async function createPorts(ports: unknown[]): Promise<Reply<{ items: Port[] }>> {
    const res = await call<{ items: Port[] }>('POST', '/v1/ports/batch', { ports });
    if (isAck(res.status)) {
      for (const port of res.body.items) {
        acked.ports.set(port.id, port);
      }
    }
    return res;
  }

  const freshSnapshot = () => MaterializedView.readSnapshot(h!.redis, store);

  beforeAll(async () => {
    redis = await startPrivateRedis();
    h = await startController({ prefix, redisUrl: redis.url, env: { OVERLAY_VNI_RANGES: '5000-5999' } });
    // The harness's own client reconnects like the controller's; its errors while Redis is down are expected.
    h.redis.on('error', () => undefined);
    view = h.app.get(MaterializedView);
    store = h.app.get(RedisStore);
  });

  afterAll(async () => {
    // Bounded, so that a controller stuck on Redis cannot keep the private Redis alive.
    try {
      await finishesWithin(h ? h.close() : Promise.resolve(), 10_000, () => "the controller's close");
    } finally {
      await redis?.destroy();
    }
  });

  it('takes a storm of writes and refuses those in flight when Redis is SIGKILLed with 503 STORE_UNAVAILABLE', async () => {
    const token = await call('POST', '/v1/tokens', { name: 'unused-operator', role: 'operator' });
    expect(token.status).toBe(201);
    unusedToken = token.body.token;
    const tenant = await create(acked.tenants, '/v1/tenants', { name: 'acme', maxSegments: null });
    expect(tenant.status).toBe(201);
    tenantId = tenant.body.id;
    const host = await create(acked.hosts, '/v1/hosts', {
      name: 'hv-01',
      vtepIp: '192.0.2.11',
      inventory: { uplinks: [{ name: 'ens1f0', pciAddress: '0000:3b:00.0', team: 'bond0', mode: 'active' }], trunkedVlans: [110, 120] },
    });
    expect(host.status).toBe(201);
    hostId = host.body.id;
    const segments = [
      await create(acked.segments, '/v1/segments', { tenantId, name: 'web', cidr: '10.20.0.0/16', vlanId: 110 }),
      await create(acked.segments, '/v1/segments', { tenantId, name: 'db' }),
      await create(acked.segments, '/v1/segments', { tenantId, name: 'pinned', vni: 9000 }),
    ];
    expect(segments.map((s) => s.status)).toEqual([201, 201, 201]);
    [segA, segB, segC] = segments.map((s) => s.body);

    // A steady base: single ports, then batches.
    for (let i = 0; i < 20; i++) {
      const res = await create(acked.ports, '/v1/ports', { segmentId: segA.id, vmId: `vm-${i}`, ips: [nextIp()], hostId });
      expect(res.status).toBe(201);
    }
    for (let b = 0; b < 8; b++) {
      const res = await createPorts(
        Array.from({ length: 50 }, (_, i) => (i % 2 ? { segmentId: segB.id, vmId: `vm-b${b}-${i}`, hostId } : { segmentId: segC.id, mac: `02:aa:00:00:${b.toString(16).padStart(2, '0')}:${i.toString(16).padStart(2, '0')}` })),
      );
      expect(res.status).toBe(201);
      expect(res.body.items).toHaveLength(50);
    }

    // The storm: concurrent writers of every kind; Redis dies right after the N-th acknowledgement,
    // with the other writers' requests still in flight. Every writer stops at its first refusal.
    let stormAcks = 0;
    let crash: Promise<void> | undefined;
    const refusals: Reply[] = [];
    const writer = async (w: number) => {
      for (let i = 0; ; i++) {
        let res: Reply;
        switch (i % 4) {
          case 0:
            res = await create(acked.ports, '/v1/ports', { segmentId: segA.id, vmId: `storm-${w}-${i}`, ips: [nextIp()], hostId });
            break;
          case 1:
            res = await createPorts(Array.from({ length: 20 }, (_, j) => ({ segmentId: j % 2 ? segB.id : segA.id, ips: j % 2 ? [] : [nextIp()], hostId: j % 3 ? hostId : null })));
            break;
          case 2:
            res = await create(acked.segments, '/v1/segments', { tenantId, name: `storm-${w}-${i}` });
            break;
          default:
            res = await create(acked.ports, '/v1/ports', { segmentId: segB.id });
        }
        if (!isAck(res.status)) {
          refusals.push(res);
          return;
        }
        if (++stormAcks === STORM_ACKS_BEFORE_CRASH) {
          crash = redis!.kill();
        }
      }
    };
    await Promise.all(Array.from({ length: STORM_WRITERS }, (_, w) => writer(w)));
    await crash;

    expect(crash).toBeDefined();
    expect(stormAcks).toBeGreaterThanOrEqual(STORM_ACKS_BEFORE_CRASH);
    // The writes that were not acknowledged were refused as such: unknown outcome, not an error of ours.
    expect(refusals).toHaveLength(STORM_WRITERS);
    for (const refusal of refusals) {
      expect(refusal).toMatchObject({ status: 503, body: { code: 'STORE_UNAVAILABLE' } });
    }
    expect(acked.ports.size).toBeGreaterThan(420);
  });

  it('answers 503 STORE_UNAVAILABLE promptly while Redis is down, and /readyz 503, without hanging; a token it cannot check is refused 503 as well (fail closed)', async () => {
    const authenticator = h!.app.get(Authenticator);
    const refusedBefore = authenticator.refused[ErrorCode.Unauthenticated];
    // Each call carries a deadline (REQUEST_DEADLINE_MS): a hang fails the test rather than stalling it.
    const [readyz, healthz, getTenant, listPorts, getSegment, postPort, postBatch, postSegment, unusedRead, unusedWrite, unknownRead] = await Promise.all([
      call('GET', '/readyz'),
      call('GET', '/healthz'),
      call('GET', `/v1/tenants/${tenantId}`),
      call('GET', `/v1/ports?segmentId=${segB.id}&limit=10`),
      call('GET', `/v1/segments/${segA.id}`),
      call('POST', '/v1/ports', { segmentId: segB.id }),
      call('POST', '/v1/ports/batch', { ports: [{ segmentId: segB.id }, { segmentId: segC.id }] }),
      call('POST', '/v1/segments', { tenantId, name: 'while-down' }),
      // A token no cache holds must be looked up in Redis, which cannot be done: not served, and not 401 (it may well be valid).
      call('GET', `/v1/tenants/${tenantId}`, undefined, REQUEST_DEADLINE_MS, unusedToken),
      call('POST', '/v1/segments', { tenantId, name: 'unchecked' }, REQUEST_DEADLINE_MS, unusedToken),
      // Without Redis an unknown token looks like a valid one: not a 401 either.
      call('GET', '/v1/tenants', undefined, REQUEST_DEADLINE_MS, `ovl_${'A'.repeat(43)}`),
    ]);
    expect(readyz).toEqual({ status: 503, body: { status: 'not ready', redis: 'unreachable' } });
    expect(healthz).toEqual({ status: 200, body: { status: 'ok' } });
    // The admin token may still be in the replica's token cache (500 ms) or not: 503 either way.
    for (const res of [getTenant, listPorts, getSegment, postPort, postBatch, postSegment, unusedRead, unusedWrite, unknownRead]) {
      expect(res).toMatchObject({ status: 503, body: { code: 'STORE_UNAVAILABLE' } });
    }
    // Refused before anything of it ran, and said so: the client may retry (a write refused later is of unknown outcome).
    expect(unusedWrite.body.message).toMatch(/the token could not be checked; nothing of the request was carried out/);
    // What needs no lookup is refused as always (after the others: recording the refusal queues a write).
    const missing = await call('GET', '/v1/tenants', undefined, REQUEST_DEADLINE_MS, null);
    const malformed = await call('GET', '/v1/tenants', undefined, REQUEST_DEADLINE_MS, 'not a token');
    expect(missing).toMatchObject({ status: 401, body: { code: 'UNAUTHENTICATED' } });
    expect(malformed).toMatchObject({ status: 401, body: { code: 'UNAUTHENTICATED' } });
    // Only those two count as failed authentications: a store failure is none.
    expect(authenticator.refused[ErrorCode.Unauthenticated] - refusedBefore).toBe(2);
  });

  it('recovers by itself once Redis is restarted (no controller restart)', async () => {
    await redis!.start();
    await waitFor('/readyz to answer 200 after the restart', RECOVERY_DEADLINE_MS, async () => {
      const res = await call('GET', '/readyz');
      return res.status === 200 ? res : undefined;
    });
    const tenant = await waitFor('a read to succeed after the restart', RECOVERY_DEADLINE_MS, async () => {
      const res = await call('GET', `/v1/tenants/${tenantId}`);
      return res.status === 200 ? res : undefined;
    });
    expect(tenant.body).toMatchObject(acked.tenants.get(tenantId)!);
    // The token refused while Redis was away was not remembered as bad.
    expect(await call('GET', `/v1/tenants/${tenantId}`, undefined, REQUEST_DEADLINE_MS, unusedToken)).toMatchObject({ status: 200, body: acked.tenants.get(tenantId)! });
  });

  it('still serves every acknowledged tenant, segment, host and port with the content it was acknowledged with', async () => {
    const mismatches: string[] = [];
    const check = async (path: string, expected: object) => {
      const res = await call('GET', path);
      if (res.status !== 200 || !sameContent(res.body, expected)) {
        mismatches.push(`${path}: ${res.status} ${JSON.stringify(res.body)} (acknowledged ${JSON.stringify(expected)})`);
      }
    };
    const all = [
      ...[...acked.tenants.values()].map((t) => [`/v1/tenants/${t.id}`, t] as const),
      ...[...acked.segments.values()].map((s) => [`/v1/segments/${s.id}`, s] as const),
      ...[...acked.hosts.values()].map((x) => [`/v1/hosts/${x.id}`, x] as const),
      ...[...acked.ports.values()].map((p) => [`/v1/ports/${p.id}`, p] as const),
    ];
    await inParallel(all, 32, ([path, expected]) => check(path, expected));
    expect(mismatches).toEqual([]);

    // The indexes behind the lists survived too: every acknowledged port is listed, as acknowledged.
    const listed = new Map<string, Port>();
    let cursor: string | null = null;
    do {
      const page: Reply<{ items: Port[]; nextCursor: string | null }> = await call('GET', `/v1/ports?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      page.body.items.forEach((p) => listed.set(p.id, p));
      cursor = page.body.nextCursor;
    } while (cursor);
    const missing = [...acked.ports.keys()].filter((id) => !listed.has(id));
    expect(missing).toEqual([]);
    const different = [...acked.ports].filter(([id, port]) => !sameContent(listed.get(id), port)).map(([id]) => id);
    expect(different).toEqual([]);
  });

  it('never reissues an acknowledged VNI: segments created after the restart get new ones', async () => {
    const ackedVnis = [...acked.segments.values()].map((s) => s.vni);
    expect(new Set(ackedVnis).size).toBe(ackedVnis.length);
    const fresh: Segment[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await create(acked.segments, '/v1/segments', { tenantId, name: `after-restart-${i}` });
      expect(res.status).toBe(201);
      fresh.push(res.body);
    }
    for (const segment of fresh) {
      expect(ackedVnis).not.toContain(segment.vni);
    }
    // No two segments Redis holds share a VNI (a create refused with 503 may still have happened and own one).
    const held = new Map<number, string>();
    for (const segment of (await freshSnapshot()).segments.values()) {
      expect(held.get(segment.vni) ?? segment.id).toBe(segment.id);
      held.set(segment.vni, segment.id);
    }
    // Pinning an acknowledged VNI is refused as taken.
    const pinned = await call('POST', '/v1/segments', { tenantId, name: 'steal', vni: segA.vni });
    expect(pinned).toMatchObject({ status: 409, body: { code: 'VNI_TAKEN', field: 'vni' } });
  });

  it('brings the materialized view level with Redis after the restart and new writes', async () => {
    // Writes after the restart must reach the view through the change log tail.
    const batch = await createPorts(Array.from({ length: 30 }, () => ({ segmentId: segA.id, ips: [nextIp()], hostId })));
    expect(batch.status).toBe(201);
    const host = await create(acked.hosts, '/v1/hosts', { name: 'hv-02', vtepIp: '192.0.2.12' });
    expect(host.status).toBe(201);
    const bound = await call<Port>('PATCH', `/v1/ports/${batch.body.items[0].id}`, { hostId: host.body.id });
    expect(bound.status).toBe(200);
    acked.ports.set(bound.body.id, bound.body);

    // Nothing writes any more: the snapshot is final, and the view must reach exactly it.
    const snapshot = await freshSnapshot();
    await view.waitForRevision(snapshot.revision, RECOVERY_DEADLINE_MS);
    const state = view.current;
    expect(state.revision).toBe(snapshot.revision);
    expect(state.tenants).toEqual(snapshot.tenants);
    expect(state.segments).toEqual(snapshot.segments);
    expect(state.hosts).toEqual(snapshot.hosts);
    expect(state.ports).toEqual(snapshot.ports);

    // And what the view holds includes every acknowledged write, as acknowledged.
    for (const [table, kind] of [
      [acked.tenants, 'tenants'],
      [acked.segments, 'segments'],
      [acked.hosts, 'hosts'],
      [acked.ports, 'ports'],
    ] as const) {
      const inView = state[kind] as Map<string, unknown>;
      // The view keeps no port timestamps (see compactPort); a port's record holds a role only for
      // an analyzer (the API answers `vm` for the others) and a tap name only when given (the API
      // answers null); realizationError is the hosts' report, not the record: compare the rest.
      const apiOnly = (k: string, v: unknown) => k === 'createdAt' || k === 'updatedAt' || k === 'realizationError' || (k === 'role' && v === 'vm') || (k === 'tapName' && v === null);
      const withoutTimestamps = (value: object) => (kind === 'ports' ? Object.fromEntries(Object.entries(value).filter(([k, v]) => !apiOnly(k, v))) : value);
      const absentOrDifferent = [...table].filter(([id, value]) => !sameContent(inView.get(id), withoutTimestamps(value))).map(([id]) => id);
      expect({ kind, absentOrDifferent }).toEqual({ kind, absentOrDifferent: [] });
    }
  });

  it('keeps the view following the change log when Redis drops its connections and takes them back at once', async () => {
    // The view's tail sits in XREAD BLOCK. A drop repaired by the very first reconnect attempt
    // (a quick restart, a proxy or CLIENT KILL) is the case where ioredis, told not to resend,
    // forgets the command that was in flight without ever settling it.
    await waitFor('the view tail to be blocked in XREAD', RECOVERY_DEADLINE_MS, async () => {
      const clients = ((await h!.redis.client('LIST')) as string).split('\n');
      return clients.some((line) => / flags=b /.test(line) && / cmd=xread /.test(line)) ? true : undefined;
    });
    let storeBack = false;
    store.redis.once('ready', () => (storeBack = true));
    // Every client but the one asking (SKIPME yes): the controller's and the tail's among them.
    expect(Number(await h!.redis.client('KILL', 'TYPE', 'normal'))).toBeGreaterThanOrEqual(2);
    // Writing before the controller noticed the drop would only test the API's 503, already covered.
    await waitFor('the controller to reconnect', RECOVERY_DEADLINE_MS, async () => (storeBack && store.redis.status === 'ready' ? true : undefined));

    const tenant = await create(acked.tenants, '/v1/tenants', { name: 'after-drop' });
    expect(isAck(tenant.status)).toBe(true);
    const snapshot = await freshSnapshot();
    expect(snapshot.tenants.get(tenant.body.id)).toEqual(tenant.body);
    await view.waitForRevision(snapshot.revision, RECOVERY_DEADLINE_MS);
    const state = view.current;
    expect(state.revision).toBe(snapshot.revision);
    expect(state.tenants).toEqual(snapshot.tenants);
    expect(state.segments).toEqual(snapshot.segments);
    expect(state.hosts).toEqual(snapshot.hosts);
    expect(state.ports).toEqual(snapshot.ports);
  });
});
