import { AgentStatusRepository, type StreamClaim } from '../../src/controller/distribution/agent-status.repository';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { waitUntil } from '../support/agents';

/**
 * The claim rules of Hello.instance_id, on the Redis scripts themselves, with claims that lapse
 * in a few hundred milliseconds instead of the controller's 15 s.
 */
describe('stream claims in Redis', () => {
  const prefix = uniquePrefix('claims');
  let ctl: Harness;
  let repo: AgentStatusRepository;
  let hosts = 0;

  beforeAll(async () => {
    ctl = await startController({ prefix });
    repo = ctl.app.get(AgentStatusRepository);
  });

  afterAll(async () => {
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  async function newHost(): Promise<string> {
    hosts++;
    return (await api(ctl.url).post('/v1/hosts', { name: `claims-${hosts}`, vtepIp: `192.0.2.${hosts}` })).body.id;
  }

  const stream = (hostId: string, instance: string, token: string): StreamClaim => ({ hostId, instance, token, features: [] });
  const rawClaim = async (hostId: string) => ctl.redis.hget(`{${prefix}}:agents:sessions`, hostId);

  it('refuses an evicted instance only while the winner’s claim lives, and reports the first refusal per claim once', async () => {
    const host = await newHost();
    expect(await repo.claimSession(stream(host, 'x', 't1'), 'r1', 60_000)).toEqual({ claimed: true });
    const before = Date.now();
    expect(await repo.claimSession(stream(host, 'y', 't2'), 'r2', 400)).toEqual({ claimed: true, replaced: { instance: 'x', replica: 'r1' } });
    expect(await repo.claimSession(stream(host, 'x', 't3'), 'r1', 60_000)).toEqual({ claimed: false, holder: 'y', firstRefusal: true });
    expect(await repo.claimSession(stream(host, 'x', 't4'), 'r2', 60_000)).toEqual({ claimed: false, holder: 'y', firstRefusal: false });
    expect(JSON.parse((await rawClaim(host))!).token).toBe('t2');

    let outcome: Awaited<ReturnType<AgentStatusRepository['claimSession']>> | undefined;
    await waitUntil(async () => {
      outcome = await repo.claimSession(stream(host, 'x', 't5'), 'r1', 60_000);
      return outcome.claimed;
    }, 3_000);
    // Not before the winner's claim lapsed (it was made at `before` or later, for 400 ms).
    expect(Date.now() - before).toBeGreaterThanOrEqual(400);
    // Lapsed: nothing was replaced, nobody is remembered.
    expect(outcome).toEqual({ claimed: true });
    const claim = JSON.parse((await rawClaim(host))!);
    expect(claim).toMatchObject({ token: 't5', instance: 'x', replica: 'r1' });
    expect(Object.keys(claim.evicted)).toHaveLength(0);
  });

  it('lets the same instance replace its own stream and carries the evicted instances over', async () => {
    const host = await newHost();
    await repo.claimSession(stream(host, 'x', 't1'), 'r1', 60_000);
    await repo.claimSession(stream(host, 'y', 't2'), 'r1', 60_000);
    expect(await repo.claimSession(stream(host, 'y', 't3'), 'r2', 60_000)).toEqual({ claimed: true });
    expect((await repo.claimSession(stream(host, 'x', 't4'), 'r2', 60_000)).claimed).toBe(false);
    // A third instance wins too, and remembers both.
    expect(await repo.claimSession(stream(host, 'z', 't5'), 'r1', 60_000)).toEqual({ claimed: true, replaced: { instance: 'y', replica: 'r2' } });
    expect(await repo.claimSession(stream(host, 'x', 't6'), 'r1', 60_000)).toMatchObject({ claimed: false, holder: 'z' });
    expect(await repo.claimSession(stream(host, 'y', 't7'), 'r1', 60_000)).toMatchObject({ claimed: false, holder: 'z' });
  });

  it('remembers at most 8 evicted instances, forgetting the oldest', async () => {
    const host = await newHost();
    for (let i = 0; i <= 9; i++) {
      expect((await repo.claimSession(stream(host, `i${i}`, `t${i}`), 'r1', 60_000)).claimed).toBe(true);
    }
    expect(JSON.parse((await rawClaim(host))!).evicted).toEqual(['i1', 'i2', 'i3', 'i4', 'i5', 'i6', 'i7', 'i8']);
    expect((await repo.claimSession(stream(host, 'i0', 't10'), 'r1', 60_000)).claimed).toBe(true);
  });

  it('lets a claim without instance id replace any live claim, and be replaced by any', async () => {
    const host = await newHost();
    await repo.claimSession(stream(host, '', 't1'), 'r1', 60_000);
    expect(await repo.claimSession(stream(host, '', 't2'), 'r2', 60_000)).toEqual({ claimed: true, replaced: { instance: '', replica: 'r1' } });
    expect(await repo.claimSession(stream(host, 'x', 't3'), 'r1', 60_000)).toEqual({ claimed: true, replaced: { instance: '', replica: 'r2' } });
    expect(await repo.claimSession(stream(host, '', 't4'), 'r1', 60_000)).toEqual({ claimed: true, replaced: { instance: 'x', replica: 'r1' } });
    expect((await repo.claimSession(stream(host, 'x', 't5'), 'r1', 60_000)).claimed).toBe(false);
  });

  it('refreshes only claims that are still the stream’s, reports the others, makes missing ones again, and releases only its own', async () => {
    const [a, b, c] = [await newHost(), await newHost(), await newHost()];
    await repo.claimSession(stream(a, 'x', 'ta'), 'r1', 300);
    await repo.claimSession(stream(b, 'x', 'tb'), 'r1', 300);
    await repo.claimSession(stream(b, 'y', 'tb2'), 'r2', 60_000);
    const before = Date.now();
    const superseded = await repo.refreshSessions([stream(a, 'x', 'ta'), stream(b, 'x', 'tb'), stream(c, 'x', 'tc')], 'r1', 60_000);
    expect(superseded).toEqual([b]);
    expect(JSON.parse((await rawClaim(a))!)).toMatchObject({ token: 'ta', expires: expect.any(Number) });
    expect(JSON.parse((await rawClaim(a))!).expires).toBeGreaterThanOrEqual(before + 60_000);
    expect(JSON.parse((await rawClaim(b))!)).toMatchObject({ token: 'tb2', instance: 'y' });
    expect(JSON.parse((await rawClaim(c))!)).toMatchObject({ token: 'tc', replica: 'r1', instance: 'x' });
    const status = await repo.status([a, b, c]);
    expect([a, b, c].map((h) => status.get(h)!.connected)).toEqual([true, true, true]);

    await repo.releaseSession(stream(b, 'x', 'tb'));
    expect(JSON.parse((await rawClaim(b))!).token).toBe('tb2');
    await repo.releaseSession(stream(b, 'y', 'tb2'));
    expect(await rawClaim(b)).toBeNull();
    // A host that is gone gets no claim back.
    expect(await repo.refreshSessions([stream('no-such-host', 'x', 'tz')], 'r1', 60_000)).toEqual([]);
    expect(await rawClaim('no-such-host')).toBeNull();
  });

  it('reads a claim written by an older overlayd ("<replica> <expiry>") as a claim without instance: connected, and replaced by a Hello', async () => {
    const host = await newHost();
    await ctl.redis.hset(`{${prefix}}:agents:sessions`, host, `oldreplica ${Date.now() + 60_000}`);
    expect((await repo.status([host])).get(host)!.connected).toBe(true);
    expect(await repo.claimSession(stream(host, 'x', 't1'), 'r1', 60_000)).toEqual({ claimed: true, replaced: { instance: '', replica: 'oldreplica' } });
    // And the older replica's stream is told it lost the host at its next refresh (newer wins).
    await ctl.redis.hset(`{${prefix}}:agents:sessions`, host, `oldreplica ${Date.now() + 60_000}`);
    expect(await repo.refreshSessions([stream(host, 'x', 't1')], 'r1', 60_000)).toEqual([host]);
  });
});
