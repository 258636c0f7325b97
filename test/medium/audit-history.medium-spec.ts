import type { AuditReport } from '../../src/controller/audit/audit';
import { FindingHistory } from '../../src/controller/audit/finding-history';
import { RedisStore } from '../../src/controller/store/redis-store';
import { waitUntil } from '../support/agents';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { factories } from '../support/factories';

/**
 * The findings' history with a real controller and Redis: the periodic evaluation opens and
 * closes findings without anyone reading the audit, and recordings that race (two replicas, or
 * an older evaluation finishing after a newer one) never undo a newer state.
 */
describe("the audit's findings history", () => {
  const prefix = uniquePrefix('audit-history');
  let ctl: Harness;
  let client: ReturnType<typeof api>;

  beforeAll(async () => {
    ctl = await startController({ prefix, env: { OVERLAY_AUDIT_INTERVAL_MS: '1000' } });
    client = api(ctl.url);
  });

  const racePrefix = uniquePrefix('audit-history-race');
  const stores: RedisStore[] = [];

  afterAll(async () => {
    await ctl?.close();
    await Promise.all(stores.map((s) => s.onModuleDestroy()));
    await dropPrefix(ctl.config.redisUrl, prefix);
    await dropPrefix(ctl.config.redisUrl, racePrefix);
  });

  const findings = async (query: string): Promise<any> => {
    const res = await client.get(`/v1/audit/findings${query}`);
    expect(res.status).toBe(200);
    return res.body;
  };

  it('follows the network on its own: a host whose agent never connects opens a finding, its deletion closes it', async () => {
    const host = await factories(client).host();
    const ofHost = async () => (await findings(`?hostId=${host.id}&recommendation=VM-VN-R3`)).items;
    await waitUntil(async () => (await ofHost()).length > 0, 10_000, () => 'no VM-VN-R3 finding for the new host');
    const [opened] = await ofHost();
    expect(opened).toEqual(expect.objectContaining({ severity: 'unknown', subject: { hostId: host.id }, closedAt: null }));
    expect((await client.delete(`/v1/hosts/${host.id}`)).status).toBe(204);
    await waitUntil(async () => (await ofHost())[0]?.closedAt !== null, 10_000, () => 'the finding did not close');
    const [closed] = await ofHost();
    expect(closed).toEqual({ ...opened, closedAt: expect.any(String) });
    expect(Date.parse(closed.closedAt)).toBeGreaterThan(Date.parse(opened.openedAt));
  });

  /** A report with one finding per id given, all of one made-up recommendation. */
  const report = (...ids: string[]): AuditReport => ({
    generatedAt: new Date().toISOString(),
    revision: 1,
    recommendations: [{ id: 'VM-TEST-R1', title: 'test', status: ids.length ? 'fail' : 'pass', findings: ids.map((id) => ({ id, severity: 'high', subject: { hostId: id }, evidence: `about ${id}`, since: null })) }],
  });
  const testIds = async (history: FindingHistory) =>
    (await history.list({ state: 'open', recommendation: 'VM-TEST-R1' }, 1000)).items.map((f) => f.id).sort();

  it('refuses a recording older than the newest one recorded, and two replicas racing end at the newest', async () => {
    // A history of its own, which no evaluator of the controller above records into.
    const store = new RedisStore({ ...ctl.config, keyPrefix: racePrefix });
    stores.push(store);
    const [one, two] = [new FindingHistory(store), new FindingHistory(store)];
    const older = await one.nextEvaluation();
    const newer = await two.nextEvaluation();
    await two.record(report('aaaaaaaaaaaaaaa1', 'aaaaaaaaaaaaaaa2'), newer);
    // The older evaluation finished last: it would have closed aaa2 and opened aaa3.
    const after = await one.record(report('aaaaaaaaaaaaaaa1', 'aaaaaaaaaaaaaaa3'), older);
    expect([...after.keys()].filter((id) => id.startsWith('aaa')).sort()).toEqual(['aaaaaaaaaaaaaaa1', 'aaaaaaaaaaaaaaa2']);
    expect(await testIds(one)).toEqual(['aaaaaaaaaaaaaaa1', 'aaaaaaaaaaaaaaa2']);

    // Racing: whichever lands first, the newer evaluation's findings are what stays open.
    for (let round = 0; round < 5; round++) {
      const a = await one.nextEvaluation();
      const b = await two.nextEvaluation();
      await Promise.all([one.record(report(`bbbbbbbbbbbbbb${round}a`), a), two.record(report(`bbbbbbbbbbbbbb${round}b`), b)]);
      expect(await testIds(one)).toEqual([`bbbbbbbbbbbbbb${round}b`]);
      expect(await testIds(two)).toEqual([`bbbbbbbbbbbbbb${round}b`]);
    }
    // Each round's newer finding closed in the next round, once; an older one that landed first was opened and closed too.
    const closed = (await one.list({ state: 'closed', recommendation: 'VM-TEST-R1' }, 1000)).items;
    const closedIds = closed.map((f) => f.id);
    expect(closedIds.filter((id) => id.endsWith('b')).sort()).toEqual([0, 1, 2, 3].map((r) => `bbbbbbbbbbbbbb${r}b`));
    expect(new Set(closedIds).size).toBe(closedIds.length);
    closed.forEach((f) => expect(Date.parse(f.closedAt!)).toBeGreaterThanOrEqual(Date.parse(f.openedAt)));
  });
});
