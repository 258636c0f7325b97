import { Logger } from '@nestjs/common';
import { AckRecorder, type AckEvents } from './ack-recorder';
import type { AgentStatusRepository, LastErrorUpdate } from './agent-status.repository';

/** A recorder over a fake repository: each write is kept in `writes`; `failing` makes them fail. */
function recorder() {
  const writes: { applied: Record<string, number>; errors: Record<string, LastErrorUpdate> }[] = [];
  const repo = {
    failing: false,
    recordReports: async (applied: Map<string, number>, errors: Map<string, LastErrorUpdate>) => {
      if (repo.failing) {
        throw new Error('Redis is unavailable');
      }
      writes.push({ applied: Object.fromEntries(applied), errors: Object.fromEntries(errors) });
    },
  };
  const r = new AckRecorder(repo as unknown as AgentStatusRepository);
  const events: string[] = [];
  const listen = <K extends keyof AckEvents>(name: K) => r.on(name, (e) => events.push(`${name} ${JSON.stringify(e)}`));
  const offs = (['connected', 'disconnected', 'acked', 'nacked'] as const).map(listen);
  return { r, repo, writes, events, offs };
}

/** Lets the flush timer fire and its write settle. */
async function flushed(ms = 20): Promise<void> {
  await jest.advanceTimersByTimeAsync(ms);
}

describe('ack recorder', () => {
  beforeEach(() => {
    jest.useFakeTimers();
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('tells its listeners, with host id and revision, as streams connect, acknowledge, refuse and end', () => {
    const { r, events } = recorder();
    r.connected('h1', 4);
    r.acked('h1', 5, true);
    r.nacked('h1', 'hv1', 6, 'nft failed');
    r.disconnected('h1');
    expect(events).toEqual([
      'connected {"hostId":"h1","revision":4}',
      'acked {"hostId":"h1","revision":5}',
      'nacked {"hostId":"h1","revision":6,"error":"nft failed"}',
      'disconnected {"hostId":"h1","revision":5}',
    ]);
  });

  it('stops telling a listener once it unsubscribed, and not the others', () => {
    const { r, events, offs } = recorder();
    offs[2](); // acked
    r.connected('h1', 0);
    r.acked('h1', 3, false);
    expect(events).toEqual(['connected {"hostId":"h1","revision":0}']);
  });

  it('answers for the hosts whose streams are here until Redis knows, and forgets a host whose stream ended', () => {
    const { r } = recorder();
    expect(r.appliedHere('h1')).toBeUndefined();
    r.connected('h1', 0);
    expect(r.appliedHere('h1')).toBe(0);
    r.acked('h1', 7, false);
    r.acked('h1', 6, true); // a clearing ack of an older revision does not move it back
    expect(r.appliedHere('h1')).toBe(7);
    r.disconnected('h1');
    expect(r.appliedHere('h1')).toBeUndefined();
  });

  it('writes acks and last errors in one batch per flush, the highest revision per host', async () => {
    const { r, writes } = recorder();
    r.connected('h1', 3);
    r.connected('h2', 0);
    r.acked('h1', 5, false);
    r.acked('h1', 4, false);
    r.nacked('h2', 'hv2', 9, 'bad');
    expect(writes).toEqual([]);
    await flushed();
    expect(writes).toHaveLength(1);
    expect(writes[0].applied).toEqual({ h1: 5, h2: 0 });
    expect(writes[0].errors).toEqual({ h2: { set: { revision: 9, error: 'bad', at: expect.any(String) } } });
  });

  it('keeps a NACK newer than a clearing ack in the same batch', async () => {
    const { r, writes } = recorder();
    r.nacked('h1', 'hv1', 9, 'bad');
    r.acked('h1', 8, true);
    r.acked('h1', 3, true);
    await flushed();
    expect(writes[0].errors.h1).toMatchObject({ set: { revision: 9 } });
    const other = recorder();
    other.r.acked('h1', 3, true);
    other.r.acked('h1', 8, true);
    await flushed();
    expect(other.writes[0].errors).toEqual({ h1: { clearUpTo: 8 } });
  });

  it('keeps what it could not write and writes it again later, with what came meanwhile', async () => {
    const { r, repo, writes } = recorder();
    repo.failing = true;
    r.acked('h1', 5, false);
    await flushed();
    expect(writes).toEqual([]);
    repo.failing = false;
    r.acked('h2', 2, false);
    await flushed(500);
    expect(writes).toEqual([{ applied: { h1: 5, h2: 2 }, errors: {} }]);
  });

  it('writes what is pending when it stops, and nothing after', async () => {
    const { r, writes } = recorder();
    r.acked('h1', 5, false);
    await r.stop();
    expect(writes).toEqual([{ applied: { h1: 5 }, errors: {} }]);
    r.acked('h1', 6, false);
    await flushed(1_000);
    expect(writes).toHaveLength(1);
  });
});
