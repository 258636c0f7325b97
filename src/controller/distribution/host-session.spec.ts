import { EventEmitter } from 'node:events';
import type { SyncRequest__Output } from '../../generated/overlay/v1/SyncRequest';
import { HostSession, type SessionEvents, type SyncCall } from './host-session';
import type { SpanFeed } from './span-feed';

/** A session on a fake call: requests are emitted as 'data', reports land in `events`. */
function session(helloRevision: number) {
  const call = new EventEmitter() as unknown as SyncCall;
  const reports: string[] = [];
  const events: SessionEvents = {
    acked: (_s, revision, clearsError) => reports.push(`ack ${revision}${clearsError ? ' clears' : ''}`),
    nacked: (_s, revision, error) => reports.push(`nack ${revision} ${error}`),
    vmArrived: () => undefined,
    connectionsExported: () => undefined,
    connectionsInstalled: () => undefined,
    closed: () => undefined,
  };
  const s = new HostSession('h1', 'hv1', '192.0.2.1', () => 'epoch', call, {} as SpanFeed, events, helloRevision, { hostId: 'h1', token: 't', instance: 'i', seq: 1, features: [] });
  const send = (req: Partial<SyncRequest__Output>) => (call as unknown as EventEmitter).emit('data', req);
  return { s, send, reports };
}

describe('host session acks and nacks', () => {
  it('reports the first ack as clearing (an earlier stream may have left an error), later ones only when they advance', () => {
    const { send, reports } = session(5);
    send({ ack: { revision: 5 } });
    send({ ack: { revision: 5 } });
    send({ ack: { revision: 6 } });
    expect(reports).toEqual(['ack 5 clears', 'ack 6']);
  });

  it('after a NACK, reports the first ack at or above its revision as clearing, even of a revision already acknowledged', () => {
    const { s, send, reports } = session(0);
    send({ ack: { revision: 7 } });
    send({ nack: { revision: 7, error: 'nft failed' } });
    send({ ack: { revision: 6 } }); // below: neither advances nor clears
    send({ ack: { revision: 7 } }); // the reconcile that now succeeds
    send({ ack: { revision: 7 } });
    expect(reports).toEqual(['ack 7 clears', 'nack 7 nft failed', 'ack 7 clears']);
    expect(s.appliedRevision).toBe(7);
  });

  it('clears only with an ack at or above the latest NACK', () => {
    const { send, reports } = session(3);
    send({ nack: { revision: 9, error: 'a' } });
    send({ ack: { revision: 8 } });
    send({ ack: { revision: 9 } });
    expect(reports).toEqual(['nack 9 a', 'ack 8', 'ack 9 clears']);
  });
});
