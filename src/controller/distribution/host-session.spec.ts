import * as grpc from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import type { SpanRun } from '../../common/span/span-kind';
import type { SyncRequest__Output } from '../../generated/overlay/v1/SyncRequest';
import { FramedMessage, GRPC_FRAME_HEADER_BYTES } from '../../common/grpc-frame';
import { HostSession, SNAPSHOT_CHUNK_SIZE, snapshotBudget, type SessionEvents, type SyncCall } from './host-session';
import type { SpanFeed } from './span-feed';

/** A session on a fake call: requests are emitted as 'data', reports land in `events`. */
function session(helloRevision: number, resumed = true) {
  const call = Object.assign(new EventEmitter(), { write: () => true }) as unknown as SyncCall;
  const ended: { code: number; details: string }[] = [];
  (call as unknown as EventEmitter).on('error', (e: { code: number; details: string }) => ended.push(e));
  const reports: string[] = [];
  let realized = 0;
  const events: SessionEvents = {
    acked: (_s, revision, clearsError) => reports.push(`ack ${revision}${clearsError ? ' clears' : ''}`),
    nacked: (_s, revision, error) => reports.push(`nack ${revision} ${error}`),
    // A list naming "refuse" is refused, as the registry refuses a malformed one.
    failedPorts: (s, revision, ports) => {
      if (ports.some((p) => p.portId === 'refuse')) {
        s.refuse('bad failed ports');
        return false;
      }
      if (ports.length) {
        reports.push(`failed ${revision} ${ports.map((p) => p.portId).join(',')}`);
      }
      return true;
    },
    realized: () => realized++,
    vmArrived: () => undefined,
    connectionsExported: () => undefined,
    connectionsInstalled: () => undefined,
    mirrorCounters: (_s, report) => reports.push(`counters ${report.entries.length}`),
    hostObserved: (_s, report) => reports.push(`observed ${report.taps.length}`),
    violated: (_s, reason) => reports.push(`violation ${reason}`),
    closed: () => undefined,
  };
  const s = new HostSession('h1', 'hv1', '192.0.2.1', () => 'epoch', call, {} as SpanFeed, events, helloRevision, { hostId: 'h1', token: 't', instance: 'i', seq: 1, features: [] }, resumed);
  const send = (req: { [K in keyof SyncRequest__Output]?: unknown }) => (call as unknown as EventEmitter).emit('data', req);
  /** The controller writes deltas (or markers) of these revisions on the stream. */
  const carry = (...revisions: number[]) => revisions.forEach((r) => s.deliver(r, Buffer.from([r & 255])));
  return { s, send, carry, reports, ended, realized: () => realized };
}

