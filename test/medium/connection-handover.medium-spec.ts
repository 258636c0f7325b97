import * as grpc from '@grpc/grpc-js';
import { conntrackZones } from '../../src/agent/dataplane/linux/nftables';
import type { TrackedConnection } from '../../src/common/tracked-connection';
import { makeAgent, waitUntil, type TestAgent } from '../support/agents';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { RawAgent } from '../support/raw-agent';
import type { SyncRequest } from '../../src/generated/overlay/v1/SyncRequest';

/**
 * Firewall state follows the VM: the migrating VM's tracked connections go from the source's
 * agent through the controller (Redis) to the destination's agent, before the prepare hook
 * answers. Real controllers on real Redis, in-process agents on the memory dataplane, whose
 * conntrack table is a map per zone (`track` plays the VM talking).
 */
const tcp = (src: string, dst: string, srcPort: number, dstPort: number, extra: Partial<TrackedConnection> = {}): TrackedConnection => ({
  protocol: 6,
  src,
  dst,
  srcPort,
  dstPort,
  tcpState: 'ESTABLISHED',
  timeoutSeconds: 432_000,
  seenReply: true,
  assured: true,
  ...extra,
});

interface Timeline {
  event: string;
  connections?: number;
  failed?: number;
}

const eventOf = (body: { timeline: Timeline[] }, event: string): Timeline | undefined => body.timeline.find((e) => e.event === event);

