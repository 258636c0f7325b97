import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { tapName } from '../../src/agent/dataplane/names';
import { keysFor } from '../../src/controller/store/keys';
import { makeAgent, waitUntil, type TestAgent } from '../support/agents';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { factories } from '../support/factories';
import { RawAgent } from '../support/raw-agent';

/**
 * Per-port NACKs on a real controller and Redis: one port a host's agent cannot program (its
 * in-memory dataplane refuses that tap, as the Linux one does when the kernel refuses the tap's
 * gate or attachment) holds back neither the acknowledgement of the host's other changes nor their
 * realization; it reads `realized: false` with the agent's reason until the agent programs it.
 * Then hostile lists from a bare protocol client.
 */
describe('per-port NACKs', () => {
  const prefix = uniquePrefix('port-nacks');
  let ctl: Harness;
  let client: ReturnType<typeof api>;
  let make: ReturnType<typeof factories>;
  const agents: TestAgent[] = [];
  const raws: RawAgent[] = [];
  const keys = keysFor(prefix);

  beforeAll(async () => {
    ctl = await startController({ prefix });
    client = api(ctl.url);
    make = factories(client);
  });

  afterAll(async () => {
    raws.forEach((r) => r.close());
    await Promise.all(agents.map((a) => a.cleanup()));
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  it("acks and realizes a host's other changes while one of its ports fails, says why on that port, and clears it once the agent programs it", async () => {
    const tenant = await make.tenant({ name: 'acme' });
    const seg = await make.segment(tenant.id, { name: 'web', cidr: '10.0.0.0/24' });
    const hv1 = await make.host({ name: 'hv-nack1', vtepIp: '192.0.2.51' });
    const hv2 = await make.host({ name: 'hv-nack2', vtepIp: '192.0.2.52' });
    const a1 = makeAgent('hv-nack1', ctl.grpcTarget, { firewall: true, backoffBaseMs: 50, backoffMaxMs: 400 });
    const a2 = makeAgent('hv-nack2', ctl.grpcTarget, { firewall: true });
    agents.push(a1, a2);
    await Promise.all([a1.agent.start(), a2.agent.start()]);
    const peer = await client.post('/v1/ports?wait=realized', { segmentId: seg.id, hostId: hv2.id, ips: ['10.0.0.9'] });
    const good = await client.post('/v1/ports?wait=realized', { segmentId: seg.id, hostId: hv1.id, ips: ['10.0.0.5'] });
    expect([peer.status, good.status, good.body.realized]).toEqual([201, 201, true]);

    // The next port's tap is refused on hv1 (kernel text, hostile: a control character, a line break).
    const bad = await client.post('/v1/ports', { segmentId: seg.id, ips: ['10.0.0.6'] });
    a1.dataplane.brokenTaps.set(tapName(bad.body.id), `ip refused "link set dev ${tapName(bad.body.id)} master br1000": RTNETLINK answers: Device or resource busy\u001b\nsecond line`);
    // A wait far longer than this test's deadline: answered when hv1 acks without the port, not at the timeout.
    const bound = await client.patch(`/v1/ports/${bad.body.id}?wait=realized&timeout=120000`, { hostId: hv1.id });
    expect(bound.status).toBe(202);
    expect(bound.body).toMatchObject({ id: bad.body.id, realized: false, pendingHostIds: expect.any(Array) });
    const reason = `ip refused "link set dev ${tapName(bad.body.id)} master br1000": RTNETLINK answers: Device or resource busy second line`;
    expect(bound.body.realizationError).toEqual({ hostId: hv1.id, reason, since: expect.any(String) });
    const since = bound.body.realizationError.since;
    // hv1 acknowledged the revision, for everything but that port.
    const host = (await client.get(`/v1/hosts/${hv1.id}`)).body;
    expect({ lag: host.lag, lastError: host.lastError }).toEqual({ lag: 0, lastError: null });
    expect(a1.dataplane.isOpen(tapName(bad.body.id))).toBe(false);

    // Another change on the same host, meanwhile: acknowledged and realized.
    const moved = await client.patch(`/v1/ports/${good.body.id}?wait=realized&timeout=120000`, { allowedAddressPairs: [{ ip: '10.0.0.50' }] });
    expect({ status: moved.status, realized: moved.body.realized, error: moved.body.realizationError }).toEqual({ status: 200, realized: true, error: undefined });
    await waitUntil(() => a1.dataplane.isOpen(tapName(good.body.id)), 5000, () => 'the good port is not open');
    expect((await client.get(`/v1/ports/${good.body.id}`)).body).toMatchObject({ realized: true, realizationError: null });
    expect((await client.get(`/v1/ports/${bad.body.id}`)).body).toMatchObject({ realized: false, realizationError: { hostId: hv1.id, reason, since } });
    const listed = (await client.get(`/v1/ports?hostId=${hv1.id}`)).body.items as { id: string; realizationError: unknown }[];
    expect(Object.fromEntries(listed.map((p) => [p.id, p.realizationError]))).toEqual({ [good.body.id]: null, [bad.body.id]: { hostId: hv1.id, reason, since } });
    // Every replica reads it from Redis; the gauge counts it.
    await waitUntil(async () => (await ctl.redis.hget(keys.agentPortFailures(), hv1.id)) !== null, 5000, () => 'not written to Redis');
    expect(JSON.parse((await ctl.redis.hget(keys.agentPortFailures(), hv1.id))!)).toMatchObject({ ports: { [bad.body.id]: { reason, since } } });
    const metrics = (await client.raw('GET', '/metrics')).body as string;
    expect(metrics).toContain(`overlay_host_failed_ports{host="hv-nack1"} 1`);
    expect(metrics).toContain(`overlay_host_failed_ports{host="hv-nack2"} 0`);

    // The kernel takes the tap again: the agent's retry (with backoff, no new change) programs it.
    a1.dataplane.brokenTaps.clear();
    await waitUntil(async () => (await client.get(`/v1/ports/${bad.body.id}`)).body.realized === true, 10_000, () => 'the port was not realized once the tap worked');
    expect((await client.get(`/v1/ports/${bad.body.id}`)).body.realizationError).toBeNull();
    expect(a1.dataplane.isOpen(tapName(bad.body.id))).toBe(true);
    await waitUntil(async () => (await ctl.redis.hget(keys.agentPortFailures(), hv1.id)) === null, 5000, () => 'not cleared in Redis');
  }, 60_000);

  describe('hostile failed-port lists', () => {
    let hostId: string;
    let portId: string;
    let otherPortId: string;
    let instances = 0;

    beforeAll(async () => {
      const tenant = await make.tenant({ name: 'hostile' });
      const seg = await make.segment(tenant.id, { name: 'h', cidr: '10.9.0.0/24' });
      hostId = (await make.host({ name: 'hv-raw', vtepIp: '192.0.2.61' })).id;
      const other = await make.host({ name: 'hv-other', vtepIp: '192.0.2.62' });
      portId = (await make.port(seg.id, { hostId, ips: ['10.9.0.5'] })).id;
      otherPortId = (await make.port(seg.id, { hostId: other.id, ips: ['10.9.0.6'] })).id;
    });

    async function connect(): Promise<RawAgent> {
      const raw = new RawAgent(ctl.grpcTarget, 'hv-raw', `raw-${++instances}`);
      raws.push(raw);
      await waitUntil(() => raw.delivered || raw.ended !== undefined, 5000, () => 'nothing delivered');
      return raw;
    }
    const applied = async () => (await client.get(`/v1/hosts/${hostId}`)).body.appliedRevision as number;
    const recorded = () => ctl.redis.hget(keys.agentPortFailures(), hostId);

    it("ignores ports the host does not hold (unknown, another host's), and keeps its own", async () => {
      const raw = await connect();
      raw.send({ ack: { revision: raw.revision, failedPorts: [{ portId: randomUUID(), reason: 'x' }, { portId: otherPortId, reason: 'y' }] } });
      await waitUntil(async () => (await applied()) === raw.revision, 5000, () => 'the ack was not recorded');
      expect(raw.ended).toBeUndefined();
      expect(await recorded()).toBeNull();
      expect((await client.get(`/v1/ports/${otherPortId}`)).body.realizationError).toBeNull();
      raw.send({ ack: { revision: raw.revision, failedPorts: [{ portId, reason: 'tap missing' }] } });
      await waitUntil(async () => (await recorded()) !== null, 5000, () => 'its own port was not recorded');
      expect((await client.get(`/v1/ports/${portId}`)).body.realizationError).toMatchObject({ hostId, reason: 'tap missing' });
      raw.send({ ack: { revision: raw.revision } });
      await waitUntil(async () => (await recorded()) === null, 5000, () => 'an ack without it did not clear it');
      raw.close();
    });

    it.each([
      // Each list names the host's own port, which an accepted list would record.
      ['4097 entries', () => [{ portId, reason: 'a' }, ...Array.from({ length: 4096 }, (_, i) => ({ portId: `p${i}`, reason: '' }))], () => 'Ack with 4097 failed ports (at most 4096)'],
      ['a port named twice', () => [{ portId, reason: 'a' }, { portId, reason: 'b' }], () => `Ack failed_ports[1]: port ${portId} named twice`],
      ['a reason of 4096 characters', () => [{ portId, reason: 'x'.repeat(4096) }], () => 'Ack failed_ports[0]: reason longer than 1024 characters'],
      ['a port id of 65 characters', () => [{ portId, reason: 'a' }, { portId: 'p'.repeat(65), reason: '' }], () => 'Ack failed_ports[1]: port_id is not a port id (1-64 characters)'],
    ])('ends the stream of an ack with %s, recording nothing of it', async (_what, list, details) => {
      const before = await applied();
      const raw = await connect();
      raw.send({ ack: { revision: raw.revision, failedPorts: list() } });
      await waitUntil(() => raw.ended !== undefined, 5000, () => 'the stream was not ended');
      expect(raw.ended).toEqual({ code: grpc.status.INVALID_ARGUMENT, details: details() });
      expect(await applied()).toBe(before);
      expect(await recorded()).toBeNull();
    });
  });
});