describe('host session acks and nacks', () => {
  it('reports the first ack as clearing (an earlier stream may have left an error), later ones only when they advance', () => {
    const { send, carry, reports } = session(5);
    carry(6);
    send({ ack: { revision: 5 } });
    send({ ack: { revision: 5 } });
    send({ ack: { revision: 6 } });
    expect(reports).toEqual(['ack 5 clears', 'ack 6']);
  });

  it("hands an ack's failed ports over before the ack, and records nothing of an ack whose list is refused", () => {
    const { send, carry, reports, ended } = session(5);
    carry(6, 7);
    send({ ack: { revision: 6, failedPorts: [{ portId: 'p1', reason: 'x' }] } });
    send({ ack: { revision: 7, failedPorts: [{ portId: 'refuse', reason: 'x' }] } });
    expect(reports).toEqual(['failed 6 p1', 'ack 6 clears', 'violation bad failed ports']);
    expect(ended.map((e) => e.code)).toEqual([3]);
  });

  it('counts what it writes, and times each delta from its delivery to the first ack that covers it (a NACK does not)', () => {
    const { s, send, carry, realized } = session(5);
    carry(6, 7, 8);
    expect(s.sent.delta).toEqual({ messages: 3, bytes: 3 });
    expect(s.queueDepth).toBe(0);
    send({ nack: { revision: 7, error: 'x' } });
    expect(realized()).toBe(0);
    send({ ack: { revision: 7 } });
    expect(realized()).toBe(2);
    send({ ack: { revision: 7 } });
    send({ ack: { revision: 8 } });
    expect(realized()).toBe(3);
  });

  it('after a NACK, reports the first ack at or above its revision as clearing, even of a revision already acknowledged', () => {
    const { s, send, carry, reports } = session(0, false);
    carry(6, 7);
    send({ ack: { revision: 7 } });
    send({ nack: { revision: 7, error: 'nft failed' } });
    send({ ack: { revision: 7 } }); // the reconcile that now succeeds
    send({ ack: { revision: 7 } });
    expect(reports).toEqual(['ack 7 clears', 'nack 7 nft failed', 'ack 7 clears']);
    expect(s.appliedRevision).toBe(7);
  });

  it('clears only with an ack at or above the latest NACK', () => {
    const { send, carry, reports } = session(3);
    carry(8, 9);
    send({ nack: { revision: 9, error: 'a' } });
    send({ ack: { revision: 8 } });
    send({ ack: { revision: 9 } });
    expect(reports).toEqual(['nack 9 a', 'ack 8', 'ack 9 clears']);
  });

  it('takes an Ack or Nack only of a revision the stream carried (or the Hello it resumed from), and ends the stream for any other', () => {
    const cases: [string, (t: ReturnType<typeof session>) => void][] = [
      ['Ack of a revision never sent', (t) => t.send({ ack: { revision: 1_000_000 } })],
      ['Ack between two sent revisions', (t) => t.send({ ack: { revision: 11 } })],
      ['Nack of a revision never sent', (t) => t.send({ nack: { revision: 11, error: 'x' } })],
      ['Ack of the Hello revision when the stream did not resume from it', (t) => t.send({ ack: { revision: 5 } })],
      ['a second Hello', (t) => t.send({ hello: { hostName: 'hv1' } })],
      ['an empty message', (t) => t.send({})],
      ['undecodable bytes', (t) => t.send({ undecodable: 'a message that does not decode: index out of range' } as Partial<SyncRequest__Output>)],
    ];
    for (const [name, act] of cases) {
      // A stream sent a snapshot (not resumed) starts at 0, whatever the Hello claimed (hello.ts).
      const resumed = !name.includes('did not resume');
      const t = session(resumed ? 5 : 0, resumed);
      t.carry(10, 12);
      act(t);
      expect({ name, ended: t.ended.map((e) => e.code), closed: t.s.isClosed, applied: t.s.appliedRevision }).toEqual({ name, ended: [grpc.status.INVALID_ARGUMENT], closed: true, applied: name.includes('did not resume') ? 0 : 5 });
      expect(t.reports.filter((r) => r.startsWith('violation'))).toHaveLength(1);
    }
    // The same session takes what it carried, the Hello it resumed from, and repeats.
    const ok = session(5);
    ok.carry(10, 12);
    ok.send({ ack: { revision: 5 } });
    ok.send({ ack: { revision: 10 } });
    ok.send({ nack: { revision: 12, error: 'e' } });
    ok.send({ ack: { revision: 12 } });
    ok.send({ ack: { revision: 12 } });
    ok.send({ mirrorCounters: { entries: [] } }); // passed on (the registry checks it: mirror-counters.intake.ts)
    expect(ok.ended).toEqual([]);
    ok.send({ observed: { taps: [], bridges: [], inventory: null } }); // passed on (the registry checks it: host-observation.intake.ts)
    expect(ok.reports).toContain('counters 0');
    expect(ok.reports).toContain('observed 0');
    expect(ok.s.appliedRevision).toBe(12);
  });
});