describe('connection handover through the controller', () => {
  const prefix = uniquePrefix('handover');
  let r1: Harness;
  let r2: Harness;
  let client: ReturnType<typeof api>;
  const agents: TestAgent[] = [];
  const raws: RawAgent[] = [];
  let tenantId = '';
  let segment: { id: string; vni: number };
  const hosts = new Map<string, string>();

  beforeAll(async () => {
    // Two replicas: the source's stream on one, the destination's on the other.
    r1 = await startController({ prefix, env: { OVERLAY_MIGRATION_MAX_CONNECTIONS: '100000' } });
    r2 = await startController({ prefix, env: { OVERLAY_MIGRATION_MAX_CONNECTIONS: '100000' } });
    client = api(r1.url);
    tenantId = (await client.post('/v1/tenants', { name: 'acme' })).body.id;
    segment = (await client.post('/v1/segments', { tenantId, name: 'app', cidr: '10.5.0.0/16' })).body;
    for (const [name, vtep] of [
      ['src', '192.0.2.51'],
      ['dst', '192.0.2.52'],
      ['raw-src', '192.0.2.53'],
    ]) {
      hosts.set(name, (await client.post('/v1/hosts', { name, vtepIp: vtep })).body.id);
    }
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.cleanup()));
    raws.forEach((r) => r.close());
    await r1?.close();
    await r2?.close();
    await dropPrefix(r1.config.redisUrl, prefix);
  });

  function agent(name: string, on: Harness): TestAgent {
    const a = makeAgent(name, on.grpcTarget, { firewall: true, reconcileIntervalMs: 60_000 });
    agents.push(a);
    return a;
  }

  /** The zone of the test segment on a host holding only that segment. */
  const zone = (): number => conntrackZones([segment.vni]).get(segment.vni)!;

  it('installs the VM\u2019s connections on the destination, across replicas, before the prepare answers; new ones follow while it stays prepared', async () => {
    const src = agent('src', r1);
    const dst = agent('dst', r2);
    const port = (await client.post('/v1/ports', { segmentId: segment.id, hostId: hosts.get('src'), vmId: 'vm-1', ips: ['10.5.0.10'] })).body;
    // The destination holds a port of the segment too (its zone is then the same as the source's).
    await client.post('/v1/ports', { segmentId: segment.id, hostId: hosts.get('dst'), ips: ['10.5.0.20'] });
    await Promise.all([src.agent.start(), dst.agent.start()]);
    await waitUntil(() => src.agent.state.ports.has(port.id) && dst.agent.synced, 10_000, () => 'agents in sync');

    const mine = [tcp('10.5.0.10', '10.5.0.20', 40000, 7000), tcp('10.5.0.30', '10.5.0.10', 51000, 22), { ...tcp('10.5.0.10', '10.5.0.40', 5353, 53), protocol: 17, tcpState: '', seenReply: false, assured: false }];
    for (const c of mine) {
      src.dataplane.track(zone(), c);
    }
    // Not the VM's, and not worth carrying: stay behind.
    src.dataplane.track(zone(), tcp('10.5.0.98', '10.5.0.99', 1000, 2000));
    src.dataplane.track(zone(), tcp('10.5.0.10', '10.5.0.20', 40001, 7000, { tcpState: 'TIME_WAIT' }));

    const prepared = await client.post('/v1/migrations?timeout=10000', { vmId: 'vm-1', sourceHostId: hosts.get('src'), destinationHostId: hosts.get('dst') });
    expect({ status: prepared.status, state: prepared.body.state }).toEqual({ status: 201, state: 'prepared' });
    // When the prepare answers, the destination already tracks them, in its zone of the segment.
    expect(eventOf(prepared.body, 'connections-exported')).toMatchObject({ connections: 3 });
    expect(eventOf(prepared.body, 'connections-installed')).toMatchObject({ connections: 3, failed: 0 });
    const tracked = () => [...(dst.dataplane.conntrack.get(zone())?.values() ?? [])];
    expect(tracked().sort((a, b) => a.srcPort - b.srcPort)).toEqual([...mine].sort((a, b) => a.srcPort - b.srcPort));

    // A connection opened while the migration is open is carried by the next refresh.
    src.dataplane.track(zone(), tcp('10.5.0.10', '10.5.0.21', 40100, 443));
    await waitUntil(() => tracked().some((c) => c.srcPort === 40100), 5_000, () => 'the new connection did not follow');

    const committed = await client.post(`/v1/migrations/${prepared.body.id}/commit?wait=realized`, {});
    expect(committed.status).toBe(200);
    // The source forgot them once the VM left; the destination keeps them.
    await waitUntil(() => ![...(src.dataplane.conntrack.get(zone())?.values() ?? [])].some((c) => c.src === '10.5.0.10' || c.dst === '10.5.0.10'), 5_000, () => 'source did not forget');
    expect(tracked().filter((c) => c.src === '10.5.0.10' || c.dst === '10.5.0.10')).toHaveLength(4);
  });

  /** A bare agent for host raw-src (the source of the migrations below), connected. */
  async function rawSource(instance: string): Promise<RawAgent> {
    const raw = new RawAgent(r1.grpcTarget, 'raw-src', instance);
    raws.push(raw);
    await waitUntil(() => raw.delivered, 5_000, () => `${instance} connected`);
    return raw;
  }

  it('hands on only what a source may send: valid entries of its own port; anything else from it ends its stream', async () => {
    const dst = agents.find((a) => a.agent.config.hostName === 'dst')!;
    const port = (await client.post('/v1/ports', { segmentId: segment.id, hostId: hosts.get('raw-src'), vmId: 'vm-raw', ips: ['10.5.1.10'] })).body;
    // Prepared without waiting: this source exports only when the test says so.
    const prepared = await client.post('/v1/migrations?timeout=0', { vmId: 'vm-raw', sourceHostId: hosts.get('raw-src'), destinationHostId: hosts.get('dst') });
    // 202 still preparing, or 201 when the destination's ack beat the answer (its agent is in-process and quick).
    expect([201, 202]).toContain(prepared.status);
    const id = prepared.body.id;
    await waitUntil(async () => (await client.get(`/v1/migrations/${id}`)).body.state === 'prepared', 10_000, () => 'destination ack');
    const good = tcp('10.5.1.10', '10.5.0.20', 41000, 80);
    const host = async () => (await client.get(`/v1/hosts/${hosts.get('raw-src')}`)).body;

    // Protocol violations: another migration's id, a batch far too big, a report that only the
    // destination may send. Each ends that stream with INVALID_ARGUMENT and records nothing.
    const violations: [string, SyncRequest][] = [
      ['another migration', { connectionExport: { migrationId: '01a00000-0000-7000-8000-000000000000', portId: port.id, connections: [good], complete: true } }],
      ['a batch over 4,096', { connectionExport: { migrationId: id, portId: port.id, connections: Array.from({ length: 5000 }, (_, i) => tcp('10.5.1.10', '10.5.0.20', 10000 + i, 80)), complete: true } }],
      ['another host\u2019s report', { connectionsInstalled: { migrationId: id, portId: port.id, installed: 7, failed: 0, error: '' } }],
    ];
    for (const [name, request] of violations) {
      const raw = await rawSource(`raw-${violations.findIndex(([n]) => n === name)}`);
      const applied = (await host()).appliedRevision;
      raw.send(request);
      await waitUntil(() => raw.ended !== undefined, 5_000, () => `${name}: the stream went on`);
      expect({ name, code: raw.ended?.code }).toEqual({ name, code: grpc.status.INVALID_ARGUMENT });
      expect((await host()).appliedRevision).toBe(applied);
      expect(eventOf((await client.get(`/v1/migrations/${id}`)).body, 'connections-installed')).toBeUndefined();
    }

    // A batch of its own port: the valid entries go on, the others are dropped, the stream stays.
    const raw = await rawSource('raw-good');
    const bad = [
      tcp('10.5.0.20', '10.5.0.21', 1, 2), // not the port's
      tcp('10.5.1.10', '10.5.0.20', 0, 80), // port 0
      tcp('10.5.1.10', '10.5.0.20', 41001, 80, { tcpState: 'ESTABLISHED -F' }),
      tcp('10.5.1.10', '10.5.0.20', 41002, 80, { tcpState: 'TIME_WAIT' }),
      tcp('10.5.1.10', 'fd00::20', 41003, 80), // two families
      tcp('10.5.1.10', '010.5.0.20', 41004, 80), // not canonical
      tcp('10.5.1.10', '10.5.0.20', 41005, 80, { timeoutSeconds: 10_000_000 }),
      { ...good, srcPort: 41006, protocol: 1 },
    ];
    raw.send({ connectionExport: { migrationId: id, portId: port.id, connections: [good, ...bad], complete: true } });
    await waitUntil(async () => eventOf((await client.get(`/v1/migrations/${id}`)).body, 'connections-installed') !== undefined, 10_000, () => 'never installed');
    const body = (await client.get(`/v1/migrations/${id}`)).body;
    expect(eventOf(body, 'connections-exported')).toMatchObject({ connections: 1 });
    expect(eventOf(body, 'connections-installed')).toMatchObject({ connections: 1, failed: 0 });
    const mineOnDst = [...(dst.dataplane.conntrack.get(zone())?.values() ?? [])].filter((c) => c.src === '10.5.1.10' || c.dst === '10.5.1.10');
    expect(mineOnDst).toEqual([good]);
    expect(raw.ended).toBeUndefined();

    // An id that is no migration's names no key either: the migration's stream of connections now
    // exists under `${id}:connections`, and reading it as a migration failed (WRONGTYPE, logged) instead.
    for (const [name, request] of [
      ['a batch', { connectionExport: { migrationId: `${id}:connections`, portId: port.id, connections: [good], complete: true } }],
      ['a VM arrival', { vmArrived: { migrationId: `${id}:connections`, portId: port.id } }],
    ] as [string, SyncRequest][]) {
      const named = await rawSource(`raw-key-${name.length}`);
      named.send(request);
      await waitUntil(() => named.ended !== undefined, 5_000, () => `${name} naming the connection stream: the stream went on`);
      expect({ name, code: named.ended?.code }).toEqual({ name, code: grpc.status.INVALID_ARGUMENT });
    }
    expect((await client.post(`/v1/migrations/${id}/abort`, {})).status).toBe(200);
  });

  it('does not wait for connections from a source agent that does not announce the handover (an older agent)', async () => {
    // raw-src's Hello has no features; with a 60 s timeout the prepare would outlast this test's 20 s if it waited.
    await rawSource('raw-old');
    await client.post('/v1/ports', { segmentId: segment.id, hostId: hosts.get('raw-src'), vmId: 'vm-old', ips: ['10.5.1.12'] });
    const prepared = await client.post('/v1/migrations?timeout=60000', { vmId: 'vm-old', sourceHostId: hosts.get('raw-src'), destinationHostId: hosts.get('dst') });
    expect({ status: prepared.status, state: prepared.body.state }).toEqual({ status: 201, state: 'prepared' });
    expect(eventOf(prepared.body, 'connections-installed')).toBeUndefined();
    expect((await client.post(`/v1/migrations/${prepared.body.id}/abort`, {})).status).toBe(200);
  }, 20_000);
});

