import * as grpc from '@grpc/grpc-js';
import { makeAgent, waitUntil, type TestAgent } from '../support/agents';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { bytesStream, encodeRequest as encode, RawAgent } from '../support/raw-agent';

/**
 * The agent stream is input too: what an agent says about its progress counts only for what the
 * controller sent it. Each protocol violation below, sent by a bare gRPC client, must end that
 * stream with INVALID_ARGUMENT, leave the host's applied revision, lag and last error as they
 * were, leave the other streams alone, and the controller healthy.
 */
describe('the agent stream is input: only acknowledgements the controller earned count', () => {
  const prefix = uniquePrefix('stream-protocol');
  let ctl: Harness;
  let client: ReturnType<typeof api>;
  let other: TestAgent;
  const raws: RawAgent[] = [];
  let hostId = '';
  let segmentId = '';
  let otherHostId = '';
  /** A segment of hv-other alone: a write there needs only the other agent. */
  let otherSegmentId = '';
  let instances = 0;

  beforeAll(async () => {
    ctl = await startController({ prefix });
    client = api(ctl.url);
    const tenantId = (await client.post('/v1/tenants', { name: 't' })).body.id;
    segmentId = (await client.post('/v1/segments', { tenantId, name: 's' })).body.id;
    hostId = (await client.post('/v1/hosts', { name: 'hv-raw', vtepIp: '192.0.2.71' })).body.id;
    otherHostId = (await client.post('/v1/hosts', { name: 'hv-other', vtepIp: '192.0.2.72' })).body.id;
    otherSegmentId = (await client.post('/v1/segments', { tenantId, name: 'other' })).body.id;
    // Both hosts hold the segment: a port each.
    await client.post('/v1/ports', { segmentId, hostId, ips: [] });
    await client.post('/v1/ports', { segmentId, hostId: otherHostId, ips: [] });
    other = makeAgent('hv-other', ctl.grpcTarget);
    await other.agent.start();
    await waitUntil(() => other.agent.synced, 10_000, () => 'the other agent in sync');
  });

  afterAll(async () => {
    raws.forEach((r) => r.close());
    await other?.cleanup();
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  /** A bare agent for hv-raw (a new instance each time), connected and sent its snapshot. */
  async function connect(): Promise<RawAgent> {
    const raw = new RawAgent(ctl.grpcTarget, 'hv-raw', `raw-${++instances}`);
    raws.push(raw);
    await waitUntil(() => raw.delivered, 5_000, () => 'raw agent got its snapshot');
    return raw;
  }

  const host = async () => (await client.get(`/v1/hosts/${hostId}`)).body as { appliedRevision: number; lag: number; lastError: unknown; connected: boolean };

  /** The violation ends the stream with INVALID_ARGUMENT and changes nothing the host reports; the rest goes on. */
  async function expectRefused(name: string, ended: () => { code: number } | undefined, before: { appliedRevision: number; lastError: unknown }): Promise<void> {
    await waitUntil(() => ended() !== undefined, 5_000, () => `${name}: the stream went on`);
    expect({ name, code: ended()!.code }).toEqual({ name, code: grpc.status.INVALID_ARGUMENT });
    // Whatever the controller flushes after the violation, the host's record is what it was.
    const acksBefore = other.agent.stats.acks;
    const write = await client.post('/v1/ports?wait=realized&timeout=5000', { segmentId: otherSegmentId, hostId: otherHostId });
    expect(write.status).toBe(201); // the other agent applied it: its stream was not disturbed
    expect(other.agent.stats.acks).toBeGreaterThan(acksBefore);
    const after = await host();
    expect({ name, appliedRevision: after.appliedRevision, lastError: after.lastError }).toEqual({ name, appliedRevision: before.appliedRevision, lastError: before.lastError });
    expect((await client.get('/readyz')).status).toBe(200);
  }

  it('refuses an Ack of a revision far beyond the current one, and the lie stays out of the record', async () => {
    const raw = await connect();
    raw.ack(); // an honest ack of the snapshot first
    await waitUntil(async () => (await host()).appliedRevision === raw.revision, 5_000, () => 'the honest ack recorded');
    const before = await host();
    raw.send({ ack: { revision: raw.revision + 1_000_000 } });
    await expectRefused('ack far beyond', () => raw.ended, before);
    // A write bound to that host is not realized by a lie.
    const bound = await client.post('/v1/ports?wait=realized&timeout=300', { segmentId, hostId });
    expect(bound.body.realized).toBe(false);
  });

  it('refuses an Ack or a Nack of a revision that lies between two the stream carried', async () => {
    for (const kind of ['ack', 'nack'] as const) {
      const raw = await connect();
      const first = raw.revision;
      // Several revisions at once elsewhere: the next marker skips past some of them. Markers go
      // out at most every 250 ms, so on a slow machine one may fall between the writes: write
      // again until the stream has skipped one.
      let skipped: number | undefined;
      for (let round = 0; round < 10 && skipped === undefined; round++) {
        const from = raw.revision;
        await Promise.all([0, 1, 2].map((i) => client.post('/v1/tenants', { name: `bump-${kind}-${round}-${i}` })));
        await waitUntil(() => raw.revision >= from + 3, 5_000, () => 'a marker past the changes');
        const carried = new Set(raw.received.map((m) => m.delta?.revision ?? m.snapshotEnd?.revision));
        for (let revision = first + 1; revision < raw.revision && skipped === undefined; revision++) {
          skipped = carried.has(revision) ? undefined : revision;
        }
      }
      expect(skipped).toBeDefined();
      const before = await host();
      raw.send(kind === 'ack' ? { ack: { revision: skipped! } } : { nack: { revision: skipped!, error: 'made up' } });
      await expectRefused(`${kind} of a revision not carried`, () => raw.ended, before);
    }
  });

  it('refuses a VmArrived for a port not prepared on the host', async () => {
    const raw = await connect();
    const port = (await client.post('/v1/ports', { segmentId, hostId, vmId: 'vm-x' })).body;
    const before = await host();
    raw.send({ vmArrived: { migrationId: '01a00000-0000-7000-8000-0000000000aa', portId: port.id } });
    await expectRefused('VmArrived of no migration', () => raw.ended, before);
  });

  it('refuses a second Hello on an open stream, also one for a host that is not registered', async () => {
    for (const name of ['hv-raw', 'no-such-host']) {
      const raw = await connect();
      const before = await host();
      raw.send({ hello: { hostName: name, agentVersion: 'raw' } });
      await expectRefused(`second Hello (${name})`, () => raw.ended, before);
    }
  });

  it('refuses an empty message, and a message sent before the Hello was answered', async () => {
    const raw = await connect();
    const before = await host();
    raw.send({});
    await expectRefused('empty message', () => raw.ended, before);

    const early = bytesStream(ctl.grpcTarget);
    early.write(encode({ hello: { hostName: 'hv-raw', agentVersion: 'raw', instanceId: `raw-${++instances}` } }));
    early.write(encode({ ack: { revision: 1 } }));
    await expectRefused('a message before the Hello was answered', early.ended, await host());
    early.close();
  });

  it('refuses bytes that do not decode with INVALID_ARGUMENT, not INTERNAL, before and after the Hello', async () => {
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]); // field 1, a length past the end
    const first = bytesStream(ctl.grpcTarget);
    first.write(garbage);
    await expectRefused('undecodable first message', first.ended, await host());
    first.close();

    const raw = await connect();
    const before = await host();
    const stream = bytesStream(ctl.grpcTarget);
    stream.write(encode({ hello: { hostName: 'hv-raw', agentVersion: 'raw', instanceId: `raw-${++instances}` } }));
    await waitUntil(() => raw.ended !== undefined, 5_000, () => 'the newer stream replaced the raw agent');
    stream.write(garbage);
    await expectRefused('undecodable message after the Hello', stream.ended, before);
    stream.close();
  });

  it('quotes what an agent sent in a refusal only cleaned and bounded: no control characters, at most about 1 KiB', async () => {
    // The same text goes to the log. A 900 KB host name in the status details left the stream without any answer.
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    const clean = (details: string) => ({ length: details.length <= 1100, controls: /[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/.test(details) });
    for (const [name, hostName] of [
      ['an unknown host named with control characters', 'nope\u001b[2J\u0000\u202e'],
      ['an unknown host with a 900 KB name', 'x'.repeat(900_000)],
    ] as const) {
      const raw = new RawAgent(ctl.grpcTarget, hostName, `raw-${++instances}`);
      raws.push(raw);
      await waitUntil(() => raw.ended !== undefined, 5_000, () => `${name}: no answer`);
      expect({ name, code: raw.ended!.code, ...clean(raw.ended!.details) }).toEqual({ name, code: grpc.status.NOT_FOUND, length: true, controls: false });
    }
    const raw = await connect();
    const before = await host();
    raw.send({ vmArrived: { migrationId: '\u001b[2J', portId: `${'\u0000'.repeat(100)}\u202e${'p'.repeat(5000)}` } });
    await expectRefused('VmArrived naming junk', () => raw.ended, before);
    expect(clean(raw.ended!.details)).toEqual({ length: true, controls: false });
  });

  it('does not take a Hello\u2019s revision at its word: a stream that was sent a snapshot counts from its first Ack', async () => {
    const before = await host();
    // Without an epoch: a revision of this epoch past the store's would put the store in recovery
    // (the agent holds what the store lost: store-recovery.medium-spec.ts).
    const raw = new RawAgent(ctl.grpcTarget, 'hv-raw', `raw-${++instances}`, { appliedRevision: 5_000_000, epoch: '' });
    raws.push(raw);
    await waitUntil(() => raw.delivered, 5_000, () => 'a snapshot, not a resume');
    expect(raw.received.some((m) => m.snapshotEnd)).toBe(true);
    // Past the flush of what the Hello reported (20 ms), the record has not moved to the claim.
    await waitUntil(async () => (await host()).connected, 5_000);
    expect((await host()).appliedRevision).toBe(before.appliedRevision);
    expect((await host()).appliedRevision).toBeLessThan(5_000_000);
    raw.ack();
    await waitUntil(async () => (await host()).appliedRevision === raw.revision, 5_000, () => 'its first Ack counts');
  });
});