describe('host session snapshots', () => {
  const SyncResponse = protobuf.loadSync(path.join(__dirname, '../../../proto/overlay/v1/sync.proto')).lookupType('overlay.v1.SyncResponse');

  /** A framed chunk's message, its frame header checked (flag 0, the message's length). */
  function unframe(framed: FramedMessage): Buffer {
    expect(framed.frame[0]).toBe(0);
    expect(framed.frame.readUInt32BE(1)).toBe(framed.frame.length - GRPC_FRAME_HEADER_BYTES);
    return framed.message;
  }

  /** Sends a snapshot of `runs` on a fake call; resolves with what each message carried, in order. `afterFirstChunk` runs once the first chunk is written. */
  async function snapshotOf(runs: SpanRun[], afterFirstChunk?: () => void): Promise<string[]> {
    const written: string[] = [];
    let ended = false;
    const encoded: string[] = [];
    const call = Object.assign(new EventEmitter(), {
      write: (message: Buffer | FramedMessage, done?: () => void) => {
        const bytes = message instanceof FramedMessage ? unframe(message) : message;
        const decoded = SyncResponse.toObject(SyncResponse.decode(bytes), { defaults: true }) as { snapshotChunk?: { resources: unknown[] }; snapshotEnd?: { resourceCount: number } };
        if (decoded.snapshotChunk) {
          written.push(`chunk ${decoded.snapshotChunk.resources.length}`);
          if (written.length === 1) {
            afterFirstChunk?.();
          }
        } else if (decoded.snapshotEnd) {
          written.push(`end ${decoded.snapshotEnd.resourceCount}`);
          ended = true;
        }
        if (done) {
          setImmediate(done);
        }
        return true;
      },
    }) as unknown as SyncCall;
    const feed = {
      revision: 7,
      spanIndex: { spanRuns: () => runs },
      // An empty Resource is a valid one; the id tells the order resources were taken in.
      encode: (kind: string, id: string) => (encoded.push(`${kind}/${id}`), new Uint8Array(0)),
      snapshotBegun: () => undefined,
      snapshotEnded: () => undefined,
    } as unknown as SpanFeed;
    const events = { closed: () => undefined } as unknown as SessionEvents;
    const s = new HostSession('h1', 'hv1', '192.0.2.1', () => 'epoch', call, feed, events, 0, { hostId: 'h1', token: 't', instance: 'i', seq: 1, features: [] });
    s.sendSnapshot();
    const deadline = Date.now() + 5_000;
    while (!ended && Date.now() < deadline) {
      await new Promise((r) => setImmediate(r));
    }
    expect(encoded).toEqual(runs.flatMap((run) => Array.from(run.ids, (id) => `${run.kind}/${id}`)));
    return written;
  }

  const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

  it('sends every resource of every run once, in order, in chunks of SNAPSHOT_CHUNK_SIZE, skipping empty runs, then the end with the count', async () => {
    const runs: SpanRun[] = [
      { kind: 'segment', ids: ['s1'] },
      { kind: 'port', ids: [] },
      { kind: 'port', ids: ids('p', SNAPSHOT_CHUNK_SIZE + 499) },
      { kind: 'policy', ids: ids('p', SNAPSHOT_CHUNK_SIZE) },
      { kind: 'member', ids: [] },
    ];
    expect(await snapshotOf(runs)).toEqual([`chunk ${SNAPSHOT_CHUNK_SIZE}`, `chunk ${SNAPSHOT_CHUNK_SIZE}`, 'chunk 500', `end ${2 * SNAPSHOT_CHUNK_SIZE + 500}`]);
  });

  it('reads a run that is a set as it goes: an id added after the snapshot began is sent, one deleted before its turn is not', async () => {
    const ports = new Set(ids('p', SNAPSHOT_CHUNK_SIZE + 10));
    const written = await snapshotOf([{ kind: 'port', ids: ports }], () => {
      ports.delete(`p${SNAPSHOT_CHUNK_SIZE + 5}`);
      ports.add('p-new');
    });
    expect(written).toEqual([`chunk ${SNAPSHOT_CHUNK_SIZE}`, 'chunk 10', `end ${SNAPSHOT_CHUNK_SIZE + 10}`]);
  });

  it('sends one empty chunk for an empty span, and no empty chunk when the span fills its chunks exactly', async () => {
    expect(await snapshotOf([{ kind: 'port', ids: [] }])).toEqual(['chunk 0', 'end 0']);
    expect(await snapshotOf([])).toEqual(['chunk 0', 'end 0']);
    expect(await snapshotOf([{ kind: 'port', ids: ids('p', SNAPSHOT_CHUNK_SIZE) }, { kind: 'mirror', ids: [] }])).toEqual([`chunk ${SNAPSHOT_CHUNK_SIZE}`, `end ${SNAPSHOT_CHUNK_SIZE}`]);
  });

  it("reuses a chunk's buffer only once its write is done, and keeps none once no chunk is in flight", async () => {
    // Three sessions' snapshots at once, three chunks each; the stream completes a write only when told to.
    const inFlight: { frame: Buffer; copy: Buffer; done: () => void }[] = [];
    const buffers = new Set<ArrayBufferLike>();
    let chunks = 0;
    const ended = new Set<string>();
    for (const host of ['a', 'b', 'c']) {
      const call = Object.assign(new EventEmitter(), {
        write: (message: Buffer | FramedMessage, done: () => void) => {
          if (message instanceof FramedMessage) {
            chunks++;
            buffers.add(message.frame.buffer);
            inFlight.push({ frame: message.frame, copy: Buffer.from(message.frame), done });
          } else {
            ended.add(host);
            setImmediate(done);
          }
          return true;
        },
      }) as unknown as SyncCall;
      const feed = {
        revision: 7,
        spanIndex: { spanRuns: () => [{ kind: 'port', ids: ids(host, 3 * SNAPSHOT_CHUNK_SIZE) }] },
        // 100 bytes of the id: every chunk's bytes differ from every other's.
        encode: (_kind: string, id: string) => Buffer.alloc(100, id),
        snapshotBegun: () => undefined,
        snapshotEnded: () => undefined,
      } as unknown as SpanFeed;
      const events = { closed: () => undefined } as unknown as SessionEvents;
      new HostSession(host, host, '192.0.2.1', () => 'epoch', call, feed, events, 0, { hostId: host, token: 't', instance: 'i', seq: 1, features: [] }).sendSnapshot();
    }
    // Complete the oldest write, one at a time: its frame must still hold what was written.
    const deadline = Date.now() + 5_000;
    while ((ended.size < 3 || inFlight.length) && Date.now() < deadline) {
      const oldest = inFlight.shift();
      if (oldest) {
        expect(oldest.frame.equals(oldest.copy)).toBe(true);
        oldest.done();
      }
      await new Promise((r) => setImmediate(r));
    }
    expect(ended.size).toBe(3);
    expect(chunks).toBe(9);
    expect(buffers.size).toBeLessThan(chunks); // buffers were reused
    expect(snapshotBudget.spareBuffers).toBe(0);
  });
});