describe('connection handover at scale and under a cap', () => {
  const prefix = uniquePrefix('handover-scale');
  let ctl: Harness;
  let capped: Harness;
  let client: ReturnType<typeof api>;
  const agents: TestAgent[] = [];

  beforeAll(async () => {
    ctl = await startController({ prefix });
    capped = await startController({ prefix: `${prefix}-capped`, env: { OVERLAY_MIGRATION_MAX_CONNECTIONS: '100' } });
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.cleanup()));
    await ctl?.close();
    await capped?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
    await dropPrefix(ctl.config.redisUrl, `${prefix}-capped`);
  });

  async function setup(on: Harness, tag: string, connections: number) {
    client = api(on.url);
    const tenantId = (await client.post('/v1/tenants', { name: tag })).body.id;
    const segment = (await client.post('/v1/segments', { tenantId, name: tag, cidr: '10.7.0.0/16' })).body;
    const src = (await client.post('/v1/hosts', { name: `${tag}-src`, vtepIp: '192.0.2.61' })).body;
    const dst = (await client.post('/v1/hosts', { name: `${tag}-dst`, vtepIp: '192.0.2.62' })).body;
    const port = (await client.post('/v1/ports', { segmentId: segment.id, hostId: src.id, vmId: `${tag}-vm`, ips: ['10.7.0.10'] })).body;
    const [a, b] = [src, dst].map((h) => makeAgent(h.name, on.grpcTarget, { firewall: true, reconcileIntervalMs: 60_000 }));
    agents.push(a, b);
    await Promise.all([a.agent.start(), b.agent.start()]);
    await waitUntil(() => a.agent.state.ports.has(port.id) && b.agent.synced, 10_000, () => 'agents in sync');
    const zone = conntrackZones([segment.vni]).get(segment.vni)!;
    for (let i = 0; i < connections; i++) {
      a.dataplane.track(zone, tcp('10.7.0.10', `10.7.${1 + Math.floor(i / 60000)}.${1 + (i % 250)}`, 1024 + (Math.floor(i / 250) % 60000), 443));
    }
    return { client, segment, src, dst, port, a, b, zone };
  }

  it('carries 100,000 connections without holding up the stream', async () => {
    const { client, segment, src, dst, b, zone } = await setup(ctl, 'big', 100_000);
    const t0 = Date.now();
    const prepared = client.post('/v1/migrations?timeout=60000', { vmId: 'big-vm', sourceHostId: src.id, destinationHostId: dst.id });
    // Meanwhile, a change for the destination is realized as usual.
    const other = await client.post('/v1/ports?wait=realized&timeout=10000', { segmentId: segment.id, hostId: dst.id, ips: ['10.7.0.20'] });
    expect(other.status).toBe(201);
    const answer = await prepared;
    const ms = Date.now() - t0;
    expect({ status: answer.status, state: answer.body.state }).toEqual({ status: 201, state: 'prepared' });
    expect(eventOf(answer.body, 'connections-installed')).toMatchObject({ connections: 100_000, failed: 0 });
    expect(b.dataplane.conntrack.get(zone)?.size).toBe(100_000);
    console.log(`connection handover: 100,000 connections, prepare answered in ${ms} ms (memory dataplane, one replica)`);
  }, 120_000);

  it('carries at most OVERLAY_MIGRATION_MAX_CONNECTIONS per migration', async () => {
    const { client, src, dst, b, zone } = await setup(capped, 'small', 250);
    const answer = await client.post('/v1/migrations?timeout=10000', { vmId: 'small-vm', sourceHostId: src.id, destinationHostId: dst.id });
    expect(answer.status).toBe(201);
    expect(eventOf(answer.body, 'connections-exported')).toMatchObject({ connections: 100 });
    expect(eventOf(answer.body, 'connections-installed')).toMatchObject({ connections: 100 });
    expect(b.dataplane.conntrack.get(zone)?.size).toBe(100);
  });
});
