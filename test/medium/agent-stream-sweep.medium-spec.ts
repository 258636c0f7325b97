import * as grpc from '@grpc/grpc-js';
import type { SyncRequest } from '../../src/generated/overlay/v1/SyncRequest';
import { makeAgent, waitUntil, type TestAgent } from '../support/agents';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { prng } from '../support/prng';
import { bytesStream, encodeRequest } from '../support/raw-agent';

/**
 * A sweep of the agent stream with damaged messages, against a real overlayd and Redis: each of
 * the messages an agent sends after its Hello (Ack with port failures, Nack, VmArrived, a
 * connection batch, ConnectionsInstalled, mirror counters, an observation), encoded, then
 * damaged 1-4 times at random (a bit flipped, a byte replaced, cut short, bytes inserted, a tail
 * repeated: length prefixes and tags that lie, unknown fields, wrong wire types, text that is
 * not UTF-8), each on a stream of its own after the snapshot, followed by an empty message the
 * controller always refuses. Every stream must end with a status the agent can act on
 * (INVALID_ARGUMENT and the like), never INTERNAL or UNKNOWN (a fault of the controller); another
 * agent's stream goes on; the host and what the controller stored of it read back.
 * stream-protocol.medium-spec.ts checks named violations; this checks the class. Seeded: a
 * failure names its seed and message, and OVERLAY_TEST_SEED replays it.
 */

const SEED = Number(process.env.OVERLAY_TEST_SEED ?? 20261207);
const PER_KIND = 60;
const SOME_ID = '01a24988-0000-7000-8000-000000000000';

/** `bytes` damaged 1-4 times, as `random` decides. */
function damaged(bytes: Buffer, random: () => number): Buffer {
  let b = Buffer.from(bytes);
  const times = 1 + Math.floor(random() * 4);
  for (let i = 0; i < times; i++) {
    const r = random();
    const at = Math.floor(random() * Math.max(1, b.length));
    if (r < 0.3 && b.length) {
      b[at] ^= 1 << Math.floor(random() * 8);
    } else if (r < 0.5 && b.length) {
      b[at] = Math.floor(random() * 256);
    } else if (r < 0.6) {
      b = b.subarray(0, at);
    } else if (r < 0.8) {
      const inserted = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 12) }, () => Math.floor(random() * 256)));
      b = Buffer.concat([b.subarray(0, at), inserted, b.subarray(at)]);
    } else {
      b = Buffer.concat([b, b.subarray(at)]);
    }
  }
  return b;
}

describe(`the agent stream refuses damaged messages without a fault of its own (seed ${SEED})`, () => {
  const prefix = uniquePrefix('stream-sweep');
  let ctl: Harness;
  let client: ReturnType<typeof api>;
  let other: TestAgent;
  let hostId = '';
  let portId = '';
  let otherHostId = '';
  let otherSegmentId = '';

  beforeAll(async () => {
    ctl = await startController({ prefix });
    client = api(ctl.url);
    const tenantId = (await client.post('/v1/tenants', { name: 't' })).body.id;
    const segmentId = (await client.post('/v1/segments', { tenantId, name: 's' })).body.id;
    otherSegmentId = (await client.post('/v1/segments', { tenantId, name: 'other' })).body.id;
    hostId = (await client.post('/v1/hosts', { name: 'hv-sweep', vtepIp: '192.0.2.81' })).body.id;
    otherHostId = (await client.post('/v1/hosts', { name: 'hv-other', vtepIp: '192.0.2.82' })).body.id;
    portId = (await client.post('/v1/ports', { segmentId, hostId, ips: [] })).body.id;
    other = makeAgent('hv-other', ctl.grpcTarget);
    await other.agent.start();
    await waitUntil(() => other.agent.synced, 10_000, () => 'the other agent in sync');
  });

  afterAll(async () => {
    await other?.cleanup();
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  it(`ends every stream with a status the agent caused, ${PER_KIND} damaged messages of each kind`, async () => {
    const messages: [string, SyncRequest][] = [
      ['ack', { ack: { revision: 5, failedPorts: [{ portId, reason: 'tap missing' }] } }],
      ['nack', { nack: { revision: 5, error: 'nft -f failed' } }],
      ['vmArrived', { vmArrived: { migrationId: SOME_ID, portId } }],
      ['connectionExport', { connectionExport: { migrationId: SOME_ID, portId, complete: true, connections: [{}] } }],
      ['connectionsInstalled', { connectionsInstalled: { migrationId: SOME_ID, portId, installed: 3, failed: 1, error: 'e' } }],
      ['mirrorCounters', { mirrorCounters: { entries: [{ id: `${SOME_ID}/${portId}`, packets: 3, bytes: 4 }] } }],
      ['observed', { observed: { taps: [{}], bridges: [{}], inventory: {} } }],
    ];
    const random = prng(SEED);
    const faults: string[] = [];
    const codes = new Map<string, number>();
    let instance = 0;
    for (let round = 0; round < PER_KIND; round++) {
      for (const [kind, message] of messages) {
        const bytes = damaged(encodeRequest(message), random);
        const stream = bytesStream(ctl.grpcTarget);
        stream.write(encodeRequest({ hello: { hostName: 'hv-sweep', agentVersion: 'sweep', instanceId: `sweep-${++instance}` } }));
        await waitUntil(() => stream.revision() > 0 || stream.ended() !== undefined, 5_000, () => `${kind} #${round}: no snapshot`);
        stream.write(bytes);
        // Refused whatever came before it: every stream ends, the damaged message's own refusal first if it has one.
        stream.write(encodeRequest({}));
        await waitUntil(() => stream.ended() !== undefined, 5_000, () => `${kind} #${round} (${bytes.toString('hex')}): the stream went on`);
        const { code, details } = stream.ended()!;
        codes.set(grpc.status[code], (codes.get(grpc.status[code]) ?? 0) + 1);
        if (code === grpc.status.INTERNAL || code === grpc.status.UNKNOWN || code === grpc.status.OK) {
          faults.push(`${kind} #${round} (${bytes.toString('hex')}): ${grpc.status[code]} ${details}`);
        }
        stream.close();
      }
    }
    expect(faults).toEqual([]);
    expect(codes.get('INVALID_ARGUMENT')).toBeGreaterThan(0);

    // The other agent's stream went on: it applies a write of its own segment.
    const acks = other.agent.stats.acks;
    expect((await client.post('/v1/ports?wait=realized&timeout=5000', { segmentId: otherSegmentId, hostId: otherHostId })).status).toBe(201);
    expect(other.agent.stats.acks).toBeGreaterThan(acks);
    // What the controller keeps of the host (acks, failures, counters, observations) reads back.
    for (const path of ['/readyz', `/v1/hosts/${hostId}`, '/v1/hosts', `/v1/ports/${portId}`, '/v1/audit', '/v1/migrations']) {
      expect({ path, status: (await client.get(path)).status }).toEqual({ path, status: 200 });
    }
  }, 300_000);
});
