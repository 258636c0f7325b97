import { tapName } from '../../src/agent/dataplane/names';
import { makeAgent, waitUntil, type TestAgent } from '../support/agents';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { factories } from '../support/factories';

/**
 * A host whose firewall cannot be loaded, on a real controller and Redis, with an in-process
 * agent on the memory dataplane (its `isOpen` has the Linux semantics: a tap passes traffic only
 * when attached and given a policy by the ruleset in force). The agent's jitter is fixed at its maximum
 * (random = 1), so retry delays are the backoff bounds: 100, 200, 400, 800, 1600, 3200 ms...
 */
describe('agent: a failed apply fails closed and is retried with backoff', () => {
  const prefix = uniquePrefix('agent-failure');
  let ctl: Harness;
  let client: ReturnType<typeof api>;
  let make: ReturnType<typeof factories>;
  const agents: TestAgent[] = [];

  beforeAll(async () => {
    ctl = await startController({ prefix });
    client = api(ctl.url);
    make = factories(client);
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.cleanup()));
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  it('keeps a port closed while no ruleset loads, retries with growing delays (not at the marker rate), and opens it by itself once loads work', async () => {
    const tenant = await make.tenant({ name: 'acme' });
    const seg = await make.segment(tenant.id, { name: 'web', cidr: '10.0.0.0/24' });
    const host = await make.host({ name: 'hv-broken', vtepIp: '192.0.2.41' });
    const a = makeAgent('hv-broken', ctl.grpcTarget, { firewall: true, backoffBaseMs: 100, backoffMaxMs: 5000 }, undefined, { random: () => 1 });
    agents.push(a);
    a.dataplane.firewallBroken = 'nft: the kernel refuses the ruleset';
    await a.agent.start();
    const port = await make.port(seg.id, { hostId: host.id, ips: ['10.0.0.5'] });
    const tap = tapName(port.id);
    await waitUntil(() => a.agent.state.ports.has(port.id), 10_000, () => 'the port never reached the agent');

    // Four seconds of failures, while other changes elsewhere advance the revision, so the
    // controller sends this agent a revision marker every 250 ms.
    const t0 = Date.now();
    const attempts0 = a.dataplane.firewallAttempts;
    const markers0 = a.agent.stats.emptyDeltas;
    for (let i = 0; Date.now() - t0 < 4000; i++) {
      await make.tenant();
      await new Promise((r) => setTimeout(r, 50));
    }
    const attempts = a.dataplane.firewallAttempts - attempts0;
    expect(a.agent.stats.emptyDeltas - markers0).toBeGreaterThanOrEqual(10);
    // Delays 100+200+400+800+1600 = 3100 ms: at most 6 attempts in 4 s (markers alone would make 16).
    expect(attempts).toBeGreaterThanOrEqual(3);
    expect(attempts).toBeLessThanOrEqual(6);
    expect(a.agent.stats.nacks).toBeGreaterThanOrEqual(attempts);
    // Closed all along: never attached, never named by a loaded ruleset.
    expect(a.dataplane.dump().ports.has(tap)).toBe(false);
    expect(a.dataplane.isOpen(tap)).toBe(false);
    expect((await client.get(`/v1/ports/${port.id}`)).body.realized).toBe(false);

    // Loads work again: the next retry (at most 3.2 s away) opens the port, with no new change.
    a.dataplane.firewallBroken = undefined;
    await waitUntil(() => a.dataplane.isOpen(tap), 10_000, () => 'the port did not open by itself');
    await waitUntil(async () => (await client.get(`/v1/ports/${port.id}`)).body.realized === true, 5000, () => 'not realized');
  });

  it('closes only the port whose change failed to load; the others keep the rules in force', async () => {
    const tenant = await make.tenant({ name: 'beta' });
    const seg = await make.segment(tenant.id, { name: 'app', cidr: '10.1.0.0/24' });
    const rules = [{ direction: 'ingress', ethertype: 'IPv4', protocol: 'icmp' }];
    const g1 = await make.securityGroup(tenant.id, { name: 'g1', rules });
    const g2 = await make.securityGroup(tenant.id, { name: 'g2', rules: [...rules, { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22 }] });
    const host = await make.host({ name: 'hv-half', vtepIp: '192.0.2.42' });
    const a = makeAgent('hv-half', ctl.grpcTarget, { firewall: true, backoffBaseMs: 50, backoffMaxMs: 500 });
    agents.push(a);
    await a.agent.start();
    const p1 = await make.port(seg.id, { hostId: host.id, ips: ['10.1.0.5'], securityGroupIds: [g1.id] });
    const p2 = await make.port(seg.id, { hostId: host.id, ips: ['10.1.0.6'], securityGroupIds: [g1.id] });
    const [t1, t2] = [tapName(p1.id), tapName(p2.id)];
    await waitUntil(() => a.dataplane.isOpen(t1) && a.dataplane.isOpen(t2), 10_000, () => 'ports not open');
    const inForce = a.dataplane.firewall?.text;

    // p1 changes groups while loads fail: its new rules cannot be put in force, so it closes;
    // p2's rules did not change and stay in force (the same ruleset is still loaded).
    a.dataplane.firewallBroken = 'nft: injected';
    const nacks = a.agent.stats.nacks;
    expect((await client.patch(`/v1/ports/${p1.id}`, { securityGroupIds: [g2.id] })).status).toBe(200);
    await waitUntil(() => a.agent.stats.nacks > nacks, 10_000, () => 'no nack');
    expect(a.dataplane.dump().ports.has(t1)).toBe(false);
    expect(a.dataplane.isOpen(t1)).toBe(false);
    expect(a.dataplane.isOpen(t2)).toBe(true);
    expect(a.dataplane.firewall?.text).toBe(inForce);

    a.dataplane.firewallBroken = undefined;
    await waitUntil(() => a.dataplane.isOpen(t1), 10_000, () => 'p1 did not reopen with its new rules');
    expect(a.dataplane.firewall?.text).not.toBe(inForce);
    expect(a.dataplane.isOpen(t2)).toBe(true);
  });

  it('detaches every tap when the tables are found gone and cannot be loaded again, and reattaches them once they are', async () => {
    const host = await make.host({ name: 'hv-flushed', vtepIp: '192.0.2.43' });
    const tenant = await make.tenant({ name: 'gamma' });
    const seg = await make.segment(tenant.id, { name: 'db', cidr: '10.2.0.0/24' });
    const a = makeAgent('hv-flushed', ctl.grpcTarget, { firewall: true, backoffBaseMs: 50, backoffMaxMs: 500, reconcileIntervalMs: 200 });
    agents.push(a);
    await a.agent.start();
    const port = await make.port(seg.id, { hostId: host.id, ips: ['10.2.0.5'] });
    const tap = tapName(port.id);
    await waitUntil(() => a.dataplane.isOpen(tap), 10_000, () => 'port not open');
    a.dataplane.firewallBroken = 'nft: injected';
    a.dataplane.flushFirewall();
    // The periodic reconcile tries to load the tables again, fails, and closes the port.
    await waitUntil(() => !a.dataplane.dump().ports.has(tap), 10_000, () => 'the tap stayed attached without rules in force');
    a.dataplane.firewallBroken = undefined;
    await waitUntil(() => a.dataplane.isOpen(tap), 10_000, () => 'the tap did not come back');
  });
});
